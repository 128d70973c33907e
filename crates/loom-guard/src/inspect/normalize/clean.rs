//! The character-level clean-up every later step builds on: invisible characters out,
//! Unicode compatibility forms folded (NFKC), accents on Latin letters dropped.

use unicode_normalization::UnicodeNormalization;

/// Whether `c` renders as nothing (zero-width, bidi controls, variation selectors, tag
/// characters, soft hyphen and other format characters) or is a control character
/// other than whitespace: attackers put these inside words to split them.
pub(super) fn is_invisible(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control() && !c.is_ascii_whitespace();
    }
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

/// Whether `c` may change under NFKC or the accent rule. ASCII, the basic Cyrillic,
/// CJK and Hangul letters and typographic quotes and dashes are stable (no
/// decomposition, no composition with what follows them): text made only of those
/// skips the costly Unicode pass.
fn needs_unicode_pass(c: char) -> bool {
    !(c.is_ascii()
        || ('\u{0400}'..='\u{04FF}').contains(&c)
        || ('\u{4E00}'..='\u{9FFF}').contains(&c)
        || ('\u{AC00}'..='\u{D7A3}').contains(&c)
        || matches!(c, '\u{2013}' | '\u{2014}' | '\u{2018}'..='\u{201F}'))
}

/// `text` without invisible characters, in NFKC, with the accents and overlays on ASCII
/// letters dropped (`ïgnörè` reads `ignore`; accents on other scripts stay, so Russian
/// `й` is still `й`). Case and whitespace are kept. The result holds at most
/// `max_chars` characters: NFKC can expand one character into up to eighteen.
pub(super) fn clean(text: &str, max_chars: usize) -> String {
    if text.bytes().all(|b| (b' '..=b'~').contains(&b) || matches!(b, b'\t' | b'\n' | b'\r')) {
        // Printable ASCII: nothing to remove, nothing to fold; a byte is a character.
        return text[..text.len().min(max_chars)].to_owned();
    }
    let mut cleaned = String::with_capacity(text.len());
    let mut room = max_chars;
    // Nothing composes across ASCII whitespace, so each piece between two is cleaned on
    // its own, and only the pieces that need it pay for the Unicode pass.
    for piece in text.split_inclusive(|c: char| c.is_ascii_whitespace()) {
        if room == 0 {
            break;
        }
        if piece.chars().any(needs_unicode_pass) {
            push_at_most(unicode_pass(piece), &mut room, &mut cleaned);
        } else {
            push_at_most(piece.chars().filter(|c| !is_invisible(*c)), &mut room, &mut cleaned);
        }
    }
    cleaned
}

/// Pushes `chars` onto `out`, `room` of them at most, and takes them off `room`.
fn push_at_most(chars: impl Iterator<Item = char>, room: &mut usize, out: &mut String) {
    for c in chars.take(*room) {
        out.push(c);
        *room -= 1;
    }
}

/// `text` without invisible characters, in NFKC, with the accents on ASCII letters
/// dropped.
fn unicode_pass(text: &str) -> impl Iterator<Item = char> + '_ {
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
