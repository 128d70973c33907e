//! Redaction of streamed text (a model's answer as it arrives) without buffering it whole.
//!
//! Text is held back until at least [`WINDOW`] bytes follow it, longer than any finding
//! other than a PEM block or a JWT, so a value split across chunks is always seen whole
//! before any of it is let out; after each chunk at most [`MAX_HOLD_BACK`] bytes are held.
//! A PEM private key block is held from its `-----BEGIN ... PRIVATE KEY-----` line until its
//! end line, and a JWT until it ends, up to [`MAX_LONG_HOLD`] bytes: past that, what is
//! held is replaced by a placeholder and the rest of the block or token is dropped as it
//! arrives.

use super::pii::{self, Finding, PiiKind, find_prefix, open_pem_start, pem_end};
use super::redact::Redactor;

/// Bytes that must follow a piece of text before it is let out.
pub const WINDOW: usize = 256;
/// The most bytes held back after a chunk, outside PEM blocks and JWTs.
pub const MAX_HOLD_BACK: usize = 2 * WINDOW;
/// The most bytes of one PEM block or JWT held back before it is redacted unseen.
pub const MAX_LONG_HOLD: usize = 16 * 1024;
/// Text already let out that is kept for look-behind (a boundary, "call" before a number).
const CONTEXT: usize = 64;
/// What is kept of a dropped PEM block to find its end line across chunks.
const END_LINE_TAIL: usize = 64;

/// A streamed text's redaction state: what is held back, and the request's placeholders.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    redactor: Redactor,
    held: String,
    context: String,
    dropping: Option<Dropping>,
    /// `held`'s length when an open PEM block or JWT was last looked at, so a long one
    /// is not scanned again for every small chunk.
    long_hold_seen_at: Option<usize>,
}

/// The rest of a PEM block or token that was redacted before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dropping {
    PemBlock,
    TokenRun,
}

impl StreamRedactor {
    /// A stream redactor that gives placeholders from `redactor`: pass the one that
    /// redacted the request so a value echoed back gets the same placeholder.
    pub fn new(redactor: Redactor) -> Self {
        Self { redactor, ..Self::default() }
    }

    /// The placeholders given so far.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The placeholders, for the next text of the same request.
    pub fn into_redactor(self) -> Redactor {
        self.redactor
    }

    /// How many bytes are held back.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Takes the next chunk; returns the text that can be let out now, redacted.
    pub fn push(&mut self, chunk: &str) -> String {
        self.held.push_str(chunk);
        let mut out = String::new();
        if self.dropping.is_some() {
            self.drop_rest_of_long_value();
            if self.dropping.is_some() {
                return out;
            }
        }
        if self.held.len() >= MAX_HOLD_BACK
            && self.long_hold_seen_at.is_none_or(|seen| self.held.len() >= seen + WINDOW)
        {
            out.push_str(&self.release(false));
        }
        out
    }

    /// Ends the stream: returns everything still held, redacted.
    pub fn finish(&mut self) -> String {
        if self.dropping.take().is_some() {
            self.held.clear();
            return String::new();
        }
        self.release(true)
    }

    /// Lets out the held text that no future chunk can turn into (part of) a finding;
    /// at the end, all of it.
    fn release(&mut self, at_end: bool) -> String {
        let mut out = String::new();
        // A huge chunk may hold more than one search's bound of findings: go on from
        // where the search stopped until the rest fits.
        loop {
            let (released, searched_all) = self.release_once(at_end);
            out.push_str(&released);
            if searched_all || self.dropping.is_some() {
                return out;
            }
        }
    }

    /// One search over what is held, and the release it allows; whether the search
    /// covered all that is held (or made no progress, so must not be repeated).
    fn release_once(&mut self, at_end: bool) -> (String, bool) {
        let scanned = format!("{}{}", self.context, self.held);
        let offset = self.context.len();
        let (found, searched) = find_prefix(&scanned);
        let findings: Vec<Finding> = found
            .into_iter()
            .filter(|finding| finding.range.end > offset)
            .map(|finding| Finding {
                kind: finding.kind,
                range: finding.range.start.saturating_sub(offset)..finding.range.end - offset,
            })
            .collect();
        let searched = searched.saturating_sub(offset);
        let searched_all = searched >= self.held.len() || searched == 0;
        let mut cut = self.held.len();
        if !at_end {
            cut = pii::floor_char_boundary(&self.held, self.held.len().saturating_sub(WINDOW));
            self.long_hold_seen_at = None;
            if let Some((start, kind)) = open_long_value(&self.held) {
                if self.held.len() - start > MAX_LONG_HOLD {
                    return (self.redact_long_value(start, kind, &findings), true);
                }
                cut = cut.min(start);
                self.long_hold_seen_at = Some(self.held.len());
            }
            // Findings are sorted and apart: moving the cut to one's start never lands in another.
            for finding in findings.iter().rev() {
                if finding.range.start < cut && finding.range.end > cut {
                    cut = finding.range.start;
                }
            }
        }
        if !searched_all {
            cut = cut.min(searched);
        }
        let released: Vec<Finding> =
            findings.into_iter().filter(|finding| finding.range.end <= cut).collect();
        let out = self.redactor.redact(&self.held[..cut], &released);
        self.remember_context(cut);
        self.held.drain(..cut);
        (out, searched_all || cut == 0)
    }

