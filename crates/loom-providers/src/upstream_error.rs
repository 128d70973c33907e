//! What of an upstream's error body reaches the client (a scrubbed, bounded message and
//! short identifier-like fields) and what reaches the log (the scrubbed, bounded body).

use loom_core::Scrubber;
use loom_core::scrub::bounded;

use crate::error::ErrorFields;
use crate::upstream::ErrorBody;

/// Longest upstream message passed on to clients, in bytes.
const MAX_MESSAGE_BYTES: usize = 1000;
/// Longest upstream error body kept for the log and the access log, in bytes.
const MAX_BODY_BYTES: usize = 4096;
/// Longest error type or code passed on.
const MAX_TOKEN_LEN: usize = 64;
/// Longest `param` passed on (field paths such as `messages[12].content[3].image_url`).
const MAX_PARAM_LEN: usize = 128;

/// An upstream error as it may be shown: fields and message safe for clients, the body
/// safe for logs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UpstreamErrorReport {
    /// Type, code and param, each kept only when a short identifier with no secret.
    pub(crate) fields: ErrorFields,
    /// The message, scrubbed and bounded.
    pub(crate) message: String,
    /// The whole body, scrubbed and bounded; `None` when there was none.
    pub(crate) body: Option<String>,
}

/// Makes a parsed upstream error (`raw` being its whole body) safe, and logs it.
pub(crate) fn report(
    scrubber: &Scrubber,
    provider: &str,
    status: u16,
    parsed: ErrorBody,
    raw: &[u8],
) -> UpstreamErrorReport {
    let body = (!raw.is_empty()).then(|| {
        let text = String::from_utf8_lossy(raw);
        bounded(&scrubber.scrub(&text), MAX_BODY_BYTES).into_owned()
    });
    tracing::warn!(provider, status, body = body.as_deref().unwrap_or(""), "upstream error");
    let ErrorBody { fields, message } = parsed;
    let fields = ErrorFields {
        error_type: identifier(scrubber, fields.error_type, MAX_TOKEN_LEN),
        code: identifier(scrubber, fields.code, MAX_TOKEN_LEN),
        param: identifier(scrubber, fields.param, MAX_PARAM_LEN),
    };
    let message = bounded(&scrubber.scrub(&message), MAX_MESSAGE_BYTES).into_owned();
    UpstreamErrorReport { fields, message, body }
}

/// `value` if it is a short identifier-like token holding no secret.
fn identifier(scrubber: &Scrubber, value: Option<String>, max_len: usize) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '[' | ']');
    value.filter(|value| {
        !value.is_empty()
            && value.len() <= max_len
            && value.chars().all(allowed)
            && !scrubber.finds_secret(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::parse_error_body;

    const KEY: &str = "sk-live-secret-0123456789";

    fn report_of(body: &str) -> UpstreamErrorReport {
        let scrubber = Scrubber::new([KEY]);
        report(&scrubber, "p", 400, parse_error_body(body.as_bytes()), body.as_bytes())
    }

    #[test]
    fn identifier_fields_are_kept_and_others_dropped() {
        let kept = report_of(
            r#"{"error":{"message":"Invalid type","type":"invalid_request_error","param":"messages[0].content","code":"invalid_type"}}"#,
        );
        assert_eq!(
            kept.fields,
            ErrorFields {
                error_type: Some("invalid_request_error".to_owned()),
                code: Some("invalid_type".to_owned()),
                param: Some("messages[0].content".to_owned()),
            }
        );
        let body = format!(
            r#"{{"error":{{"message":"bad key {KEY}","type":"Bearer {KEY}","param":"{KEY}","code":"{}"}}}}"#,
            "x".repeat(65)
        );
        let dropped = report_of(&body);
        assert_eq!(dropped.fields, ErrorFields::default());
        assert_eq!(dropped.message, "bad key [redacted]");
        assert_eq!(
            dropped.body.as_deref(),
            Some(
                format!(
                    r#"{{"error":{{"message":"bad key [redacted]","type":"Bearer [redacted]","param":"[redacted]","code":"{}"}}}}"#,
                    "x".repeat(65)
                )
                .as_str()
            )
        );
    }

    #[test]
    fn long_messages_and_bodies_are_bounded_after_scrubbing() {
        // The key straddles the cut: it must not leave a prefix behind.
        let message = format!("{}{KEY}{}", "m".repeat(990), "n".repeat(10_000));
        let body = format!(r#"{{"error":{{"message":"{message}"}}}}"#);
        let report = report_of(&body);
        assert_eq!(report.message, format!("{}[redact…", "m".repeat(990)));
        assert!(report.body.as_deref().is_some_and(|body| body.len() <= MAX_BODY_BYTES));
        assert!(!report.message.contains("sk-"));
    }
}
