//! Payment cards (Luhn-checked, known issuer prefixes), IBANs (per-country length and
//! mod-97) and US social security numbers (`AAA-GG-SSSS` with the allocation rules).

use std::sync::LazyLock;

use regex::Regex;

use super::checksum::{iban_length, iban_valid, luhn_valid};
use super::{Candidates, PiiKind, char_after_next, char_at, char_before, floor_char_boundary, is_word_char};

// A run of digits with single spaces or dashes between them; the card is a prefix of it.
static DIGIT_RUN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"[0-9](?:[ \-]?[0-9]){12,}").ok());
// Product codes that can pass Luhn by chance (one in ten EAN-13 codes starting with 4).
static PRODUCT_CODE_WORD: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)(?:ean|gtin|upc|isbn|barcode|sku)[-‐ ]?(?:1[0-4]|8)?[:.#]?\s*$").ok());
/// How far before a number a product code word is looked for, in bytes.
const PRODUCT_CODE_WORD_BYTES: usize = 16;
static IBAN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,34}").ok());
static SSN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"[0-9]{3}-[0-9]{2}-[0-9]{4}").ok());

/// Adds the cards, IBANs and SSNs in `text` to `found`.
pub(super) fn scan(text: &str, found: &mut Candidates) {
    scan_ibans(text, found);
    scan_cards(text, found);
    scan_ssns(text, found);
}

/// Whether a number starting right after `c` would be part of a longer token (`ID-4111...`).
fn glued_before(c: char) -> bool {
    is_word_char(c) || matches!(c, '-' | '.' | '/' | '#' | '+')
}

/// Whether a number ending at byte `end` of `text` continues (`...1111.5`, `...1111abc`).
fn glued_after(text: &str, end: usize) -> bool {
    match char_at(text, end) {
        Some(c) if is_word_char(c) => true,
        Some('.' | '-' | '/' | ',') => char_after_next(text, end).is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}

fn scan_cards(text: &str, found: &mut Candidates) {
    let Some(pattern) = DIGIT_RUN.as_ref() else { return };
    for run in pattern.find_iter(text) {
        if char_before(text, run.start()).is_some_and(glued_before) {
            continue;
        }
        if let Some(length) = card_prefix(run.as_str())
            && (length < run.len() || !glued_after(text, run.end()))
            && !after_product_code_word(text, run.start())
            && !found.push(PiiKind::PaymentCard, run.start()..run.start() + length)
        {
            return;
        }
    }
}

/// Whether a word such as "EAN" or "GTIN" comes right before byte `start`.
fn after_product_code_word(text: &str, start: usize) -> bool {
    let Some(pattern) = PRODUCT_CODE_WORD.as_ref() else { return false };
    let from = floor_char_boundary(text, start.saturating_sub(PRODUCT_CODE_WORD_BYTES));
    pattern.is_match(&text[from..start])
}

/// The byte length of the longest prefix of a digit run, ending at a group boundary, that
/// is a card number: 13 to 19 digits, one kind of separator, a known issuer, Luhn-valid.
fn card_prefix(run: &str) -> Option<usize> {
    let bytes = run.as_bytes();
    let separator = bytes.iter().copied().find(|b| !b.is_ascii_digit());
    let mut digits = Vec::with_capacity(19);
    let mut ends = Vec::new();
    for (index, &byte) in bytes.iter().enumerate() {
        if byte.is_ascii_digit() {
            digits.push(byte);
            if digits.len() > 19 {
                break;
            }
            let group_ends = bytes.get(index + 1).is_none_or(|next| !next.is_ascii_digit());
            if group_ends && digits.len() >= 13 {
                ends.push((index + 1, digits.len()));
            }
        } else if Some(byte) != separator {
            break;
        }
    }
    ends.into_iter()
        .rev()
        .find(|&(_, count)| known_issuer(&digits[..count]) && luhn_valid(&digits[..count]))
        .map(|(end, _)| end)
}

/// Whether a card number starts with the prefix of a card network (Visa, Mastercard,
/// American Express, Discover, Diners, JCB (also its 15-digit 2131 and 1800), UnionPay, Maestro).
fn known_issuer(digits: &[u8]) -> bool {
    let prefix = |length: usize| -> u32 {
        digits.iter().take(length).fold(0, |value, digit| value * 10 + u32::from(digit - b'0'))
    };
    match digits.first() {
        Some(b'4') => true,
        Some(b'5') => (50..=59).contains(&prefix(2)),
        Some(b'2') => prefix(4) == 2131 || (2221..=2720).contains(&prefix(4)),
        Some(b'1') => prefix(4) == 1800,
        Some(b'3') => matches!(prefix(2), 30 | 34 | 35 | 36 | 37 | 38 | 39),
        Some(b'6') => true,
        Some(b'0') => prefix(4) == 604,
        _ => false,
    }
}

fn scan_ibans(text: &str, found: &mut Candidates) {
    let Some(pattern) = IBAN.as_ref() else { return };
    for candidate in pattern.find_iter(text) {
        if char_before(text, candidate.start()).is_some_and(|c| c.is_alphanumeric()) {
            continue;
        }
        let Some(expected) = iban_length(&candidate.as_str()[..2]) else { continue };
        // The candidate may run into the next word: keep the country's length.
        let mut compact = String::with_capacity(expected);
        let mut end = candidate.start();
        for (offset, c) in candidate.as_str().char_indices() {
            if compact.len() == expected {
                break;
            }
            if c != ' ' {
                compact.push(c);
                end = candidate.start() + offset + c.len_utf8();
            }
        }
        if char_at(text, end).is_some_and(|c| c.is_alphanumeric()) {
            continue;
        }
        if iban_valid(&compact) && !found.push(PiiKind::Iban, candidate.start()..end) {
            return;
        }
    }
}

fn scan_ssns(text: &str, found: &mut Candidates) {
    let Some(pattern) = SSN.as_ref() else { return };
    for candidate in pattern.find_iter(text) {
        if char_before(text, candidate.start()).is_some_and(glued_before)
            || glued_after(text, candidate.end())
        {
            continue;
        }
        if ssn_valid(candidate.as_str()) && !found.push(PiiKind::UsSsn, candidate.range()) {
            return;
        }
    }
}

/// SSN allocation rules: area not 000, 666 or 900-999; group not 00; serial not 0000.
fn ssn_valid(ssn: &str) -> bool {
    let mut parts = ssn.split('-');
    let (Some(area), Some(group), Some(serial)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// Whether every pattern of this family compiled.
#[cfg(test)]
pub(super) fn patterns_compile() -> bool {
    DIGIT_RUN.is_some() && IBAN.is_some() && SSN.is_some() && PRODUCT_CODE_WORD.is_some()
}
