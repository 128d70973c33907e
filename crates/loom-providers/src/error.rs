//! Provider failures and how they map onto [`LoomError`].

use std::time::Duration;

use loom_core::{ErrorKind, LoomError, UpstreamFailure};

/// Which phase of an upstream call ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Establishing the connection.
    Connect,
    /// Waiting for response headers.
    FirstByte,
    /// Waiting for the next stream chunk.
    Idle,
    /// The whole request.
    Request,
}

impl TimeoutPhase {
    fn describe(self) -> &'static str {
        match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::FirstByte => "waiting for the response to start",
            TimeoutPhase::Idle => "waiting for the next stream chunk",
            TimeoutPhase::Request => "waiting for the whole response",
        }
    }
}

/// An upstream call that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached.
    #[error("could not reach provider `{provider}`: {reason}")]
    Connect {
        /// Provider name.
        provider: String,
        /// Why (never contains secrets).
        reason: String,
    },
    /// The provider took too long.
    #[error("provider `{provider}` timed out {} after {:?}", phase.describe(), after)]
    Timeout {
        /// Provider name.
        provider: String,
        /// Which phase timed out.
        phase: TimeoutPhase,
        /// The configured limit.
        after: Duration,
    },
    /// The provider answered with an error status.
    #[error("provider `{provider}` returned HTTP {status}: {message}")]
    Status {
        /// Provider name.
        provider: String,
        /// HTTP status.
        status: u16,
        /// The error's type, code and field, as the provider named them.
        fields: Box<ErrorFields>,
        /// The provider's message, secrets redacted.
        message: String,
        /// Requested wait before retrying.
        retry_after: Option<Duration>,
    },
    /// The provider sent something that is not its documented format.
    #[error("provider `{provider}` sent an invalid response: {reason}")]
    InvalidResponse {
        /// Provider name.
        provider: String,
        /// What was wrong.
        reason: String,
    },
    /// The provider cannot carry out this kind of request.
    #[error("provider `{provider}` does not support {what}")]
    Unsupported {
        /// Provider name.
        provider: String,
        /// What is unsupported.
        what: String,
    },
    /// The provider configuration is invalid.
    #[error("provider `{provider}`: {reason}")]
    Config {
        /// Provider name.
        provider: String,
        /// What is wrong.
        reason: String,
    },
}

impl ProviderError {
    fn provider(&self) -> &str {
        match self {
            ProviderError::Connect { provider, .. }
            | ProviderError::Timeout { provider, .. }
            | ProviderError::Status { provider, .. }
            | ProviderError::InvalidResponse { provider, .. }
            | ProviderError::Unsupported { provider, .. }
            | ProviderError::Config { provider, .. } => provider,
        }
    }
}

/// What a provider's error body names besides its message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    /// The provider's error type.
    pub error_type: Option<String>,
    /// The provider's error code.
    pub code: Option<String>,
    /// The request field the provider names as the cause.
    pub param: Option<String>,
}

/// The client-facing kind of an upstream HTTP status.
pub fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        408 => ErrorKind::Timeout,
        413 => ErrorKind::PayloadTooLarge,
        429 => ErrorKind::RateLimited,
        // Anthropic's "overloaded": retryable, shown to clients as 503.
        529 => ErrorKind::Overloaded,
        // Upstream rejected the gateway's own credentials: a gateway fault, not the client's.
        401 | 403 => ErrorKind::UpstreamError,
        400..=499 => ErrorKind::UpstreamRejected,
        _ => ErrorKind::UpstreamError,
    }
}

impl From<ProviderError> for LoomError {
    fn from(error: ProviderError) -> LoomError {
        let message = error.to_string();
        let mut upstream = UpstreamFailure {
            provider: error.provider().to_owned(),
            status: None,
            error_type: None,
            code: None,
            retry_after: None,
        };
        let kind = match &error {
            ProviderError::Connect { .. } => ErrorKind::UpstreamUnavailable,
            ProviderError::Timeout { .. } => ErrorKind::Timeout,
            ProviderError::Status { status, fields, retry_after, .. } => {
                upstream.status = Some(*status);
                upstream.error_type = fields.error_type.clone();
                upstream.code = fields.code.clone();
                upstream.retry_after = *retry_after;
                kind_for_status(*status)
            }
            ProviderError::InvalidResponse { .. } => ErrorKind::UpstreamError,
            ProviderError::Unsupported { .. } => ErrorKind::InvalidRequest,
            ProviderError::Config { .. } => ErrorKind::Internal,
        };
        let code = match &error {
            ProviderError::Status { fields, .. } => fields.code.clone(),
            ProviderError::Timeout { .. } => Some("upstream_timeout".to_owned()),
            ProviderError::Connect { .. } => Some("upstream_unavailable".to_owned()),
            _ => None,
        };
        let param = match &error {
            ProviderError::Status { fields, .. } => fields.param.clone(),
            _ => None,
        };
        LoomError { code, param, ..LoomError::new(kind, message) }.with_upstream(upstream)
    }
}

/// Removes the configured key, and anything shaped like an API key, from upstream text.
pub fn redact_secrets(text: &str, secret: Option<&str>) -> String {
    let mut out = match secret {
        Some(secret) if secret.len() >= 4 => text.replace(secret, "[redacted]"),
        _ => text.to_owned(),
    };
    // Providers echo masked keys ("sk-proj-****abcd"); drop those too.
    for prefix in ["sk-", "sk_", "AIza"] {
        let mut cleaned = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(prefix) {
            let boundary = rest[..at].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
            let tail = &rest[at..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*')))
                .unwrap_or(tail.len());
            cleaned.push_str(&rest[..at]);
            if boundary && len >= prefix.len() + 8 {
                cleaned.push_str("[redacted]");
            } else {
                cleaned.push_str(&tail[..len]);
            }
            rest = &tail[len..];
        }
        cleaned.push_str(rest);
        out = cleaned;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_configured_and_echoed_keys() {
        let text = "Incorrect API key provided: sk-proj-****************abcd. Key sk-live-secret-123";
        let redacted = redact_secrets(text, Some("sk-live-secret-123"));
        assert_eq!(redacted, "Incorrect API key provided: [redacted]. Key [redacted]");
        assert_eq!(redact_secrets("task-list ok", None), "task-list ok");
    }

    #[test]
    fn status_maps_to_client_kind() {
        assert_eq!(kind_for_status(429), ErrorKind::RateLimited);
        assert_eq!(kind_for_status(500), ErrorKind::UpstreamError);
        assert_eq!(kind_for_status(401), ErrorKind::UpstreamError);
        assert_eq!(kind_for_status(422), ErrorKind::UpstreamRejected);
        assert_eq!(kind_for_status(408), ErrorKind::Timeout);
    }
}
