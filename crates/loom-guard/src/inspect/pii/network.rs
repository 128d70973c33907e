//! IP addresses: dotted IPv4 with octets up to 255 and no leading zeros, and IPv6 as
//! `std::net::Ipv6Addr` parses it. Version and section numbers (`v1.2.3.4`,
//! `version 7.1.63.161`, `section 4.4.1.9`, `10.0.19041.1`), clock times and MAC addresses
//! do not count.

use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::Regex;

use super::{Candidates, PiiKind, char_after_next, char_at, char_before, floor_char_boundary, is_word_char};

static IPV4: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}").ok());
// A word right before a dotted number that makes it a version or section number.
static VERSION_WORD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[^a-z])(?:version|release|build|section|chapter|firmware|revision|oid|v|ver|rev|sec|§)\.?:?\s*$").ok()
});
/// How far before an IPv4 address a version word is looked for, in bytes.
const VERSION_WORD_BYTES: usize = 16;

static IPV6: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?:[0-9A-Fa-f]{1,4}:|:){2,7}(?:[0-9A-Fa-f]{1,4}|:)?(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3})?").ok()
});

/// Adds the IP addresses in `text` to `found`.
pub(super) fn scan(text: &str, found: &mut Candidates) {
    scan_ipv4(text, found);
    scan_ipv6(text, found);
}

fn scan_ipv4(text: &str, found: &mut Candidates) {
    let Some(pattern) = IPV4.as_ref() else { return };
    for candidate in pattern.find_iter(text) {
        let glued_before =
            char_before(text, candidate.start()).is_some_and(|c| is_word_char(c) || matches!(c, '.' | '-'));
        let glued_after = match char_at(text, candidate.end()) {
            Some(c) if is_word_char(c) => true,
            Some('.' | '-') => {
                char_after_next(text, candidate.end()).is_some_and(|c| c.is_ascii_alphanumeric())
            }
            _ => false,
        };
        if !glued_before
            && !glued_after
            && octets_valid(candidate.as_str())
            && !after_version_word(text, candidate.start())
            && !found.push(PiiKind::IpAddress, candidate.range())
        {
            return;
        }
    }
}

/// Whether a word such as "version" or "section" comes right before byte `start`.
fn after_version_word(text: &str, start: usize) -> bool {
    let Some(pattern) = VERSION_WORD.as_ref() else { return false };
    let from = floor_char_boundary(text, start.saturating_sub(VERSION_WORD_BYTES));
    pattern.is_match(&text[from..start])
}

/// Four octets of at most 255, none with a leading zero.
fn octets_valid(address: &str) -> bool {
    address.split('.').all(|octet| octet.parse::<u8>().is_ok() && (octet == "0" || !octet.starts_with('0')))
}

fn scan_ipv6(text: &str, found: &mut Candidates) {
    let Some(pattern) = IPV6.as_ref() else { return };
    for candidate in pattern.find_iter(text) {
        let address = candidate.as_str();
        let glued = char_before(text, candidate.start()).is_some_and(|c| is_word_char(c) || c == ':')
            || char_at(text, candidate.end()).is_some_and(|c| is_word_char(c) || c == ':');
        // `a::b` in code and bare `::` parse, but an address names at least two groups with a digit.
        let groups = address.split(':').filter(|group| !group.is_empty()).count();
        let plausible = groups >= 2 && address.bytes().any(|b| b.is_ascii_digit());
        if !glued
            && plausible
            && address.parse::<Ipv6Addr>().is_ok()
            && !found.push(PiiKind::IpAddress, candidate.range())
        {
            return;
        }
    }
}

/// Whether every pattern of this family compiled.
#[cfg(test)]
pub(super) fn patterns_compile() -> bool {
    IPV4.is_some() && IPV6.is_some() && VERSION_WORD.is_some()
}