    /// Lets out the text before an over-long PEM block or JWT and a placeholder for it,
    /// and drops the rest of it as it arrives.
    fn redact_long_value(&mut self, start: usize, kind: PiiKind, findings: &[Finding]) -> String {
        let before: Vec<Finding> =
            findings.iter().filter(|finding| finding.range.end <= start).cloned().collect();
        let mut out = self.redactor.redact(&self.held[..start], &before);
        out.push_str(self.redactor.placeholder(kind, &self.held[start..]));
        self.dropping = Some(match kind {
            PiiKind::PrivateKey => Dropping::PemBlock,
            _ => Dropping::TokenRun,
        });
        self.context.clear();
        self.held.clear();
        self.long_hold_seen_at = None;
        out
    }

    /// Drops the held text that still belongs to a value redacted before it ended.
    fn drop_rest_of_long_value(&mut self) {
        match self.dropping {
            Some(Dropping::PemBlock) => match pem_end(&self.held) {
                Some(end) => {
                    self.held.drain(..end);
                    self.dropping = None;
                }
                None => {
                    let keep_from =
                        pii::floor_char_boundary(&self.held, self.held.len().saturating_sub(END_LINE_TAIL));
                    self.held.drain(..keep_from);
                }
            },
            Some(Dropping::TokenRun) => {
                let run = self.held.bytes().take_while(|&b| is_jwt_byte(b)).count();
                self.held.drain(..run);
                if !self.held.is_empty() {
                    self.dropping = None;
                }
            }
            None => {}
        }
    }

    /// Keeps the end of the text about to be let out, for look-behind.
    fn remember_context(&mut self, cut: usize) {
        self.context.push_str(&self.held[..cut]);
        let keep_from = pii::floor_char_boundary(&self.context, self.context.len().saturating_sub(CONTEXT));
        self.context.drain(..keep_from);
    }
}

/// A PEM block without its end line yet, or a JWT reaching the end of `text`: where it
/// starts and what it is.
fn open_long_value(text: &str) -> Option<(usize, PiiKind)> {
    if let Some(start) = open_pem_start(text) {
        return Some((start, PiiKind::PrivateKey));
    }
    let run = text.bytes().rev().take_while(|&b| is_jwt_byte(b)).count();
    let start = text.len() - run;
    text[start..].starts_with("eyJ").then_some((start, PiiKind::Jwt))
}

