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
        /// The provider's message, secrets redacted, bounded in size.
        message: String,
        /// Requested wait before retrying.
        retry_after: Option<Duration>,
        /// The provider's whole error body, secrets redacted, bounded in size (for logs).
        body: Option<String>,
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
            body: None,
        };
        let kind = match &error {
            ProviderError::Connect { .. } => ErrorKind::UpstreamUnavailable,
            ProviderError::Timeout { .. } => ErrorKind::Timeout,
            ProviderError::Status { status, fields, retry_after, body, .. } => {
                upstream.status = Some(*status);
                upstream.error_type = fields.error_type.clone();
                upstream.code = fields.code.clone();
                upstream.retry_after = *retry_after;
                upstream.body = body.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_maps_to_client_kind() {
        assert_eq!(kind_for_status(429), ErrorKind::RateLimited);
        assert_eq!(kind_for_status(500), ErrorKind::UpstreamError);
        assert_eq!(kind_for_status(401), ErrorKind::UpstreamError);
        assert_eq!(kind_for_status(422), ErrorKind::UpstreamRejected);
        assert_eq!(kind_for_status(408), ErrorKind::Timeout);
    }
}
