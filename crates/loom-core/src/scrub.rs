//! Removing secrets from text that leaves Loom (error bodies, logs): configured
//! secrets in the encodings they are echoed in, and anything shaped like an API key.
//!
//! ```
//! use loom_core::Scrubber;
//!
//! let scrubber = Scrubber::new(["sk-live-0123456789"]);
//! assert_eq!(scrubber.scrub("Authorization: Bearer sk-live-0123456789"), "Authorization: Bearer [redacted]");
//! assert_eq!(scrubber.scrub("key=sk%2Dlive%2D0123456789"), "key=[redacted]");
//! assert_eq!(scrubber.scrub("nothing to hide"), "nothing to hide");
//! ```

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use futures_core::Stream;

use crate::error::LoomError;
use crate::llm::ChunkStream;
use crate::stream_chunk::StreamChunk;

/// What a removed secret is replaced by.
pub const REDACTED: &str = "[redacted]";

/// Shortest secret (in bytes) a [`Scrubber`] looks for; shorter ones would match ordinary text.
pub const MIN_SECRET_LEN: usize = 4;

/// Prefixes of provider API keys and tokens, redacted even when Loom does not know them
/// (providers echo masked keys such as `sk-proj-****abcd`).
const KEY_PREFIXES: [&str; 4] = ["sk-", "sk_", "AIza", "ya29."];
/// Characters a key-shaped string has after the prefix at least this many of.
const KEY_MIN_TAIL: usize = 8;

/// RFC 3986 unreserved characters stay as they are (Python `quote(safe='')`, Go `PathEscape`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// Python's `quote` default keeps `/` too.
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');
/// JavaScript's `encodeURIComponent`.
const URI_COMPONENT: &AsciiSet =
    &UNRESERVED.remove(b'!').remove(b'*').remove(b'\'').remove(b'(').remove(b')');

/// Replaces configured secrets, and strings shaped like API keys, with `[redacted]`.
///
/// Each secret is found as it is (which covers `Bearer <secret>` and `Basic` user:secret
/// pairs in clear), JSON string-escaped, percent-encoded (form encoding and the common
/// URL encoders' character sets, upper- or lower-case hex), and base64-encoded (standard
/// and URL-safe alphabets, with or without padding, alone or inside a longer base64 text
/// such as `Basic` credentials). Secrets shorter than [`MIN_SECRET_LEN`] bytes (after
/// trimming whitespace) are ignored: they would match ordinary words. Overlapping
/// matches are redacted as one span.
///
/// A scrubber with no secrets only looks for key-shaped strings; it costs no allocation
/// when the text has none.
#[derive(Clone, Default)]
pub struct Scrubber {
    matcher: Matcher,
}

#[derive(Clone, Default)]
enum Matcher {
    /// No secrets configured.
    #[default]
    Empty,
    /// Every form of every secret.
    Patterns(AhoCorasick),
    /// The patterns could not be compiled (beyond the automaton's size limits): every
    /// text is withheld rather than risk a leak.
    WithholdAll,
}

