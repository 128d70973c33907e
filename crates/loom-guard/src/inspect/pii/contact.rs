//! E-mail addresses and phone numbers.
//!
//! Phones: E.164 (`+44 20 7946 0958`, also `00` for `+`), and the national formats of the
//! US (`(415) 555-0100`, `415.555.0100`), UK, Germany, France and India (a trunk `0` and
//! 10 to 12 digits). A bare 10-digit number counts only after a word such as "call" or
//! "phone" just before it, and a number shaped like a date or glued to letters, `#` or
//! `-` (order and invoice numbers, versions, timestamps) does not count.

use std::sync::LazyLock;

use regex::Regex;

use super::{Candidates, PiiKind, char_after_next, char_at, char_before, floor_char_boundary, is_word_char};

static EMAIL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}").ok()
});
/// The most bytes of an address's local part and of the whole (RFC 5321).
const MAX_LOCAL_PART: usize = 64;
const MAX_ADDRESS: usize = 254;
static PHONE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[+(]?[0-9][0-9 ().\-/]{5,24}[0-9](?: ?(?:x|ext\.? ?)[0-9]{1,5})?").ok());
// Words that announce a phone number, in the languages of the national formats.
static PHONE_CONTEXT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:call|phone|tel\b|tel\.|mobile|cell|contact|reach|text|sms|whatsapp|fax|dial|ring|telefon|handy|anruf|téléphone|portable|joindre|appel|mob\b|ph\.)").ok()
});
/// How far before a bare number its announcing word may be, in bytes.
const CONTEXT_BYTES: usize = 48;

/// Adds the e-mail addresses and phone numbers in `text` to `found`.
pub(super) fn scan(text: &str, found: &mut Candidates) {
    scan_emails(text, found);
    scan_phones(text, found);
}

fn scan_emails(text: &str, found: &mut Candidates) {
    let Some(pattern) = EMAIL.as_ref() else { return };
    for candidate in pattern.find_iter(text) {
        let address = candidate.as_str();
        // A local part neither starts nor ends with a dot.
        let leading_dots = address.len() - address.trim_start_matches('.').len();
        let start = candidate.start() + leading_dots;
        let local_ok = address[leading_dots..]
            .split('@')
            .next()
            .is_some_and(|local| !local.is_empty() && local.len() <= MAX_LOCAL_PART && !local.ends_with('.'));
        let length_ok = candidate.end() - start <= MAX_ADDRESS;
        let glued = char_at(text, candidate.end()).is_some_and(|c| is_word_char(c) || c == '@');
        if local_ok && length_ok && !glued && !found.push(PiiKind::Email, start..candidate.end()) {
            return;
        }
    }
}

fn scan_phones(text: &str, found: &mut Candidates) {
    let Some(pattern) = PHONE.as_ref() else { return };
    for candidate in pattern.find_iter(text) {
        if let Some(range) = phone_within(text, candidate.start(), candidate.end())
            && !found.push(PiiKind::Phone, range)
        {
            return;
        }
    }
}

/// The phone number in `text[start..end]`: the candidate itself, or it with up to two
/// trailing groups dropped (`555-123-4567 2 times`). Leading groups are never dropped:
/// the tail of a longer number (`Reference 3314 0950 9745 8894`) would pass as a phone.
fn phone_within(text: &str, start: usize, end: usize) -> Option<std::ops::Range<usize>> {
    // Digits glued to a word (`DE89 3704 ...`, `ORD-2024 ...`) are not a phone, in part or whole.
    if char_before(text, start).is_some_and(is_word_char) {
        return None;
    }
    let candidate = &text[start..end];
    std::iter::once(candidate.len())
        .chain(candidate.rmatch_indices(' ').map(|(index, _)| index))
        .take(3)
        .find(|&to| to > 0 && is_phone(text, start, start + to))
        .map(|to| start..start + to)
}

