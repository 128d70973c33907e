//! The access log: one line per request, written when its answer starts, or with status
//! 499 when the client leaves before that.

use std::sync::Arc;

use http::{Method, Request, StatusCode, Uri};
use loom_core::{LoomError, UpstreamTime};
use tokio::time::Instant;
use tracing::{Span, info};

/// Status logged for a request whose client went away before the answer began (nginx's).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The pending access-log line of one request; logged once, by [`AccessLog::answered`] or
/// on drop.
pub struct AccessLog {
    span: Span,
    method: Method,
    /// A clone of the URI shares its bytes; the path is only read when the line is written.
    uri: Uri,
    started: Instant,
    upstream_time: UpstreamTime,
    failure: Option<Failure>,
    /// The security checks that flagged or redacted the request (`x-loom-guard`).
    guard: Option<String>,
    done: bool,
}

/// What the log line tells of a failed request's upstream.
struct Failure {
    message: String,
    /// The error's machine-readable code.
    code: Option<String>,
    provider: Option<String>,
    upstream_status: Option<u16>,
    /// The upstream's error body, scrubbed and bounded by the provider.
    upstream_body: Option<String>,
}

impl AccessLog {
    /// The line of `request`, which arrived at `started`.
    pub fn new<B>(span: Span, request: &Request<B>, started: Instant, upstream_time: UpstreamTime) -> Self {
        AccessLog {
            span,
            method: request.method().clone(),
            uri: request.uri().clone(),
            started,
            upstream_time,
            failure: None,
            guard: None,
            done: false,
        }
    }

    /// Notes why the request failed, for the line.
    pub fn failed(&mut self, error: &LoomError) {
        self.failure = Some(Failure {
            message: error.message.clone(),
            code: error.code.clone(),
            provider: error.upstream.as_ref().map(|upstream| upstream.provider.clone()),
            upstream_status: error.upstream.as_ref().and_then(|upstream| upstream.status),
            upstream_body: error.upstream.as_ref().and_then(|upstream| upstream.body.clone()),
        });
    }

    /// Notes the checks that acted on the request (the answer's `x-loom-guard` value).
    pub fn guarded(&mut self, checks: Option<&http::HeaderValue>) {
        self.guard = checks.and_then(|value| value.to_str().ok()).map(str::to_owned);
    }

    /// Writes the line of an answer with `status`, served by `provider`.
    pub fn answered(mut self, status: StatusCode, provider: Option<Arc<str>>) {
        self.done = true;
        self.write(status.as_u16(), provider.as_deref());
    }

    fn write(&self, status: u16, provider: Option<&str>) {
        let elapsed_us = self.started.elapsed().as_micros() as u64;
        let upstream_us = self.upstream_time.total().as_micros() as u64;
        let (method, path) = (&self.method, self.uri.path());
        match &self.failure {
            None => info!(
                parent: &self.span,
                status,
                provider = provider.unwrap_or("-"),
                guard = self.guard.as_deref(),
                elapsed_us,
                upstream_us,
                "{method} {path}"
            ),
            Some(failure) => info!(
                parent: &self.span,
                status,
                provider = failure.provider.as_deref().or(provider).unwrap_or("-"),
                upstream_status = failure.upstream_status,
                upstream_body = failure.upstream_body.as_deref(),
                // Loom's own decisions (e.g. `rate_limit_exceeded`, `insufficient_quota`,
                // `invalid_api_key`) are told apart by their code.
                code = failure.code.as_deref(),
                error = %failure.message,
                guard = self.guard.as_deref(),
                elapsed_us,
                upstream_us,
                "{method} {path}"
            ),
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        if !self.done {
            self.failure.get_or_insert_with(|| Failure {
                message: "the client went away before the answer began".to_owned(),
                code: None,
                provider: None,
                upstream_status: None,
                upstream_body: None,
            });
            self.write(CLIENT_CLOSED_REQUEST, None);
        }
    }
}
