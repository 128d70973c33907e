//! PII and secret detection: e-mail addresses, phone numbers, payment cards, IBANs, US
//! social security numbers, IP addresses and credentials, found in a text as byte ranges.
//!
//! Each family finds candidates with a regex compiled once and keeps only those that pass
//! its validator (Luhn for cards, mod-97 for IBANs, SSN allocation rules, IP parsing, JWT
//! header decoding, entropy for generic secrets), so look-alikes such as order numbers,
//! timestamps and version strings stay out. The work is linear in the input and at most
//! [`MAX_FINDINGS`] findings are returned.

mod checksum;
mod contact;
mod credentials;
mod financial;
mod network;

pub use checksum::{iban_length, iban_valid, luhn_valid, shannon_entropy};
pub use credentials::MAX_PEM_BYTES;
pub(crate) use credentials::{open_pem_start, pem_end};

use std::ops::Range;

/// The most findings [`find`] returns for one text.
pub const MAX_FINDINGS: usize = 1000;

/// The kind of a finding; in configuration, its [`PiiKind::as_str`] name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number (E.164 or a US, UK, DE, FR or IN national format).
    Phone,
    /// A payment card number that passes the Luhn check.
    PaymentCard,
    /// An IBAN with its country's length and valid check digits.
    Iban,
    /// A US social security number in `AAA-GG-SSSS` form.
    UsSsn,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// An OpenAI or Anthropic API key.
    ApiKey,
    /// An AWS access key id.
    AwsAccessKey,
    /// A GitHub token.
    GithubToken,
    /// A Slack token.
    SlackToken,
    /// A JSON Web Token.
    Jwt,
    /// A PEM private key block.
    PrivateKey,
    /// A high-entropy value assigned to a key, token, secret or password.
    HighEntropySecret,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 13] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::PaymentCard,
        PiiKind::Iban,
        PiiKind::UsSsn,
        PiiKind::IpAddress,
        PiiKind::ApiKey,
        PiiKind::AwsAccessKey,
        PiiKind::GithubToken,
        PiiKind::SlackToken,
        PiiKind::Jwt,
        PiiKind::PrivateKey,
        PiiKind::HighEntropySecret,
    ];

    /// The kind's name in configuration, metrics and labelled data (`email`, `phone`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::PaymentCard => "payment_card",
            PiiKind::Iban => "iban",
            PiiKind::UsSsn => "us_ssn",
            PiiKind::IpAddress => "ip_address",
            PiiKind::ApiKey => "api_key",
            PiiKind::AwsAccessKey => "aws_access_key",
            PiiKind::GithubToken => "github_token",
            PiiKind::SlackToken => "slack_token",
            PiiKind::Jwt => "jwt",
            PiiKind::PrivateKey => "private_key",
            PiiKind::HighEntropySecret => "high_entropy_secret",
        }
    }

    /// The kind named `name` (as given by [`PiiKind::as_str`]).
    pub fn from_name(name: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The label in the kind's placeholders (`EMAIL` in `[EMAIL_1]`).
    pub fn placeholder_label(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::PaymentCard => "CARD",
            PiiKind::Iban => "IBAN",
            PiiKind::UsSsn => "SSN",
            PiiKind::IpAddress => "IP",
            PiiKind::ApiKey => "API_KEY",
            PiiKind::AwsAccessKey => "AWS_KEY",
            PiiKind::GithubToken => "GITHUB_TOKEN",
            PiiKind::SlackToken => "SLACK_TOKEN",
            PiiKind::Jwt => "JWT",
            PiiKind::PrivateKey => "PRIVATE_KEY",
            PiiKind::HighEntropySecret => "SECRET",
        }
    }

    /// Which kind wins when two findings overlap: the more specific one.
    fn priority(self) -> u8 {
        match self {
            PiiKind::PrivateKey => 12,
            PiiKind::Jwt => 11,
            PiiKind::ApiKey => 10,
            PiiKind::AwsAccessKey => 9,
            PiiKind::GithubToken => 8,
            PiiKind::SlackToken => 7,
            PiiKind::HighEntropySecret => 6,
            PiiKind::Iban => 5,
            PiiKind::PaymentCard => 4,
            PiiKind::UsSsn => 3,
            PiiKind::Email => 2,
            PiiKind::IpAddress => 1,
            PiiKind::Phone => 0,
        }
    }
}

