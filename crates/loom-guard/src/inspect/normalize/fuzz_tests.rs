//! Hostile text, generated: normalisation never panics and stays within its bounds.

use proptest::prelude::*;

use super::{MAX_DECODED_VIEWS, fold, normalize};

/// Characters the folds and decoders treat specially, so that random texts hit them.
const PALETTE: &[char] = &[
    'a',
    'I',
    'g',
    'n',
    'o',
    'r',
    'e',
    'Z',
    '0',
    '1',
    '3',
    '4',
    '7',
    '9',
    '@',
    '$',
    '!',
    '€',
    '|',
    '+',
    '/',
    '=',
    '-',
    '_',
    '%',
    '&',
    '#',
    ';',
    'x',
    'u',
    '\\',
    '.',
    ',',
    ' ',
    ' ',
    '\n',
    '\t',
    'а',
    'е',
    'о',
    'р',
    'т',
    'ж',
    'α',
    'ο',
    'Η',
    'ι',
    'ɪ',
    'ᴇ',
    'Ｉ',
    '𝐢',
    'ⓘ',
    '\u{0301}',
    '\u{0337}',
    '\u{200B}',
    '\u{202E}',
    '\u{FEFF}',
    '\u{00AD}',
    '\u{E0041}',
    '\u{E0020}',
    '\u{FE0F}',
    '\u{FDFA}',
    '\u{0000}',
    '中',
    '한',
    'é',
    'ﬁ',
];

fn hostile_text() -> impl Strategy<Value = String> {
    let character = prop_oneof![4 => proptest::sample::select(PALETTE), 1 => any::<char>()];
    proptest::collection::vec(character, 0..400).prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_normalises_within_bounds(text in hostile_text()) {
        let normalized = normalize(&text);
        // Cleaning keeps at most one character per input byte (plus slack); lower-casing
        // and the folds at most triple a character's bytes.
        prop_assert!(normalized.folded.len() <= 12 * (text.len() + 64));
        prop_assert!(normalized.decoded.len() <= MAX_DECODED_VIEWS);
        let decoded_bytes: usize = normalized.decoded.iter().map(String::len).sum();
        prop_assert!(decoded_bytes <= 12 * (2 * text.len() + 64));
        prop_assert_eq!(fold(&text), normalized.folded);
    }

    #[test]
    fn any_printable_text_in_base64_is_decoded(payload in "[ -~]{12,200}") {
        use base64::Engine as _;
        prop_assume!(!payload.trim().is_empty());
        let encoded = base64::engine::general_purpose::STANDARD.encode(&payload);
        let normalized = normalize(&format!("run {encoded}"));
        prop_assert_eq!(normalized.decoded.first(), Some(&fold(&payload)));
    }
}
