//! The character-level clean-up every later step builds on: invisible characters out,
//! Unicode compatibility forms folded (NFKC), accents on Latin letters dropped.

use unicode_normalization::UnicodeNormalization;

/// Whether `c` renders as nothing (zero-width, bidi controls, variation selectors, tag
/// characters, soft hyphen and other format characters) or is a control character
/// other than whitespace: attackers put these inside words to split them.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    ) || (c.is_control() && !c.is_whitespace())
}

/// Whether `c` is a combining mark that only decorates the letter before it (accents,
/// overlays, "Zalgo" stacks).
fn is_decorating_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// `text` without invisible characters, in NFKC, with the accents and overlays on ASCII
/// letters dropped (`ïgnörè` reads `ignore`; accents on other scripts stay, so Russian
/// `й` is still `й`). Case and whitespace are kept. The result holds at most
/// `max_chars` characters: NFKC can expand one character into up to eighteen.
pub(super) fn clean(text: &str, max_chars: usize) -> String {
    if text.is_ascii() {
        // NFKC and the accent rule change nothing in ASCII.
        return text.chars().filter(|c| !is_invisible(*c)).take(max_chars).collect();
    }
    let mut after_ascii_letter = false;
    text.chars()
        .filter(|c| !is_invisible(*c))
        .nfkd()
        .filter(move |c| {
            if is_decorating_mark(*c) {
                return !after_ascii_letter;
            }
            after_ascii_letter = c.is_ascii_alphabetic();
            true
        })
        .nfc()
        // NFKD can yield characters NFKC would then map to nothing visible.
        .filter(|c| !is_invisible(*c))
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_width_bidi_and_tag_characters_are_removed() {
        let text = "ig\u{200B}no\u{200D}re\u{202E} a\u{2066}ll\u{FEFF} pre\u{00AD}vi\u{FE0F}ous\u{E0041}";
        assert_eq!(clean(text, 1000), "ignore all previous");
    }

    #[test]
    fn control_characters_other_than_whitespace_are_removed() {
        assert_eq!(clean("ig\0no\u{7}re\tall\n", 1000), "ignore\tall\n");
    }

    #[test]
    fn fullwidth_and_mathematical_letters_become_ascii() {
        assert_eq!(clean("Ｉｇｎｏｒｅ 𝐚𝐥𝐥 ⓟⓡⓔⓥⓘⓞⓤⓢ", 1000), "Ignore all previous");
    }

    #[test]
    fn accents_and_overlays_on_latin_letters_are_dropped() {
        assert_eq!(clean("ÏGNÖRÈ i\u{0337}g\u{0337}n\u{0336}\u{0335}ore", 1000), "IGNORE ignore");
    }

    #[test]
    fn accents_on_other_scripts_stay() {
        assert_eq!(clean("Мой йогурт, naïve café", 1000), "Мой йогурт, naive cafe");
    }

    #[test]
    fn expansion_is_capped() {
        let expanding = "\u{FDFA}".repeat(100);
        assert_eq!(clean(&expanding, 50).chars().count(), 50);
    }
}