/// A byte of a JWT (base64url parts and the dots between them).
fn is_jwt_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What redacting `text` whole gives.
    fn redacted_whole(text: &str) -> String {
        Redactor::new().redact_all(text)
    }

    /// Streams `text` cut at `cuts` (byte offsets, any order), checking the hold-back bound
    /// after each chunk.
    fn streamed(text: &str, cuts: &[usize]) -> String {
        let mut bounds: Vec<usize> = cuts.iter().map(|&cut| pii::floor_char_boundary(text, cut)).collect();
        bounds.push(0);
        bounds.push(text.len());
        bounds.sort_unstable();
        bounds.dedup();
        let mut stream = StreamRedactor::default();
        let mut out = String::new();
        for pair in bounds.windows(2) {
            out.push_str(&stream.push(&text[pair[0]..pair[1]]));
            if open_long_value(&stream.held).is_none() {
                assert!(stream.held() <= MAX_HOLD_BACK, "held {} bytes", stream.held());
            }
        }
        out.push_str(&stream.finish());
        assert_eq!(stream.held(), 0);
        out
    }

    const CARD_AND_EMAIL: &str =
        "Please charge 4111 1111 1111 1111 and send the receipt to jane.doe@example.com, thanks.";

    #[test]
    fn a_card_or_email_split_at_every_position_is_redacted() {
        let expected = "Please charge [CARD_1] and send the receipt to [EMAIL_1], thanks.";
        assert_eq!(redacted_whole(CARD_AND_EMAIL), expected);
        for cut in 0..=CARD_AND_EMAIL.len() {
            assert_eq!(streamed(CARD_AND_EMAIL, &[cut]), expected, "cut at {cut}");
        }
        let one_byte_chunks: Vec<usize> = (0..CARD_AND_EMAIL.len()).collect();
        assert_eq!(streamed(CARD_AND_EMAIL, &one_byte_chunks), expected);
    }

    #[test]
    fn long_text_is_let_out_before_the_end_with_bounded_hold_back() {
        let sentence = "The quick brown fox pays with 5555 5555 5555 4444 and mails fox@example.org. ";
        let text = sentence.repeat(40);
        let mut stream = StreamRedactor::default();
        let mut early = String::new();
        for chunk in text.as_bytes().chunks(7) {
            let Ok(chunk) = std::str::from_utf8(chunk) else { unreachable!("ASCII") };
            early.push_str(&stream.push(chunk));
            assert!(stream.held() <= MAX_HOLD_BACK);
        }
        assert!(
            early.len() > text.len() / 2,
            "let out {} of {} bytes before the end",
            early.len(),
            text.len()
        );
        early.push_str(&stream.finish());
        assert_eq!(early, "The quick brown fox pays with [CARD_1] and mails [EMAIL_1]. ".repeat(40));
    }

    #[test]
    fn the_request_side_placeholders_carry_over() {
        let mut request = Redactor::new();
        assert_eq!(
            request.redact_all("I am bob@example.com, card 4111111111111111"),
            "I am [EMAIL_1], card [CARD_1]"
        );
        let mut stream = StreamRedactor::new(request);
        let mut out = stream.push("Hello bob@exa");
        out.push_str(&stream.push("mple.com, your card 4111 1111 1111 1111 and alice@example.com"));
        out.push_str(&stream.finish());
        assert_eq!(out, "Hello [EMAIL_1], your card [CARD_1] and [EMAIL_2]");
        assert_eq!(stream.into_redactor().len(), 3);
    }

    #[test]
    fn a_pem_block_is_held_until_its_end_line() {
        let body = "MIIEowIBAAKCAQEA1zKdm9VkQ3f0a8TzXy\n".repeat(30);
        let text = format!(
            "Here it is:\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\nDone."
        );
        let mut stream = StreamRedactor::default();
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            out.push_str(&stream.push(line));
            assert!(!out.contains("MIIE"), "{out}");
        }
        out.push_str(&stream.finish());
        assert_eq!(out, "Here it is:\n[PRIVATE_KEY_1]\nDone.");
    }

    #[test]
    fn an_over_long_pem_block_is_redacted_unseen_and_its_rest_dropped() {
        let body = "MIIEowIBAAKCAQEA1zKdm9VkQ3f0a8TzXy\n".repeat(MAX_LONG_HOLD / 20);
        let text = format!("Key:\n-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\nafter");
        let mut stream = StreamRedactor::default();
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(100) {
            let Ok(chunk) = std::str::from_utf8(chunk) else { unreachable!("ASCII") };
            out.push_str(&stream.push(chunk));
            assert!(stream.held() <= MAX_LONG_HOLD + 200);
        }
        out.push_str(&stream.finish());
        assert_eq!(out, "Key:\n[PRIVATE_KEY_1]\nafter");
    }

    #[test]
    fn a_jwt_split_across_chunks_is_redacted() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let text = format!("{}Authorization: Bearer {jwt} ok", "filler ".repeat(100));
        let expected = format!("{}Authorization: Bearer [JWT_1] ok", "filler ".repeat(100));
        for cut in (600..text.len()).step_by(5) {
            assert_eq!(streamed(&text, &[cut, cut + 3]), expected, "cut at {cut}");
        }
    }

    #[test]
    fn one_huge_chunk_with_more_than_max_findings_is_redacted_whole() {
        let text = "a1@x.io 4111111111111111 ".repeat(pii::MAX_FINDINGS);
        let mut stream = StreamRedactor::default();
        let mut out = stream.push(&text);
        out.push_str(&stream.finish());
        assert_eq!(out, "[EMAIL_1] [CARD_1] ".repeat(pii::MAX_FINDINGS));
    }

    proptest! {
        #[test]
        fn random_splits_give_the_whole_text_redaction(
            prefix in "[a-z ]{0,600}",
            cuts in proptest::collection::vec(0usize..2000, 0..12),
        ) {
            let text = format!("{prefix} pay 3782 822463 10005 or mail ops@example.net; call +44 20 7946 0958. {prefix}");
            let out = streamed(&text, &cuts);
            prop_assert_eq!(&out, &redacted_whole(&text));
            prop_assert!(!out.contains("822463") && !out.contains("ops@") && !out.contains("7946"), "{}", out);
        }
    }
}