impl std::fmt::Display for PiiKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A piece of PII or a secret: its kind and its byte range in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub kind: PiiKind,
    /// Where, as a byte range into the text (on character boundaries).
    pub range: Range<usize>,
}

/// The PII and secrets in `text`: sorted, non-overlapping, at most [`MAX_FINDINGS`]. A
/// text with more is searched only in part (see [`find_prefix`]);
/// [`Redactor::redact_all`](super::redact::Redactor::redact_all) redacts any text whole.
pub fn find(text: &str) -> Vec<Finding> {
    find_prefix(text).0
}

/// The findings of the longest start of `text` that could be searched within the bounds,
/// and that start's length in bytes: `text.len()` unless `text` holds more than
/// [`MAX_FINDINGS`] findings (or one kind more than that many candidates). Search the rest
/// again from there.
pub fn find_prefix(text: &str) -> (Vec<Finding>, usize) {
    let mut candidates = Candidates { horizon: text.len(), ..Candidates::default() };
    credentials::scan(text, &mut candidates);
    financial::scan(text, &mut candidates);
    contact::scan(text, &mut candidates);
    network::scan(text, &mut candidates);
    let mut findings = resolve_overlaps(candidates.found);
    // Past the horizon some kind was not searched: stop before it, and before a finding
    // that reaches across it, which the next search will see whole.
    let mut searched = candidates.horizon;
    if let Some(across) =
        findings.iter().find(|finding| finding.range.start < searched && finding.range.end > searched)
    {
        searched = across.range.start;
    }
    findings.retain(|finding| finding.range.end <= searched);
    if findings.len() > MAX_FINDINGS {
        findings.truncate(MAX_FINDINGS);
        searched = findings.last().map_or(searched, |finding| finding.range.end);
    }
    (findings, searched)
}

/// Validated findings of every family, before overlaps are resolved; bounded per kind.
#[derive(Default)]
pub(crate) struct Candidates {
    found: Vec<Finding>,
    per_kind: [usize; PiiKind::ALL.len()],
    /// Where the first candidate refused for its kind's bound starts.
    horizon: usize,
}

impl Candidates {
    /// Keeps a finding; false once its kind's bound is reached, so that scanner stops
    /// (each scanner meets its candidates in text order, so all before are kept).
    fn push(&mut self, kind: PiiKind, range: Range<usize>) -> bool {
        let count = &mut self.per_kind[kind as usize];
        if *count >= MAX_FINDINGS {
            self.horizon = self.horizon.min(range.start);
            return false;
        }
        *count += 1;
        self.found.push(Finding { kind, range });
        true
    }
}

/// Keeps the most specific (then longest) finding where findings overlap, in text order.
fn resolve_overlaps(mut candidates: Vec<Finding>) -> Vec<Finding> {
    candidates.sort_by(|a, b| {
        b.kind
            .priority()
            .cmp(&a.kind.priority())
            .then((b.range.end - b.range.start).cmp(&(a.range.end - a.range.start)))
            .then(a.range.start.cmp(&b.range.start))
    });
    // Kept ranges keyed by start: a new range overlaps a kept one only if the nearest kept
    // range starting before its end reaches past its start.
    let mut kept: std::collections::BTreeMap<usize, Finding> = std::collections::BTreeMap::new();
    for candidate in candidates {
        if candidate.range.is_empty() {
            continue;
        }
        let overlaps = kept
            .range(..candidate.range.end)
            .next_back()
            .is_some_and(|(_, previous)| previous.range.end > candidate.range.start);
        if !overlaps {
            kept.insert(candidate.range.start, candidate);
        }
    }
    kept.into_values().collect()
}

/// The character before byte `at` of `text`.
fn char_before(text: &str, at: usize) -> Option<char> {
    text.get(..at)?.chars().next_back()
}

/// The character at byte `at` of `text`.
fn char_at(text: &str, at: usize) -> Option<char> {
    text.get(at..)?.chars().next()
}

/// The character after the one at byte `at` of `text`.
fn char_after_next(text: &str, at: usize) -> Option<char> {
    let mut rest = text.get(at..)?.chars();
    rest.next();
    rest.next()
}

/// Whether `c` continues a word (so a match beside it is part of a longer token).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests;

/// The largest character boundary of `text` at or before byte `at`.
pub(crate) fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at).rev().find(|&index| text.is_char_boundary(index)).unwrap_or(0)
}
