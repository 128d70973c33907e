//! The load generator: closed-loop saturation and open-loop fixed-rate runs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The path every target serves chat completions on.
const CHAT_PATH: &str = "/v1/chat/completions";
/// The header in which Loom says how its response cache treated a request.
const CACHE_HEADER: &str = "x-loom-cache";
/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest latency the histograms track, in microseconds.
const MAX_LATENCY_US: u64 = 60_000_000;

/// What each request asks for (also the value of `--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// A non-streamed chat completion.
    Whole,
    /// A streamed chat completion (7 SSE chunks and `[DONE]` from the mock).
    Stream,
    /// A streamed chat completion whose client asks for usage
    /// (`stream_options.include_usage`), as Loom's token accounting asks every upstream:
    /// the mock then sends its usage chunk to every target. Not in the default set.
    #[serde(rename = "stream-usage")]
    StreamUsage,
}

impl Workload {
    /// The workload's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Whole => "whole",
            Workload::Stream => "stream",
            Workload::StreamUsage => "stream-usage",
        }
    }

    /// The JSON request body.
    pub fn body(self) -> Bytes {
        let stream = match self {
            Workload::Whole => "",
            Workload::Stream => r#","stream":true"#,
            Workload::StreamUsage => r#","stream":true,"stream_options":{"include_usage":true}"#,
        };
        Bytes::from(format!(
            r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"Say hello."}}]{stream}}}"#
        ))
    }

    /// Whether `body` is a complete answer of this workload.
    pub fn check(self, body: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(body);
        let done = || text.trim_end().ends_with("data: [DONE]");
        let ok = match self {
            Workload::Whole => text.contains(r#""chat.completion""#),
            Workload::Stream => text.contains("chat.completion.chunk") && done(),
            Workload::StreamUsage => text.contains(r#""usage":{"#) && done(),
        };
        if ok { Ok(()) } else { Err(format!("unexpected {} response body: {text:?}", self.name())) }
    }
}

/// Latencies and counts of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Latencies of successful requests in the measured window, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Successful requests completed in the measured window.
    pub ok: u64,
    /// Successful requests over the whole run, warm-up included.
    pub completed: u64,
    /// Failed requests (transport error, timeout, or non-200 status) in the window.
    pub errors: u64,
    /// The first error seen, for diagnosis.
    pub first_error: Option<String>,
    /// The length of the measured window.
    pub window: Duration,
}

impl Outcome {
    fn new(window: Duration) -> Outcome {
        Outcome { latency_us: new_histogram(), ok: 0, completed: 0, errors: 0, first_error: None, window }
    }

    /// Successful requests per second over the measured window.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// The latency at `quantile` (0..=1) in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The largest latency in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.latency_us.max() as f64 / 1000.0
    }

    fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(micros.max(1));
        self.ok += 1;
    }

    fn error(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }

    fn merge(&mut self, other: Outcome) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        self.ok += other.ok;
        self.completed += other.completed;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_LATENCY_US, 3) {
        Ok(histogram) => histogram,
        // The bounds are constants that hdrhistogram accepts.
        Err(err) => unreachable!("invalid histogram bounds: {err}"),
    }
}

/// One chat request to `addr` (origin-form URI with an explicit Host header).
fn request(addr: SocketAddr, body: &Bytes) -> Request<Full<Bytes>> {
    let builder = Request::post(CHAT_PATH)
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, "Bearer sk-bench");
    match builder.body(Full::new(body.clone())) {
        Ok(request) => request,
        // Every part is a constant or a socket address, all valid in a request.
        Err(err) => unreachable!("invalid request: {err}"),
    }
}

/// Read a response to the end; an error unless it is a 200.
async fn drain(response: http::Response<Incoming>) -> Result<(), String> {
    let status = response.status();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        frame.map_err(|err| format!("reading the body: {err}"))?;
    }
    if status == StatusCode::OK { Ok(()) } else { Err(format!("status {status}")) }
}

/// What a probe learned beyond a good answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// The answer's `x-loom-cache` header (`hit`, `miss`...), when it has one.
    pub cache: Option<String>,
}