impl Scrubber {
    /// A scrubber for these secrets (shorter than [`MIN_SECRET_LEN`] bytes are ignored).
    pub fn new<I, S>(secrets: I) -> Scrubber
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns = BTreeSet::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.trim().len() >= MIN_SECRET_LEN {
                add_forms(secret, &mut patterns);
            }
        }
        if patterns.is_empty() {
            return Scrubber::default();
        }
        // Standard semantics report overlapping matches, which are then merged.
        let matcher = match AhoCorasick::builder().match_kind(MatchKind::Standard).build(&patterns) {
            Ok(automaton) => Matcher::Patterns(automaton),
            Err(_) => Matcher::WithholdAll,
        };
        Scrubber { matcher }
    }

    /// Whether this scrubber knows no secrets (it still redacts key-shaped strings).
    pub fn is_empty(&self) -> bool {
        matches!(self.matcher, Matcher::Empty)
    }

    /// `text` with every secret and key-shaped string replaced by `[redacted]`; borrowed
    /// when there was nothing to replace.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let known = match &self.matcher {
            Matcher::Empty => Cow::Borrowed(text),
            Matcher::Patterns(automaton) => replace_matches(automaton, text),
            Matcher::WithholdAll => return Cow::Owned(REDACTED.to_owned()),
        };
        match known {
            Cow::Borrowed(text) => redact_key_shaped(text),
            Cow::Owned(text) => Cow::Owned(redact_key_shaped(&text).into_owned()),
        }
    }

    /// Whether `text` holds a secret or a key-shaped string.
    pub fn finds_secret(&self, text: &str) -> bool {
        matches!(self.scrub(text), Cow::Owned(_))
    }

    /// The error with secrets removed: its message scrubbed, and its `param`, `code` and
    /// the upstream's error type and code dropped when they hold one (a value that held a
    /// secret names nothing useful); the upstream body is scrubbed.
    pub fn scrub_error(&self, mut error: LoomError) -> LoomError {
        if let Cow::Owned(message) = self.scrub(&error.message) {
            error.message = message;
        }
        self.drop_if_secret(&mut error.param);
        self.drop_if_secret(&mut error.code);
        if let Some(upstream) = error.upstream.as_mut() {
            self.drop_if_secret(&mut upstream.error_type);
            self.drop_if_secret(&mut upstream.code);
            if let Some(body) = upstream.body.as_mut()
                && let Cow::Owned(scrubbed) = self.scrub(body)
            {
                *body = scrubbed;
            }
        }
        error
    }

    /// `chunks` with every error item passed through [`Scrubber::scrub_error`]; chunks
    /// go through untouched.
    pub fn scrub_chunks(&self, chunks: ChunkStream) -> ChunkStream {
        Box::pin(ScrubbedChunks { chunks, scrubber: self.clone() })
    }

    fn drop_if_secret(&self, value: &mut Option<String>) {
        if value.as_deref().is_some_and(|text| self.finds_secret(text)) {
            *value = None;
        }
    }
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns = match &self.matcher {
            Matcher::Empty => 0,
            Matcher::Patterns(automaton) => automaton.patterns_len(),
            Matcher::WithholdAll => usize::MAX,
        };
        f.debug_struct("Scrubber").field("patterns", &patterns).finish()
    }
}

/// The stream [`Scrubber::scrub_chunks`] returns.
struct ScrubbedChunks {
    chunks: ChunkStream,
    scrubber: Scrubber,
}

impl Stream for ScrubbedChunks {
    type Item = Result<StreamChunk, LoomError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.chunks.as_mut().poll_next(cx);
        match polled {
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(self.scrubber.scrub_error(error)))),
            other => other,
        }
    }
}

/// `text` cut to at most `max_bytes` bytes on a char boundary, an ellipsis marking the cut.
pub fn bounded(text: &str, max_bytes: usize) -> Cow<'_, str> {
    const ELLIPSIS: &str = "…";
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let budget = max_bytes.saturating_sub(ELLIPSIS.len());
    let cut = (0..=budget).rev().find(|&index| text.is_char_boundary(index)).unwrap_or(0);
    Cow::Owned(format!("{}{ELLIPSIS}", &text[..cut]))
}

/// Adds every form a secret may be echoed in.
fn add_forms(secret: &str, patterns: &mut BTreeSet<String>) {
    patterns.insert(secret.to_owned());
    add_json_forms(secret, patterns);
    add_percent_forms(secret, patterns);
    for (padded, unpadded) in [(&STANDARD, &STANDARD_NO_PAD), (&URL_SAFE, &URL_SAFE_NO_PAD)] {
        patterns.insert(padded.encode(secret));
        add_base64_forms(secret.as_bytes(), unpadded, patterns);
    }
}

/// The secret as a JSON string's content: serde's escaping, `/` escaped as `\/` (PHP),
/// and non-ASCII as `\u` escapes (Python's `ensure_ascii`).
fn add_json_forms(secret: &str, patterns: &mut BTreeSet<String>) {
    let Ok(quoted) = serde_json::to_string(secret) else { return };
    let escaped = &quoted[1..quoted.len() - 1];
    patterns.insert(escaped.replace('/', "\\/"));
    let mut ascii = String::with_capacity(escaped.len());
    for c in escaped.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    patterns.insert(ascii);
    patterns.insert(escaped.to_owned());
}

/// The secret percent-encoded as URL and form encoders do it.
fn add_percent_forms(secret: &str, patterns: &mut BTreeSet<String>) {
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let mut encoded = vec![form];
    for set in [NON_ALPHANUMERIC, UNRESERVED, UNRESERVED_AND_SLASH, URI_COMPONENT] {
        encoded.push(utf8_percent_encode(secret, set).to_string());
    }
    // Go's `QueryEscape`: unreserved kept, space as `+`.
    encoded.push(utf8_percent_encode(secret, UNRESERVED).to_string().replace("%20", "+"));
    for form in encoded {
        patterns.insert(lowercase_escapes(&form));
        patterns.insert(form);
    }
}

