//! Maps a [`LoomError`] to an error response in the client's format.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use loom_core::{ClientFormat, ErrorKind, LoomError};
use serde::Serialize;

/// The HTTP status a client sees for this error.
pub fn status_of(error: &LoomError) -> StatusCode {
    StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The OpenAI `error.type` for this error.
fn openai_type(error: &LoomError) -> &'static str {
    match error.kind {
        ErrorKind::InvalidRequest
        | ErrorKind::ModelNotFound
        | ErrorKind::NotFound
        | ErrorKind::MethodNotAllowed
        | ErrorKind::PayloadTooLarge
        | ErrorKind::UpstreamRejected => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::RateLimited => "rate_limit_error",
        // OpenAI's own type for a spent quota, which its SDKs surface as such.
        ErrorKind::QuotaExceeded => "insufficient_quota",
        ErrorKind::UpstreamError | ErrorKind::UpstreamUnavailable => "upstream_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Timeout | ErrorKind::RequestTimeout => "timeout_error",
        ErrorKind::Internal => "server_error",
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// The `{"error": {...}}` JSON for this error.
pub fn openai_error_json(error: &LoomError) -> Vec<u8> {
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            message: &error.message,
            kind: openai_type(error),
            param: error.param.as_deref(),
            code: error.code.as_deref(),
        },
    };
    // Serializing borrowed strings into a Vec cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// A complete error response in the client's format: status, JSON body, `Retry-After`
/// when known, and the error's own headers.
pub fn error_response(format: ClientFormat, error: &LoomError) -> Response<Bytes> {
    let body = match format {
        ClientFormat::OpenAi | ClientFormat::Responses => openai_error_json(error),
        ClientFormat::Anthropic => crate::anthropic_format::anthropic_error_json(error),
    };
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status_of(error);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(wait) = error.retry_after() {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(extra) = &error.headers {
        for (name, value) in extra.iter() {
            headers.insert(name.clone(), value.clone());
        }
    }
    response
}
