//! One upstream endpoint: sending a JSON request with timeouts, reading bodies,
//! streaming server-sent events, and decoding provider error bodies.

use std::error::Error as StdError;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::Stream;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use sse_core::{MessageEvent, SseDecoder, SseEvent};
use tokio::time::{Instant, Sleep, timeout_at};

use loom_core::{MAX_RETRY_AFTER, Scrubber, UpstreamTime};

use crate::client::{Endpoint, HttpClient, TransportError, UpstreamBody};
use crate::config::{Secret, Timeouts};
use crate::error::{ErrorFields, ProviderError, TimeoutPhase};
use crate::secrets::ProviderSecrets;
use crate::settings::UpstreamSettings;
use crate::upstream_error::{UpstreamErrorReport, report};

/// Largest upstream body Loom reads whole.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// A configured upstream: client, fixed headers and timeouts.
#[derive(Clone)]
pub(crate) struct Upstream {
    pub(crate) name: Arc<str>,
    client: HttpClient,
    headers: Arc<HeaderMap>,
    pub(crate) timeouts: Timeouts,
    secrets: ProviderSecrets,
}

impl Upstream {
    /// The upstream of a configured provider, with its name, timeouts and the secrets its
    /// errors are scrubbed of.
    pub(crate) fn for_provider(
        config: &UpstreamSettings,
        client: HttpClient,
        headers: HeaderMap,
        secrets: ProviderSecrets,
    ) -> Self {
        Upstream {
            name: Arc::from(config.name.as_str()),
            client,
            headers: Arc::new(headers),
            timeouts: config.timeouts,
            secrets,
        }
    }

    /// The scrubber of every secret of this provider known now.
    pub(crate) fn scrubber(&self) -> Scrubber {
        self.secrets.scrubber()
    }

    /// An upstream error body (`body` whole) as a safe, logged report; `status` is the
    /// HTTP status it came with, or what an in-stream error means.
    pub(crate) fn error_report(&self, status: u16, parsed: ErrorBody, body: &[u8]) -> UpstreamErrorReport {
        report(&self.scrubber(), &self.name, status, parsed, body)
    }