/// `%2F` as `%2f`: some encoders write lower-case hex.
fn lowercase_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            out.push(c);
            if c == '%' {
                hex_left = 2;
            }
        }
    }
    out
}

/// The base64 characters that depend on the secret alone, at each of the three byte
/// offsets it may sit at inside a longer encoded text; at offset 0 also the whole
/// unpadded encoding.
fn add_base64_forms(secret: &[u8], engine: &GeneralPurpose, patterns: &mut BTreeSet<String>) {
    patterns.insert(engine.encode(secret));
    for offset in 0..3 {
        let mut data = vec![0; offset];
        data.extend_from_slice(secret);
        let encoded = engine.encode(&data);
        // Characters mixing the filler's bits with the secret's, then a last one mixing
        // the secret's with whatever follows it.
        let skip = [0, 2, 3][offset];
        let end = if data.len() % 3 == 0 { encoded.len() } else { encoded.len() - 1 };
        if let Some(core) = encoded.get(skip..end)
            && core.len() >= MIN_SECRET_LEN
        {
            patterns.insert(core.to_owned());
        }
    }
}

/// Replaces every match, overlapping matches merged into one span.
fn replace_matches<'a>(automaton: &AhoCorasick, text: &'a str) -> Cow<'a, str> {
    let mut spans: Vec<(usize, usize)> =
        automaton.find_overlapping_iter(text).map(|found| (found.start(), found.end())).collect();
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut current: Option<(usize, usize)> = None;
    for (start, end) in spans {
        match current.as_mut() {
            Some((_, current_end)) if start < *current_end => *current_end = (*current_end).max(end),
            _ => {
                if let Some((current_start, current_end)) = current {
                    out.push_str(&text[copied..current_start]);
                    out.push_str(REDACTED);
                    copied = current_end;
                }
                current = Some((start, end));
            }
        }
    }
    if let Some((current_start, current_end)) = current {
        out.push_str(&text[copied..current_start]);
        out.push_str(REDACTED);
        copied = current_end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Replaces strings that start like a provider key at a word boundary and go on for at
/// least [`KEY_MIN_TAIL`] key characters.
fn redact_key_shaped(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for prefix in KEY_PREFIXES {
        if !out.contains(prefix) {
            continue;
        }
        if let Cow::Owned(replaced) = redact_prefixed(&out, prefix) {
            out = Cow::Owned(replaced);
        }
    }
    out
}

fn redact_prefixed<'a>(text: &'a str, prefix: &str) -> Cow<'a, str> {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*');
    let mut cleaned = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find(prefix) {
        let boundary = rest[..at].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let after = &rest[at + prefix.len()..];
        let tail = after.find(|c: char| !is_key_char(c)).unwrap_or(after.len());
        cleaned.push_str(&rest[..at]);
        if boundary && tail >= KEY_MIN_TAIL {
            cleaned.push_str(REDACTED);
            changed = true;
        } else {
            cleaned.push_str(&rest[at..at + prefix.len() + tail]);
        }
        rest = &after[tail..];
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    cleaned.push_str(rest);
    Cow::Owned(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, UpstreamFailure};

    const KEY: &str = "loom-secret/key+0123456789";

    fn scrub(secrets: &[&str], text: &str) -> String {
        Scrubber::new(secrets).scrub(text).into_owned()
    }

    #[test]
    fn the_raw_secret_and_a_bearer_header_are_redacted() {
        assert_eq!(scrub(&[KEY], &format!("bad key {KEY}!")), "bad key [redacted]!");
        assert_eq!(
            scrub(&[KEY], &format!("Authorization: Bearer {KEY}")),
            "Authorization: Bearer [redacted]"
        );
    }

    #[test]
    fn percent_encoded_forms_are_redacted() {
        for encoded in [
            "loom-secret%2Fkey%2B0123456789",   // URL encoders
            "loom-secret%2fkey%2b0123456789",   // lower-case hex
            "loom%2Dsecret%2Fkey%2B0123456789", // every non-alphanumeric escaped
            "loom-secret/key%2B0123456789",     // `/` kept (Python `quote`)
        ] {
            assert_eq!(scrub(&[KEY], &format!("?key={encoded}&x=1")), "?key=[redacted]&x=1", "{encoded}");
        }
        assert_eq!(scrub(&["my key 1234"], "api_key=my+key+1234"), "api_key=[redacted]");
        assert_eq!(scrub(&["my key 1234"], "api_key=my%20key%201234"), "api_key=[redacted]");
    }

    #[test]
    fn json_escaped_forms_are_redacted() {
        assert_eq!(scrub(&["quo\"te-key"], r#"{"code":"quo\"te-key"}"#), r#"{"code":"[redacted]"}"#);
        assert_eq!(scrub(&[KEY], r#"{"k":"loom-secret\/key+0123456789"}"#), r#"{"k":"[redacted]"}"#);
        assert_eq!(scrub(&["clé-secrète"], r#"{"k":"cl\u00e9-secr\u00e8te"}"#), r#"{"k":"[redacted]"}"#);
    }

    #[test]
    fn base64_forms_are_redacted_alone_and_inside_longer_encodings() {
        let key = "sk_live?>0123456789";
        for encoded in [STANDARD.encode(key), STANDARD_NO_PAD.encode(key), URL_SAFE.encode(key)] {
            assert_eq!(scrub(&[key], &format!("token {encoded} end")), "token [redacted] end", "{encoded}");
        }
        // `Basic base64(user:key)` at each alignment of the key.
        for user in ["u", "us", "usr"] {
            let basic = STANDARD.encode(format!("{user}:{key}"));
            let scrubbed = scrub(&[key], &format!("Basic {basic}"));
            assert!(scrubbed.contains(REDACTED), "{user}: {scrubbed}");
            let left = scrubbed.replace(REDACTED, "");
            // What remains is at most the user's part and a character or two around it.
            assert!(left.len() <= "Basic ".len() + 8, "{user}: {scrubbed}");
        }
    }

    #[test]
    fn overlapping_and_adjacent_secrets_leave_nothing_behind() {
        assert_eq!(scrub(&["abcdef", "defghi"], "x abcdefghi y"), "x [redacted] y");
        assert_eq!(scrub(&["abcdef", "cdef12"], "abcdef12!"), "[redacted]!");
        assert_eq!(scrub(&["abcdefgh", "cdef"], "abcdefgh"), "[redacted]");
        assert_eq!(scrub(&["abcdef", "ghijkl"], "abcdefghijkl"), "[redacted][redacted]");
        assert_eq!(scrub(&["abcd"], "abcdabcd abcd"), "[redacted][redacted] [redacted]");
    }

    #[test]
    fn short_secrets_are_ignored() {
        assert_eq!(scrub(&["abc", "   "], "abc"), "abc");
        assert!(Scrubber::new(["abc"]).is_empty());
    }

    #[test]
    fn key_shaped_strings_are_redacted_without_configured_secrets() {
        let text = "Incorrect API key provided: sk-proj-****************abcd. Key AIzaSyA0123456789";
        assert_eq!(Scrubber::default().scrub(text), "Incorrect API key provided: [redacted]. Key [redacted]");
        assert_eq!(Scrubber::default().scrub("ya29.a0AfB_byC0123456789 x"), "[redacted] x");
        for ordinary in ["task-list ok", "disk-full", "sk-short", "ask-0123456789"] {
            assert!(matches!(Scrubber::default().scrub(ordinary), Cow::Borrowed(_)), "{ordinary}");
        }
    }

    #[test]
    fn errors_lose_their_secrets() {
        let scrubber = Scrubber::new([KEY]);
        let mut error = LoomError::invalid_request(format!("bad {KEY}"), Some(format!("Bearer {KEY}")))
            .with_code("invalid_api_key")
            .with_upstream(UpstreamFailure {
                provider: "p".to_owned(),
                status: Some(401),
                error_type: Some(KEY.to_owned()),
                code: Some("ok_code".to_owned()),
                retry_after: None,
                body: Some(format!(r#"{{"error":"{KEY}"}}"#)),
            });
        error.kind = ErrorKind::UpstreamError;
        let error = scrubber.scrub_error(error);
        assert_eq!(error.message, "bad [redacted]");
        assert_eq!(error.param, None);
        assert_eq!(error.code.as_deref(), Some("invalid_api_key"));
        let upstream = error.upstream.unwrap();
        assert_eq!(upstream.error_type, None);
        assert_eq!(upstream.code.as_deref(), Some("ok_code"));
        assert_eq!(upstream.body.as_deref(), Some(r#"{"error":"[redacted]"}"#));
    }

    #[test]
    fn bounded_cuts_on_a_char_boundary() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("aéééé", 8), "aéé…");
        assert!(bounded(&"é".repeat(1000), 1000).len() <= 1000);
    }

    #[test]
    fn debug_shows_no_secret() {
        assert_eq!(format!("{:?}", Scrubber::new([KEY])), "Scrubber { patterns: 13 }");
    }
}
