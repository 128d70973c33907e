//! The admin server: health, Prometheus metrics and usage reports, on their own port.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use loom_routing::{ProviderSnapshot, ProviderState};
use loom_tokens::accounting::{Dimension, UsageGroup, UsageRecorder};
use serde::Serialize;
use serde_json::json;

use crate::metrics::Metrics;

/// Content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Default report window: the last day.
const DEFAULT_WINDOW: Duration = Duration::from_secs(86_400);

/// What the admin endpoints read.
pub struct AdminState {
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Usage records.
    pub usage: Arc<UsageRecorder>,
    /// Provider health and statistics, in config order.
    pub providers: Vec<Arc<ProviderState>>,
}

/// A usage report (`GET /ai/usage`).
#[derive(Serialize)]
struct UsageReport {
    group_by: Dimension,
    from: String,
    to: String,
    groups: Vec<UsageGroup>,
}

/// Handles one admin request.
pub async fn handle_admin(
    state: Arc<AdminState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/health") => {
            (StatusCode::OK, "application/json", Bytes::from_static(br#"{"status":"ok"}"#))
        }
        (&Method::GET, "/metrics") => {
            (StatusCode::OK, PROMETHEUS_TEXT, Bytes::from(state.metrics.encode(&state.providers)))
        }
        (&Method::GET, "/ai/providers") => {
            let providers: Vec<ProviderSnapshot> =
                state.providers.iter().map(|provider| provider.snapshot()).collect();
            (StatusCode::OK, "application/json", Bytes::from(json!({"providers": providers}).to_string()))
        }
        (&Method::GET, "/ai/usage") => match usage(&state, request.uri().query().unwrap_or("")).await {
            Ok(body) => (StatusCode::OK, "application/json", body),
            Err((status, message, param)) => {
                (status, "application/json", error_body(&message, param, status))
            }
        },
        (_, "/health" | "/metrics" | "/ai/usage" | "/ai/providers") => {
            let status = StatusCode::METHOD_NOT_ALLOWED;
            (status, "application/json", error_body("use GET", None, status))
        }
        _ => {
            let status = StatusCode::NOT_FOUND;
            (
                status,
                "application/json",
                error_body(
                    "unknown admin path; try /health, /metrics, /ai/providers or /ai/usage",
                    None,
                    status,
                ),
            )
        }
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

fn error_body(message: &str, param: Option<&str>, status: StatusCode) -> Bytes {
    let code = if status == StatusCode::NOT_FOUND {
        "unknown_url"
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        "method_not_allowed"
    } else {
        "invalid_parameter"
    };
    let body =
        json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}});
    Bytes::from(body.to_string())
}

type AdminError = (StatusCode, String, Option<&'static str>);

/// `GET /ai/usage?group_by=user|team|key|model|provider&from=&to=`.
async fn usage(state: &AdminState, query: &str) -> Result<Bytes, AdminError> {
    let mut group_by = Dimension::User;
    let now = SystemTime::now();
    let mut to = now;
    let mut from = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "group_by" => {
                group_by = Dimension::parse(&value).ok_or_else(|| {
                    bad(
                        format!("group_by must be user, team, key, model or provider, not `{value}`"),
                        "group_by",
                    )
                })?;
            }
            "from" => from = Some(parse_time(&value).map_err(|message| bad(message, "from"))?),
            "to" => to = parse_time(&value).map_err(|message| bad(message, "to"))?,
            other => return Err(bad(format!("unknown parameter `{other}`"), "query")),
        }
    }
    let from = from.unwrap_or_else(|| to.checked_sub(DEFAULT_WINDOW).unwrap_or(UNIX_EPOCH));
    if from > to {
        return Err(bad("`from` must not be after `to`".to_owned(), "from"));
    }
    let millis = |time: SystemTime| {
        time.duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis() as i64).unwrap_or(0)
    };
    let (from_ms, to_ms) = (millis(from), millis(to));
    let usage = state.usage.clone();
    let groups = tokio::task::spawn_blocking(move || usage.report(group_by, from_ms, to_ms))
        .await
        .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, format!("usage report failed: {error}"), None))?
        .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string(), None))?;
    let report = UsageReport {
        group_by,
        from: humantime::format_rfc3339_millis(from).to_string(),
        to: humantime::format_rfc3339_millis(to).to_string(),
        groups,
    };
    serde_json::to_vec(&report)
        .map(Bytes::from)
        .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string(), None))
}

fn bad(message: String, param: &'static str) -> AdminError {
    (StatusCode::BAD_REQUEST, message, Some(param))
}

/// An RFC 3339 timestamp, or Unix seconds.
fn parse_time(value: &str) -> Result<SystemTime, String> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(seconds));
    }
    humantime::parse_rfc3339_weak(value)
        .map_err(|_| format!("`{value}` is neither an RFC 3339 time (2026-11-25T10:00:00Z) nor Unix seconds"))
}