    /// The error an upstream error body stands for.
    pub(crate) fn error_from_body(
        &self,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> ProviderError {
        let UpstreamErrorReport { fields, message, body } =
            self.error_report(status, parse_error_body(body), body);
        ProviderError::Status {
            provider: self.provider(),
            status,
            fields: Box::new(fields),
            message,
            retry_after,
            body,
        }
    }

    /// The in-band error of a stream event whose JSON is `{"error": {...}}` (Google's
    /// streams), with the status its `code` names (502 when it names none).
    pub(crate) fn in_band_error(&self, data: &str) -> Option<ProviderError> {
        if !data.contains("\"error\"") {
            return None;
        }
        let value: serde_json::Value = serde_json::from_str(data).ok()?;
        let error = value.as_object()?.get("error")?;
        let status = error
            .get("code")
            .and_then(serde_json::Value::as_u64)
            .and_then(|code| u16::try_from(code).ok())
            .filter(|code| (400..600).contains(code))
            .unwrap_or(502);
        Some(self.error_from_body(status, data.as_bytes(), None))
    }

    fn provider(&self) -> String {
        self.name.to_string()
    }

    /// The budget of a request starting now, its waits added to `waits`.
    pub(crate) fn budget(&self, waits: &UpstreamTime) -> Budget {
        Budget { deadline: Instant::now() + self.timeouts.request, waits: waits.clone() }
    }

    /// The endpoint of a URL built for one request (fixed URLs are parsed once, at start-up).
    pub(crate) fn endpoint(&self, uri: &Uri) -> Result<Endpoint, ProviderError> {
        Endpoint::parse(uri).map_err(|error| self.transport_error(&error))
    }

    /// POSTs `body` and returns the response once its headers arrive; non-2xx becomes an error.
    pub(crate) async fn post_json(
        &self,
        endpoint: &Endpoint,
        body: Vec<u8>,
        budget: &Budget,
    ) -> Result<Response<UpstreamBody>, ProviderError> {
        self.post_json_with_token(endpoint, body, budget, None).await
    }

    /// Like [`Upstream::post_json`], with a per-request bearer token.
    pub(crate) async fn post_json_with_token(
        &self,
        endpoint: &Endpoint,
        body: Vec<u8>,
        budget: &Budget,
        token: Option<&Secret>,
    ) -> Result<Response<UpstreamBody>, ProviderError> {
        self.send(Method::POST, endpoint, Bytes::from(body), budget, token).await
    }

    /// GETs `endpoint` and reads its whole body, at most `limit` bytes, within the
    /// provider's timeouts; non-2xx becomes an error.
    pub(crate) async fn get(&self, endpoint: &Endpoint, limit: usize) -> Result<Bytes, ProviderError> {
        let budget = self.budget(&UpstreamTime::default());
        let response = self.send(Method::GET, endpoint, Bytes::new(), &budget, None).await?;
        let _waiting = budget.waiting();
        self.collect_at_most(response, budget.deadline, limit).await
    }

    /// Sends a request with the fixed headers and returns the response once its headers
    /// arrive; non-2xx becomes an error.
    async fn send(
        &self,
        method: Method,
        endpoint: &Endpoint,
        body: Bytes,
        budget: &Budget,
        token: Option<&Secret>,
    ) -> Result<Response<UpstreamBody>, ProviderError> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method.clone();
        *request.headers_mut() = HeaderMap::clone(&self.headers);
        if method == Method::GET {
            // A GET carries no body to describe.
            request.headers_mut().remove(CONTENT_TYPE);
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                ProviderError::InvalidResponse {
                    provider: self.provider(),
                    reason: "the access token is not a valid header value".to_owned(),
                }
            })?;
            value.set_sensitive(true);
            request.headers_mut().insert(http::header::AUTHORIZATION, value);
        }
        let waiting = budget.waiting();
        let deadline = budget.deadline;
        let first_byte = (waiting.since + self.timeouts.first_byte).min(deadline);
        let response = match timeout_at(first_byte, self.client.request_to(endpoint, request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(self.transport_error(&error)),
            Err(_) => {
                return Err(self.timeout(first_byte_phase(deadline, first_byte), self.timeouts.first_byte));
            }
        };
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.status_error(response, deadline).await)
    }

    /// Reads a whole (bounded) body before the deadline.
    pub(crate) async fn read_body(
        &self,
        response: Response<UpstreamBody>,
        budget: &Budget,
    ) -> Result<Bytes, ProviderError> {
        let _waiting = budget.waiting();
        self.collect(response, budget.deadline).await
    }

    /// The whole (bounded) body, without timing it.
    async fn collect(
        &self,
        response: Response<UpstreamBody>,
        deadline: Instant,
    ) -> Result<Bytes, ProviderError> {
        self.collect_at_most(response, deadline, MAX_UPSTREAM_BODY).await
    }

    /// The whole body, at most `limit` bytes, without timing it.
    async fn collect_at_most(
        &self,
        response: Response<UpstreamBody>,
        deadline: Instant,
        limit: usize,
    ) -> Result<Bytes, ProviderError> {
        let body = Limited::new(response.into_body(), limit);
        match timeout_at(deadline, body.collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(error)) => Err(ProviderError::InvalidResponse {
                provider: self.provider(),
                reason: format!("reading the body failed: {error}"),
            }),
            Err(_) => Err(self.timeout(TimeoutPhase::Request, self.timeouts.request)),
        }
    }

    /// Decodes a JSON body into `T`, naming the provider on failure.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(&self, body: &[u8]) -> Result<T, ProviderError> {
        loom_core::json::from_bytes(body).map_err(|error| self.invalid_json(&error))
    }

    /// The error for JSON that is not what the provider documents; serde quotes the
    /// values it rejects, which may be secrets an upstream echoed.
    pub(crate) fn invalid_json(&self, error: &dyn std::fmt::Display) -> ProviderError {
        let reason = format!("unexpected JSON: {error}");
        ProviderError::InvalidResponse {
            provider: self.provider(),
            reason: self.scrubber().scrub(&reason).into_owned(),
        }
    }

    /// The response body as server-sent events, with the idle gap and deadline enforced;
    /// the wait for the first event is added to the budget's waits.
    pub(crate) fn events(
        &self,
        response: Response<UpstreamBody>,
        budget: &Budget,
    ) -> impl Stream<Item = Result<MessageEvent, ProviderError>> + Send + 'static {
        UpstreamEvents::new(response.into_body(), self.clone(), budget)
    }

    /// A stream that ended before its terminator.
    pub(crate) fn truncated(&self) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.provider(),
            reason: "the stream ended before it was complete".to_owned(),
        }
    }

    fn timeout(&self, phase: TimeoutPhase, after: Duration) -> ProviderError {
        ProviderError::Timeout { provider: self.provider(), phase, after }
    }

    fn transport_error(&self, error: &TransportError) -> ProviderError {
        if matches!(error, TransportError::ConnectTimeout) || source_is_timeout(error) {
            return self.timeout(TimeoutPhase::Connect, self.timeouts.connect);
        }
        let reason = if error.is_connect() {
            format!("connection failed ({})", root_cause(error))
        } else {
            format!("request failed ({})", root_cause(error))
        };
        ProviderError::Connect { provider: self.provider(), reason }
    }

    async fn status_error(&self, response: Response<UpstreamBody>, deadline: Instant) -> ProviderError {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = self.collect(response, deadline).await.unwrap_or_default();
        self.error_from_body(status, &body, retry_after)
    }
}

