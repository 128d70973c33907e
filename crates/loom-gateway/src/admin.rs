//! The admin server: health and Prometheus metrics on their own port.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::metrics::Metrics;

/// Content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Handles one admin request.
pub async fn handle_admin(
    metrics: Arc<Metrics>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/health") => (StatusCode::OK, "application/json", Bytes::from_static(br#"{"status":"ok"}"#)),
        (&Method::GET, "/metrics") => (StatusCode::OK, PROMETHEUS_TEXT, Bytes::from(metrics.encode())),
        (_, "/health" | "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "application/json",
            Bytes::from_static(br#"{"error":{"message":"use GET","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}"#),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "application/json",
            Bytes::from_static(br#"{"error":{"message":"unknown admin path; try /health or /metrics","type":"invalid_request_error","param":null,"code":"unknown_url"}}"#),
        ),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
