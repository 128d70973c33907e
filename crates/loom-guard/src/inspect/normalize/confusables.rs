//! Letters that look like ASCII letters, and the ASCII letter each one imitates.
//!
//! A compact subset of Unicode's confusables.txt (UTS #39): the look-alikes an attacker
//! reaches for first. Fullwidth and mathematical letters are not here: NFKC folds them.
//! Each entry maps a character, in the case it is written, to the lower-case ASCII letter
//! it imitates (lower-case Cyrillic that looks like a Latin small capital, such as `т`
//! or `н`, maps to that letter); case matters where the two cases imitate different
//! letters, as Greek `Η` (H) and `η` (n).

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
        'В' | 'в' | 'Ь' | 'ь' => 'b',
        'С' | 'с' => 'c',
        'Ԁ' | 'ԁ' => 'd',
        'Е' | 'е' | 'Ё' | 'ё' => 'e',
        'Н' | 'н' | 'Һ' | 'һ' => 'h',
        'І' | 'і' | 'Ї' | 'ї' => 'i',
        'Ј' | 'ј' => 'j',
        'К' | 'к' => 'k',
        'Ӏ' | 'ӏ' => 'l',
        'М' | 'м' => 'm',
        'п' => 'n',
        'О' | 'о' => 'o',
        'Р' | 'р' => 'p',
        'Ԛ' | 'ԛ' => 'q',
        'Ѕ' | 'ѕ' => 's',
        'Т' | 'т' => 't',
        'г' => 'r',
        'Ѵ' | 'ѵ' => 'v',
        'Ԝ' | 'ԝ' | 'Ш' | 'ш' => 'w',
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
        for c in ['б', 'д', 'ж', 'з', 'л', 'и', 'я', 'ф'] {
            assert_eq!(foreign_lookalike(c), None, "{c}");
        }
    }

    #[test]
    fn small_capitals_map_to_ascii() {
        let folded: String = "ɪɢɴᴏʀᴇ".chars().map(|c| latin_variant(c).unwrap_or(c)).collect();
        assert_eq!(folded, "ignore");
    }
}