/// Send one request to `addr` and check the answer in full (before measuring).
pub async fn probe(addr: SocketAddr, workload: Workload) -> Result<Probed, String> {
    let client = legacy_client();
    let uri = format!("http://{addr}{CHAT_PATH}");
    let mut request = request(addr, &workload.body());
    *request.uri_mut() = uri.parse().map_err(|err| format!("bad URI {uri}: {err}"))?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
        .await
        .map_err(|_| "probe timed out".to_owned())?
        .map_err(|err| format!("probe failed: {err}"))?;
    let status = response.status();
    let cache = response
        .headers()
        .get(CACHE_HEADER)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body = response.into_body().collect().await.map_err(|err| format!("probe body: {err}"))?.to_bytes();
    if status != StatusCode::OK {
        return Err(format!("probe got status {status}: {}", String::from_utf8_lossy(&body)));
    }
    workload.check(&body)?;
    Ok(Probed { cache })
}

/// An HTTP/1.1 connection to `addr` (driven by a task of its own).
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|err| format!("connect: {err}"))?;
    tcp.set_nodelay(true).map_err(|err| format!("nodelay: {err}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|err| format!("handshake: {err}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Closed loop: `concurrency` keep-alive connections, each sending its next request
/// as soon as the previous answer has been read, for `warmup` then `duration`.
pub async fn saturate(
    addr: SocketAddr,
    workload: Workload,
    concurrency: u32,
    warmup: Duration,
    duration: Duration,
) -> Outcome {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let body = workload.body();
    let workers: Vec<JoinHandle<Outcome>> =
        (0..concurrency).map(|_| tokio::spawn(saturation_worker(addr, body.clone(), start, end))).collect();
    let mut outcome = Outcome::new(duration);
    for worker in workers {
        match worker.await {
            Ok(worker) => outcome.merge(worker),
            Err(err) => outcome.error(format!("worker task failed: {err}")),
        }
    }
    outcome
}

async fn saturation_worker(addr: SocketAddr, body: Bytes, start: Instant, end: Instant) -> Outcome {
    let mut outcome = Outcome::new(end - start);
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < end {
        let sender = match &mut connection {
            Some(sender) => sender,
            None => match connect(addr).await {
                Ok(sender) => connection.insert(sender),
                Err(err) => {
                    if Instant::now() >= start {
                        outcome.error(err);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let result = match tokio::time::timeout(REQUEST_TIMEOUT, exchange(sender, addr, &body)).await {
            Ok(result) => result,
            Err(_) => Err(Exchange::Transport("timed out".to_owned())),
        };
        let done = Instant::now();
        let in_window = done >= start && done <= end;
        if result.is_ok() {
            outcome.completed += 1;
        }
        match result {
            Ok(()) if in_window => outcome.record(done - sent),
            Ok(()) => {}
            Err(Exchange::Status(err)) => {
                if in_window {
                    outcome.error(err);
                }
            }
            Err(Exchange::Transport(err)) => {
                if in_window {
                    outcome.error(err);
                }
                connection = None;
            }
        }
    }
    outcome
}

/// Why an exchange failed: the connection is reusable after a bad status only.
enum Exchange {
    Status(String),
    Transport(String),
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    body: &Bytes,
) -> Result<(), Exchange> {
    sender.ready().await.map_err(|err| Exchange::Transport(format!("connection closed: {err}")))?;
    let response = sender
        .send_request(request(addr, body))
        .await
        .map_err(|err| Exchange::Transport(format!("request: {err}")))?;
    let status = response.status();
    drain(response).await.map_err(|err| {
        if status == StatusCode::OK { Exchange::Transport(err) } else { Exchange::Status(err) }
    })
}

fn legacy_client() -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector)
}

/// Open loop: requests scheduled at `rate` per second for `warmup` then `duration`,
/// whatever the answers; each latency runs from the request's scheduled time, so a
/// stalled target is charged for every request it delays (no coordinated omission).
pub async fn fixed_rate(
    addr: SocketAddr,
    workload: Workload,
    rate: u32,
    warmup: Duration,
    duration: Duration,
) -> Outcome {
    let client = legacy_client();
    let uri: http::Uri = match format!("http://{addr}{CHAT_PATH}").parse() {
        Ok(uri) => uri,
        Err(err) => {
            let mut outcome = Outcome::new(duration);
            outcome.error(format!("bad URI: {err}"));
            return outcome;
        }
    };
    let body = workload.body();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let count = ((warmup + duration).as_secs_f64() * f64::from(rate)).round() as u64;
    let first = Instant::now() + Duration::from_millis(20);
    let measure_from = first + warmup;
    let runtime = tokio::runtime::Handle::current();
    // A plain thread paces the sends: tokio's timers only have millisecond resolution,
    // std::thread::sleep is accurate to tens of microseconds.
    let pacer = tokio::task::spawn_blocking(move || {
        let mut tasks = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for i in 0..count {
            let scheduled = first + interval.mul_f64(i as f64);
            let wait = scheduled.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            let mut request = request(addr, &body);
            *request.uri_mut() = uri.clone();
            let client = client.clone();
            tasks.push(runtime.spawn(async move {
                let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
                    let response = client.request(request).await.map_err(|err| format!("request: {err}"))?;
                    drain(response).await
                })
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()));
                (scheduled, scheduled.elapsed(), result)
            }));
        }
        tasks
    });
    let mut outcome = Outcome::new(duration);
    let tasks = match pacer.await {
        Ok(tasks) => tasks,
        Err(err) => {
            outcome.error(format!("pacer failed: {err}"));
            return outcome;
        }
    };
    for task in tasks {
        match task.await {
            Ok((scheduled, _, result)) if scheduled < measure_from => {
                outcome.completed += u64::from(result.is_ok());
            }
            Ok((_, latency, Ok(()))) => {
                outcome.completed += 1;
                outcome.record(latency);
            }
            Ok((_, _, Err(err))) => outcome.error(err),
            Err(err) => outcome.error(format!("request task failed: {err}")),
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_chat_requests() {
        let whole: serde_json::Value = serde_json::from_slice(&Workload::Whole.body()).unwrap();
        assert_eq!(whole["model"], "gpt-4o-mini");
        assert!(whole.get("stream").is_none());
        let stream: serde_json::Value = serde_json::from_slice(&Workload::Stream.body()).unwrap();
        assert_eq!(stream["stream"], true);
        assert!(stream.get("stream_options").is_none());
        let usage: serde_json::Value = serde_json::from_slice(&Workload::StreamUsage.body()).unwrap();
        assert_eq!(usage["stream"], true);
        assert_eq!(usage["stream_options"]["include_usage"], true);
    }

    #[test]
    fn checks_stream_bodies_end_with_done() {
        let good = b"data: {\"object\":\"chat.completion.chunk\"}\n\ndata: [DONE]\n\n";
        assert!(Workload::Stream.check(good).is_ok());
        let cut = b"data: {\"object\":\"chat.completion.chunk\"}\n\n";
        assert!(Workload::Stream.check(cut).is_err());
        let with_usage = b"data: {\"choices\":[],\"usage\":{\"total_tokens\":15}}\n\ndata: [DONE]\n\n";
        assert!(Workload::StreamUsage.check(with_usage).is_ok());
        assert!(Workload::StreamUsage.check(good).is_err());
        assert!(Workload::Whole.check(br#"{"object":"chat.completion"}"#).is_ok());
    }

    #[test]
    fn outcome_reports_throughput_and_quantiles() {
        let mut outcome = Outcome::new(Duration::from_secs(2));
        for micros in [100, 200, 300, 400] {
            outcome.record(Duration::from_micros(micros));
        }
        assert_eq!(outcome.throughput(), 2.0);
        assert!((outcome.max_ms() - 0.4).abs() < 0.001);
        assert!((outcome.latency_ms(0.5) - 0.2).abs() < 0.001);
    }
}
