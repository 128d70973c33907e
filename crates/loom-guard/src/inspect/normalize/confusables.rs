//! Letters that look like ASCII letters, and the ASCII letter each one imitates.
//!
//! A compact subset of Unicode's confusables.txt (UTS #39): the look-alikes an attacker
//! reaches for first. Fullwidth and mathematical letters are not here: NFKC folds them.
//! Each entry maps a character, in the case it is written, to the lower-case ASCII letter
//! it imitates; upper case matters because `Н` looks like `H` while `н` looks like no
//! Latin letter at all.

/// The ASCII letter a Latin-script variant stands for (small capitals, IPA letters,
/// dotless i, stroked letters). These are Latin letters, so they are folded everywhere.
pub(super) fn latin_variant(c: char) -> Option<char> {
    // Every entry lies in this range: most characters are rejected in one comparison.
    if !('\u{0110}'..='\u{A7FF}').contains(&c) {
        return None;
    }
    let ascii = match c {
        'ı' | 'ɩ' | 'ɪ' => 'i',
        'ȷ' | 'ᴊ' => 'j',
        'ɑ' | 'ᴀ' => 'a',
        'ɡ' | 'ɢ' => 'g',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' | 'đ' | 'Đ' => 'd',
        'ᴇ' => 'e',
        'ʜ' | 'ħ' | 'Ħ' => 'h',
        'ᴋ' => 'k',
        'ʟ' | 'ł' | 'Ł' => 'l',
        'ᴍ' => 'm',
        'ɴ' => 'n',
        'ᴏ' | 'ø' | 'Ø' => 'o',
        'ᴘ' => 'p',
        'ʀ' => 'r',
        'ꜱ' => 's',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        _ => return None,
    };
    Some(ascii)
}

/// The ASCII letter a Cyrillic, Greek or Armenian look-alike imitates. These are real
/// letters of other scripts, so the caller folds them only where the context shows they
/// stand in for Latin ones.
pub(super) fn foreign_lookalike(c: char) -> Option<char> {
    // Greek, Cyrillic and Armenian: most characters are rejected in one comparison.
    if !('\u{0370}'..='\u{058F}').contains(&c) {
        return None;
    }
    let ascii = match c {
        // Cyrillic, upper case then lower case.
        'А' | 'а' => 'a',
        'В' => 'b',
        'С' | 'с' => 'c',
        'Ԁ' | 'ԁ' => 'd',
        'Е' | 'е' | 'Ё' | 'ё' => 'e',
        'Н' | 'Һ' | 'һ' => 'h',
        'І' | 'і' | 'Ї' | 'ї' => 'i',
        'Ј' | 'ј' => 'j',
        'К' | 'к' => 'k',
        'Ӏ' | 'ӏ' => 'l',
        'М' => 'm',
        'О' | 'о' => 'o',
        'Р' | 'р' => 'p',
        'Ԛ' | 'ԛ' => 'q',
        'Ѕ' | 'ѕ' => 's',
        'Т' => 't',
        'Ѵ' | 'ѵ' => 'v',
        'Ԝ' | 'ԝ' => 'w',
        'Х' | 'х' => 'x',
        'У' | 'у' | 'Ү' | 'ү' => 'y',
        // Greek, upper case then lower case.
        'Α' | 'α' => 'a',
        'Β' => 'b',
        'ϲ' | 'Ϲ' => 'c',
        'Ε' | 'ε' => 'e',
        'Η' => 'h',
        'Ι' | 'ι' => 'i',
        'ϳ' | 'Ϳ' => 'j',
        'Κ' | 'κ' => 'k',
        'Μ' => 'm',
        'Ν' | 'η' => 'n',
        'Ο' | 'ο' => 'o',
        'Ρ' | 'ρ' => 'p',
        'Τ' | 'τ' => 't',
        'υ' => 'u',
        'ν' => 'v',
        'ω' => 'w',
        'Χ' | 'χ' => 'x',
        'Υ' | 'γ' => 'y',
        'Ζ' => 'z',
        // Armenian.
        'հ' => 'h',
        'ո' => 'n',
        'օ' => 'o',
        'ս' => 'u',
        _ => return None,
    };
    Some(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyrillic_and_greek_lookalikes_map_to_the_letter_they_imitate() {
        let folded: String = "Іgnоrе Ρrοmрt".chars().map(|c| foreign_lookalike(c).unwrap_or(c)).collect();
        assert_eq!(folded, "ignore prompt");
    }

    #[test]
    fn cyrillic_letters_that_imitate_nothing_are_left_alone() {
        for c in ['б', 'д', 'ж', 'л', 'н', 'т', 'я', 'ш'] {
            assert_eq!(foreign_lookalike(c), None, "{c}");
        }
    }

    #[test]
    fn small_capitals_map_to_ascii() {
        let folded: String = "ɪɢɴᴏʀᴇ".chars().map(|c| latin_variant(c).unwrap_or(c)).collect();
        assert_eq!(folded, "ignore");
    }
}
