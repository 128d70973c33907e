//! Credentials: OpenAI and Anthropic API keys, AWS access key ids, GitHub and Slack
//! tokens, JSON Web Tokens, PEM private keys, and high-entropy values assigned to keys
//! named like secrets (`password=`, `api_key:`, `"client_secret": ...`).

use std::sync::LazyLock;

use base64::Engine as _;
use regex::Regex;

use super::checksum::shannon_entropy;
use super::{Candidates, PiiKind, char_at, char_before};

/// The most bytes a PEM block may span; longer ones are cut at this size.
pub const MAX_PEM_BYTES: usize = 16 * 1024;

// Token lengths are checked in code rather than with `{m,n}`: large counted repetitions
// make the regexes' automata big and slow.
static API_KEY: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"sk-(?:ant-(?:api|admin)[0-9]{2}-)?[A-Za-z0-9_\-]+").ok());
static AWS_ACCESS_KEY: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[A-Z2-7]{16}").ok());
static GITHUB_TOKEN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?:gh[pousr]_[A-Za-z0-9]+|github_pat_[A-Za-z0-9_]+)").ok());
static SLACK_TOKEN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"xox[abposr]-(?:[0-9]+-){1,3}[A-Za-z0-9\-]+").ok());
static JWT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*").ok());
static PEM_BEGIN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----").ok());
static PEM_END: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----").ok());
// The word that names a secret; the rest of the assignment is read in code from there.
static SECRET_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:secret|token|passw(?:or)?[dt]|kennwort|mot de passe|contraseña|pwd|api_?key|apikey|access_?key|auth_?key|private_?key|_key|credential)").ok()
});
// What joins the name to its value: `=`, `:`, `:=`, `=>` or "is", and quotes.
static ASSIGNS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"^["']?(?:[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}|\s+(?:is|ist|est|es|was|era)\s+)["'`]?"#).ok()
});

/// Token lengths (in bytes, prefix included) outside which a match is not that token.
const API_KEY_LENGTH: std::ops::RangeInclusive<usize> = 23..=220;
const GITHUB_TOKEN_LENGTH: std::ops::RangeInclusive<usize> = 40..=120;
const SLACK_TOKEN_LENGTH: std::ops::RangeInclusive<usize> = 24..=160;
const JWT_LENGTH: std::ops::RangeInclusive<usize> = 24..=8 * 1024;
/// The most characters of a secret name after the word that names it (`_ACCESS_KEY_ID`).
const NAME_TAIL: usize = 24;
/// Secret values' lengths in bytes.
const SECRET_VALUE_LENGTH: std::ops::RangeInclusive<usize> = 12..=200;

/// Adds the credentials in `text` to `found`.
pub(super) fn scan(text: &str, found: &mut Candidates) {
    scan_pem(text, found);
    scan_tokens(text, &JWT, PiiKind::Jwt, found, |jwt| {
        JWT_LENGTH.contains(&jwt.len()) && jwt_header_valid(jwt)
    });
    scan_tokens(text, &API_KEY, PiiKind::ApiKey, found, api_key_valid);
    scan_tokens(text, &AWS_ACCESS_KEY, PiiKind::AwsAccessKey, found, |_| true);
    scan_tokens(text, &GITHUB_TOKEN, PiiKind::GithubToken, found, |token| {
        GITHUB_TOKEN_LENGTH.contains(&token.len())
    });
    scan_tokens(text, &SLACK_TOKEN, PiiKind::SlackToken, found, |token| {
        SLACK_TOKEN_LENGTH.contains(&token.len())
    });
    scan_assignments(text, found);
}

/// Whether `c` may continue a token (so a match beside it is part of something longer).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn scan_tokens(
    text: &str,
    pattern: &LazyLock<Option<Regex>>,
    kind: PiiKind,
    found: &mut Candidates,
    valid: impl Fn(&str) -> bool,
) {
    let Some(pattern) = pattern.as_ref() else { return };
    for token in pattern.find_iter(text) {
        let glued = char_before(text, token.start()).is_some_and(is_token_char)
            || char_at(text, token.end()).is_some_and(is_token_char);
        if !glued && valid(token.as_str()) && !found.push(kind, token.range()) {
            return;
        }
    }
}

/// OpenAI keys mix letters and digits; `sk-` words such as `sk-learn-tutorial` do not.
fn api_key_valid(key: &str) -> bool {
    let body = key.trim_start_matches("sk-");
    API_KEY_LENGTH.contains(&key.len())
        && body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase())
}

/// A JWT's first part is base64url JSON with an `alg` member.
fn jwt_header_valid(token: &str) -> bool {
    let Some(header) = token.split('.').next() else { return false };
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('='))
    else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&json).is_ok_and(|value| value.get("alg").is_some())
}

/// PEM private keys from `-----BEGIN ... PRIVATE KEY-----` to the matching end line, or,
/// without one, to the end of the base64 body that follows (at most [`MAX_PEM_BYTES`]).
fn scan_pem(text: &str, found: &mut Candidates) {
    let (Some(begin), Some(end)) = (PEM_BEGIN.as_ref(), PEM_END.as_ref()) else { return };
    // The first end line not before the current header, looked up again only once passed,
    // so many headers without end lines do not each scan the text after them.
    let mut next_end = end.find(text).map(|line| line.range());
    let mut from = 0;
    while let Some(header) = begin.find_at(text, from) {
        if next_end.as_ref().is_some_and(|line| line.start < header.end()) {
            next_end = end.find_at(text, header.end()).map(|line| line.range());
        }
        let stop = match &next_end {
            Some(line) if line.end - header.start() <= MAX_PEM_BYTES => line.end,
            _ => {
                let limit = super::floor_char_boundary(text, header.start() + MAX_PEM_BYTES);
                header.end() + base64_body_len(&text[header.end()..limit])
            }
        };
        if !found.push(PiiKind::PrivateKey, header.start()..stop) {
            return;
        }
        from = stop;
    }
}

/// The length of the run of base64 and line-break characters at the start of `text`.
fn base64_body_len(text: &str) -> usize {
    text.bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r' | b' '))
        .count()
}

/// High-entropy values assigned to names of secrets; the finding is the value alone.
fn scan_assignments(text: &str, found: &mut Candidates) {
    let (Some(name), Some(assigns)) = (SECRET_NAME.as_ref(), ASSIGNS.as_ref()) else { return };
    let mut from = 0;
    while let Some(word) = name.find_at(text, from) {
        from = word.end();
        // The rest of the name (`_ACCESS_KEY_ID`), then what assigns, then the value.
        let name_end = word.end()
            + text[word.end()..]
                .bytes()
                .take(NAME_TAIL)
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                .count();
        let Some(joint) = assigns.find(&text[name_end..]) else { continue };
        let value_start = name_end + joint.end();
        let value_len = text[value_start..]
            .bytes()
            .take(*SECRET_VALUE_LENGTH.end() + 1)
            .take_while(|&b| b.is_ascii_alphanumeric() || b"+/=_-.~!@#$%^&*()".contains(&b))
            .count();
        let mut value = text[value_start..value_start + value_len].trim_end_matches(['.', ',']);
        // A closing parenthesis without its opening one belongs to the code around the value.
        while value.ends_with(')') && value.matches(')').count() > value.matches('(').count() {
            value = &value[..value.len() - 1];
        }
        if SECRET_VALUE_LENGTH.contains(&value.len()) && secret_like(value) {
            if !found.push(PiiKind::HighEntropySecret, value_start..value_start + value.len()) {
                return;
            }
            from = value_start + value.len();
        }
    }
}

/// A value looks random: letters and digits mixed, varied characters, not a file path,
/// dotted name or placeholder.
fn secret_like(value: &str) -> bool {
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    let has_letter = value.bytes().any(|b| b.is_ascii_alphabetic());
    let looks_like_path_or_name = value.contains("://")
        || value.starts_with('/')
        || value.split('.').count() > 2
        || value.contains("${");
    has_digit && has_letter && !looks_like_path_or_name && shannon_entropy(value) >= 3.0
}

/// Where the last PEM private key header in `text` that has no end line after it starts.
pub(crate) fn open_pem_start(text: &str) -> Option<usize> {
    let (begin, end) = (PEM_BEGIN.as_ref()?, PEM_END.as_ref()?);
    let last = begin.find_iter(text).last()?;
    (!end.is_match(&text[last.end()..])).then_some(last.start())
}

/// The byte just past the first PEM private key end line in `text`.
pub(crate) fn pem_end(text: &str) -> Option<usize> {
    Some(PEM_END.as_ref()?.find(text)?.end())
}

/// Whether every pattern of this family compiled.
#[cfg(test)]
pub(super) fn patterns_compile() -> bool {
    API_KEY.is_some()
        && AWS_ACCESS_KEY.is_some()
        && GITHUB_TOKEN.is_some()
        && SLACK_TOKEN.is_some()
        && JWT.is_some()
        && PEM_BEGIN.is_some()
        && PEM_END.is_some()
        && SECRET_NAME.is_some()
        && ASSIGNS.is_some()
}