/// One request's dealings with an upstream: the deadline they must meet, and the total
/// their waits are added to (Loom's own time is the rest).
pub(crate) struct Budget {
    /// When the whole request must be answered.
    pub(crate) deadline: Instant,
    waits: UpstreamTime,
}

impl Budget {
    /// Counts the time from now until the guard is dropped (an answer has come, or a
    /// failure, or the request was dropped) as a wait.
    pub(crate) fn waiting(&self) -> Waiting<'_> {
        Waiting { waits: &self.waits, since: Instant::now() }
    }
}

/// A wait in progress; see [`Budget::waiting`].
pub(crate) struct Waiting<'a> {
    waits: &'a UpstreamTime,
    since: Instant,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.waits.add(self.since.elapsed());
    }
}

/// Largest event Loom reads from an upstream stream; a bigger one ends the stream with
/// an error instead of growing memory without bound.
const MAX_EVENT_BYTES: NonZeroUsize = NonZeroUsize::new(16 * 1024 * 1024).unwrap();

/// Server-sent events of an upstream body, failing after an idle gap or at the deadline.
///
/// Each body frame is handed to the SSE decoder as it arrives (no buffer of our own).
/// One timer serves the whole stream: it is re-armed only when it fires early, not for
/// every event, so a fast stream costs no timer work per event.
struct UpstreamEvents {
    body: UpstreamBody,
    decoder: SseDecoder,
    /// What the decoder has not consumed yet of the last frame.
    pending: Bytes,
    upstream: Option<Upstream>,
    deadline: Instant,
    last_event: Instant,
    timer: Pin<Box<Sleep>>,
    /// Where the wait for the first event goes; `None` once it has come.
    first_wait: Option<UpstreamTime>,
}

impl UpstreamEvents {
    fn new(body: UpstreamBody, upstream: Upstream, budget: &Budget) -> Self {
        let deadline = budget.deadline;
        let now = Instant::now();
        let timer = Box::pin(tokio::time::sleep_until((now + upstream.timeouts.idle).min(deadline)));
        UpstreamEvents {
            body,
            decoder: SseDecoder::with_limit(MAX_EVENT_BYTES),
            pending: Bytes::new(),
            upstream: Some(upstream),
            deadline,
            last_event: now,
            timer,
            first_wait: Some(budget.waits.clone()),
        }
    }

