//! The error every pipeline stage returns, with enough detail to answer the client well.

use std::fmt;
use std::time::Duration;

/// What went wrong, in terms the edge maps to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Malformed or invalid request (400).
    InvalidRequest,
    /// Missing or bad credentials (401).
    Authentication,
    /// Credentials lack permission (403).
    PermissionDenied,
    /// No provider serves the requested model (404).
    ModelNotFound,
    /// No such endpoint (404).
    NotFound,
    /// The endpoint exists but not for this HTTP method (405).
    MethodNotAllowed,
    /// Request body over the configured limit (413).
    PayloadTooLarge,
    /// The client took too long to send its request (408).
    RequestTimeout,
    /// Rate limited, by Loom or upstream (429).
    RateLimited,
    /// A budget or quota is spent (429, `insufficient_quota`).
    QuotaExceeded,
    /// Upstream rejected the request with a 4xx other than 401/403/429.
    UpstreamRejected,
    /// Upstream answered with a server error (502).
    UpstreamError,
    /// Upstream could not be reached (502).
    UpstreamUnavailable,
    /// Upstream is overloaded (503).
    Overloaded,
    /// Upstream took too long (504).
    Timeout,
    /// A bug or an unexpected state in Loom (500).
    Internal,
}

/// What the upstream said when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFailure {
    /// Provider name as configured.
    pub provider: String,
    /// HTTP status from upstream, when it answered.
    pub status: Option<u16>,
    /// The provider's own error type (e.g. `rate_limit_error`).
    pub error_type: Option<String>,
    /// The provider's error code.
    pub code: Option<String>,
    /// How long upstream asked us to wait.
    pub retry_after: Option<Duration>,
    /// The upstream's error body, secrets removed and bounded in size (for logs).
    pub body: Option<String>,
}

/// The longest wait a client is told to make before retrying, whatever upstream asked.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A failed request: its kind, a client-safe message, and the field at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct LoomError {
    /// Category, which decides the status code.
    pub kind: ErrorKind,
    /// Human-readable message; never contains secrets.
    pub message: String,
    /// The request field at fault, if any (e.g. `messages[0].role`).
    pub param: Option<String>,
    /// Machine-readable code such as `model_not_found`.
    pub code: Option<String>,
    /// Upstream details when a provider failed.
    pub upstream: Option<Box<UpstreamFailure>>,
    /// HTTP headers the client gets with the error (e.g. rate-limit state, `Retry-After`).
    pub headers: Option<Box<http::HeaderMap>>,
    /// Why Loom itself refused the request (e.g. `rate_limit:provider:requests`), for its
    /// usage record; `None` for every other error.
    pub refusal: Option<Box<str>>,
}

impl LoomError {
    /// The HTTP status a client sees for this error.
    pub fn http_status(&self) -> u16 {
        match self.kind {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::ModelNotFound | ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::RateLimited | ErrorKind::QuotaExceeded => 429,
            // Upstream's own 4xx passes through; anything else is the client's fault too.
            ErrorKind::UpstreamRejected => self
                .upstream
                .as_ref()
                .and_then(|upstream| upstream.status)
                .filter(|status| (400..500).contains(status))
                .unwrap_or(400),
            ErrorKind::UpstreamError | ErrorKind::UpstreamUnavailable => 502,
            ErrorKind::Overloaded => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Internal => 500,
        }
    }

    /// An error of this kind with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        LoomError {
            kind,
            message: message.into(),
            param: None,
            code: None,
            upstream: None,
            headers: None,
            refusal: None,
        }
    }

    /// A 400 naming the field at fault.
    pub fn invalid_request(message: impl Into<String>, param: Option<String>) -> Self {
        LoomError { param, ..LoomError::new(ErrorKind::InvalidRequest, message) }
    }

    /// A 404 for a model nobody serves, listing what is served.
    pub fn model_not_found(model: &str, served: &[String]) -> Self {
        let message = if served.is_empty() {
            format!("The model `{model}` does not exist: this gateway serves no models")
        } else {
            format!("The model `{model}` does not exist; models served here: {}", served.join(", "))
        };
        LoomError {
            param: Some("model".to_owned()),
            code: Some("model_not_found".to_owned()),
            ..LoomError::new(ErrorKind::ModelNotFound, message)
        }
    }

    /// An internal error.
    pub fn internal(message: impl Into<String>) -> Self {
        LoomError::new(ErrorKind::Internal, message)
    }

    /// Sets the machine-readable code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Attaches upstream details.
    pub fn with_upstream(mut self, upstream: UpstreamFailure) -> Self {
        self.upstream = Some(Box::new(upstream));
        self
    }

    /// Marks the error as Loom's own refusal, with its reason.
    pub fn with_refusal(mut self, reason: impl Into<Box<str>>) -> Self {
        self.refusal = Some(reason.into());
        self
    }

    /// Adds HTTP headers the client gets with the error (later values win).
    pub fn with_headers(mut self, headers: http::HeaderMap) -> Self {
        match &mut self.headers {
            Some(existing) => existing.extend(headers),
            None => self.headers = Some(Box::new(headers)),
        }
        self
    }

    /// How long the client should wait before retrying, if upstream said (at most
    /// [`MAX_RETRY_AFTER`]).
    pub fn retry_after(&self) -> Option<Duration> {
        self.upstream.as_ref().and_then(|upstream| upstream.retry_after).map(|wait| wait.min(MAX_RETRY_AFTER))
    }
}

impl fmt::Display for LoomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoomError {}
