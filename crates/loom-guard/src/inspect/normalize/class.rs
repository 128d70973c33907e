//! Character classes the folds test again and again, with the common scripts answered
//! without the standard library's table search.

/// Whether `c` is a letter (Unicode `Alphabetic`).
pub(super) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    // Cyrillic letters (U+0482 is a sign, U+0483..U+0489 combining marks), CJK ideographs, Hangul.
    matches!(c, '\u{0400}'..='\u{0481}' | '\u{048A}'..='\u{052F}' | '\u{4E00}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7A3}')
        || c.is_alphabetic()
}

/// Whether `c` is a letter or a digit (Unicode `Alphabetic` or `Numeric`).
pub(super) fn is_letter_or_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    is_letter(c) || c.is_numeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortcuts_agree_with_the_standard_library() {
        let ranges = ['\u{0}'..='\u{0800}', '\u{4DF0}'..='\u{A010}', '\u{AB00}'..='\u{D7FF}'];
        for c in ranges.into_iter().flatten() {
            assert_eq!(is_letter(c), c.is_alphabetic(), "{c:?}");
            assert_eq!(is_letter_or_digit(c), c.is_alphanumeric(), "{c:?}");
        }
    }
}