    /// The next event the decoder completes from what has arrived, reading body frames
    /// as they come; `Pending` when the body has no more for now.
    fn poll_event(
        &mut self,
        upstream: &Upstream,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<MessageEvent, ProviderError>>> {
        loop {
            match self.decoder.next(&mut self.pending) {
                Some(Ok(SseEvent::Message(event))) => return Poll::Ready(Some(Ok(event))),
                // Reconnection advice means nothing to a request that is not retried.
                Some(Ok(SseEvent::Retry(_))) => continue,
                Some(Err(_)) => {
                    return Poll::Ready(Some(Err(ProviderError::InvalidResponse {
                        provider: upstream.provider(),
                        reason: format!("a stream event exceeds {MAX_EVENT_BYTES} bytes"),
                    })));
                }
                None => {}
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Some(Err(ProviderError::InvalidResponse {
                        provider: upstream.provider(),
                        reason: format!("stream broke: {error}"),
                    })));
                }
                // An event without its closing blank line is dropped, as WHATWG says.
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The error for a fired timer, or `None` when it fired early and was re-armed.
    fn expired(&mut self, upstream: &Upstream, cx: &mut Context<'_>) -> Option<ProviderError> {
        let idle_deadline = (self.last_event + upstream.timeouts.idle).min(self.deadline);
        if Instant::now() < idle_deadline {
            self.timer.as_mut().reset(idle_deadline);
            return self
                .timer
                .as_mut()
                .poll(cx)
                .is_ready()
                .then(|| self.expired_error(upstream, idle_deadline));
        }
        Some(self.expired_error(upstream, idle_deadline))
    }

    fn expired_error(&self, upstream: &Upstream, idle_deadline: Instant) -> ProviderError {
        if idle_deadline >= self.deadline {
            upstream.timeout(TimeoutPhase::Request, upstream.timeouts.request)
        } else {
            upstream.timeout(TimeoutPhase::Idle, upstream.timeouts.idle)
        }
    }
}

impl Stream for UpstreamEvents {
    type Item = Result<MessageEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(upstream) = this.upstream.take() else { return Poll::Ready(None) };
        let polled = this.poll_event(&upstream, cx);
        if polled.is_ready()
            && let Some(waits) = this.first_wait.take()
        {
            waits.add(this.last_event.elapsed());
        }
        let item = match polled {
            Poll::Ready(Some(Ok(event))) => {
                this.last_event = Instant::now();
                Ok(event)
            }
            Poll::Ready(Some(Err(error))) => Err(error),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Pending => {
                    this.upstream = Some(upstream);
                    return Poll::Pending;
                }
                Poll::Ready(()) => match this.expired(&upstream, cx) {
                    Some(error) => Err(error),
                    None => {
                        this.upstream = Some(upstream);
                        return Poll::Pending;
                    }
                },
            },
        };
        if item.is_ok() {
            this.upstream = Some(upstream);
        }
        Poll::Ready(Some(item))
    }
}

fn first_byte_phase(deadline: Instant, first_byte: Instant) -> TimeoutPhase {
    if first_byte >= deadline { TimeoutPhase::Request } else { TimeoutPhase::FirstByte }
}

fn source_is_timeout(error: &(dyn StdError + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = current.source();
    }
    false
}

fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Reads `retry-after-ms`, then `retry-after` as seconds or an HTTP date; a wait longer
/// than [`MAX_RETRY_AFTER`] is cut to it, and one that is negative or not a number is
/// ignored.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    if let Some(ms) =
        text(HeaderName::from_static("retry-after-ms")).and_then(|value| value.parse::<f64>().ok())
        && let Some(wait) = clamped_seconds(ms / 1000.0)
    {
        return Some(wait);
    }
    let value = text(RETRY_AFTER)?;
    if let Ok(seconds) = value.parse::<f64>() {
        return clamped_seconds(seconds);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

/// `seconds` as a wait of at most [`MAX_RETRY_AFTER`]; `None` when negative or not a number.
fn clamped_seconds(seconds: f64) -> Option<Duration> {
    // Infinity and huge values are cut before converting (`Duration::from_secs_f64`
    // panics on them).
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// Extracts (type, code, message) from `{"error": {...}}` bodies of OpenAI, Anthropic and Google.
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    // Whole: it is scrubbed before it is bounded, so no secret is cut in half.
    let fallback = || String::from_utf8_lossy(body).trim().to_owned();
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ErrorBody { fields: ErrorFields::default(), message: fallback() };
    };
    let error = value.get("error").unwrap_or(&value);
    let text = |key: &str| match error.get(key) {
        Some(serde_json::Value::String(text)) => Some(text.clone()),
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let fields = ErrorFields {
        error_type: text("type").or_else(|| text("status")),
        code: text("code"),
        param: text("param"),
    };
    ErrorBody { fields, message: text("message").unwrap_or_else(fallback) }
}

/// What an upstream error body says.
#[derive(Debug, PartialEq)]
pub(crate) struct ErrorBody {
    pub(crate) fields: ErrorFields,
    pub(crate) message: String,
}

/// Builds the fixed headers: JSON content type, auth, and configured extras.
pub(crate) fn base_headers(
    provider: &str,
    auth: Option<(HeaderName, String)>,
    extra: &std::collections::BTreeMap<String, Secret>,
) -> Result<HeaderMap, ProviderError> {
    let invalid = |what: &str| ProviderError::Config {
        provider: provider.to_owned(),
        reason: format!("invalid header {what}"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in extra {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(name))?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| invalid(name))?;
        // Configured headers often carry credentials: kept out of HPACK tables and `Debug`.
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    if let Some((name, value)) = auth {
        let mut value = HeaderValue::from_str(&value).map_err(|_| invalid(name.as_str()))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        let mut past = HeaderMap::new();
        past.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_is_clamped_and_never_panics() {
        let wait = |name: &'static str, value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static(value));
            retry_after(&headers)
        };
        for huge in ["99999999999999", "1e300", "inf", "3601", "18446744073709551616"] {
            assert_eq!(wait("retry-after", huge), Some(MAX_RETRY_AFTER), "{huge}");
            assert_eq!(
                wait("retry-after-ms", huge).map(|wait| wait <= MAX_RETRY_AFTER),
                Some(true),
                "{huge}"
            );
        }
        assert_eq!(wait("retry-after-ms", "1e300"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("retry-after", "3600"), Some(Duration::from_secs(3600)));
        assert_eq!(wait("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_RETRY_AFTER));
        for ignored in ["-1", "-inf", "NaN", "garbage", "1e", ""] {
            assert_eq!(wait("retry-after", ignored), None, "{ignored}");
        }
        // A bad `retry-after-ms` falls back to `retry-after`.
        let mut headers = HeaderMap::new();
        headers.insert("retry-after-ms", HeaderValue::from_static("NaN"));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(5)));
    }

    #[test]
    fn error_bodies_of_each_provider() {
        let body = |error_type: &str, code: &str, param: Option<&str>, message: &str| ErrorBody {
            fields: ErrorFields {
                error_type: Some(error_type.into()),
                code: Some(code.into()),
                param: param.map(str::to_owned),
            },
            message: message.into(),
        };
        let openai = br#"{"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(parse_error_body(openai), body("requests", "rate_limit_exceeded", None, "Rate limit"));
        let bad_field = br#"{"error":{"message":"Invalid type","type":"invalid_request_error","param":"messages[0].content","code":"invalid_type"}}"#;
        assert_eq!(
            parse_error_body(bad_field),
            body("invalid_request_error", "invalid_type", Some("messages[0].content"), "Invalid type")
        );
        let google = br#"{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(parse_error_body(google), body("RESOURCE_EXHAUSTED", "429", None, "Quota"));
        assert_eq!(parse_error_body(b"<html>bad gateway</html>").message, "<html>bad gateway</html>");
    }
}