/// Whether `text[start..end]` is a phone number in its context.
fn is_phone(text: &str, start: usize, end: usize) -> bool {
    let candidate = &text[start..end];
    if !candidate.ends_with(|c: char| c.is_ascii_digit())
        || !candidate.starts_with(['+', '(', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
    {
        return false;
    }
    if char_before(text, start).is_some_and(|c| {
        is_word_char(c) || matches!(c, '-' | '.' | '/' | '#' | '+' | '$' | '€' | '£' | '=' | '@' | ',')
    }) {
        return false;
    }
    match char_at(text, end) {
        Some(c) if is_word_char(c) || c == '%' => return false,
        Some('.' | '-' | '/' | ':' | ',')
            if char_after_next(text, end).is_some_and(|c| c.is_ascii_digit()) =>
        {
            return false;
        }
        _ => {}
    }
    let number = strip_extension(candidate);
    if number.matches('(').count() != number.matches(')').count() {
        return false;
    }
    let groups: Vec<&str> =
        number.split(|c: char| !c.is_ascii_digit()).filter(|group| !group.is_empty()).collect();
    if looks_like_date(number, &groups) {
        return false;
    }
    let digits: usize = groups.iter().map(|group| group.len()).sum();
    let first_digits: String = number.chars().filter(char::is_ascii_digit).take(2).collect();
    if number.starts_with('+') {
        return (8..=15).contains(&digits);
    }
    if let Some(rest) = first_digits.strip_prefix("00") {
        // International prefix: a country code must follow.
        return !rest.starts_with('0') && (10..=17).contains(&digits) && groups.len() > 1;
    }
    if first_digits.starts_with('0') {
        return (10..=12).contains(&digits);
    }
    let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
    let area_ok = |group: &str| group.as_bytes().first().is_some_and(|b| (b'2'..=b'9').contains(b));
    match lengths.as_slice() {
        [3, 3, 4] => area_ok(groups[0]),
        [1, 3, 3, 4] => groups[0] == "1" && area_ok(groups[1]),
        [10] => area_ok(groups[0]) && announced(text, start),
        _ => false,
    }
}

/// The number without an extension (`x123`, `ext. 45`).
fn strip_extension(candidate: &str) -> &str {
    match candidate.find('x') {
        Some(at) => candidate[..at].trim_end_matches([' ', 'e']),
        None => candidate,
    }
}

/// Whether the number starts like a date: year-month-day or day/month/year, alone or
/// followed by a time.
fn looks_like_date(number: &str, groups: &[&str]) -> bool {
    let [first, second, third, ..] = groups else { return false };
    let value = |group: &str| group.parse::<u32>().unwrap_or(u32::MAX);
    let ymd = first.len() == 4
        && (1900..=2099).contains(&value(first))
        && (1..=12).contains(&value(second))
        && (1..=31).contains(&value(third));
    let dmy = first.len() <= 2
        && second.len() <= 2
        && (third.len() == 2 || third.len() == 4)
        && (1..=31).contains(&value(first))
        && (1..=31).contains(&value(second))
        && (value(first) <= 12 || value(second) <= 12);
    if !(ymd || dmy) {
        return false;
    }
    if groups.len() == 3 {
        return true;
    }
    // A fourth group after a different separator is a time: `2024-03-05 12:30`.
    let separators: Vec<char> = number.chars().filter(|c| !c.is_ascii_digit()).collect();
    separators.first() != separators.get(2)
}

/// Whether a word announcing a phone number comes just before byte `start`.
fn announced(text: &str, start: usize) -> bool {
    let Some(pattern) = PHONE_CONTEXT.as_ref() else { return false };
    let from = floor_char_boundary(text, start.saturating_sub(CONTEXT_BYTES));
    pattern.is_match(&text[from..start])
}

/// Whether every pattern of this family compiled.
#[cfg(test)]
pub(super) fn patterns_compile() -> bool {
    EMAIL.is_some() && PHONE.is_some() && PHONE_CONTEXT.is_some()
}
