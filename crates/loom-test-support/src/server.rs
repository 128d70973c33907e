//! The mock upstream server: accept loop, request recording and reply dispatch.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Deserialize;
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::fixtures;
use crate::reply::{Gate, Reply, SseStep};

/// The body type of every mock response; its only error is a scripted reset.
type MockBody = UnsyncBoxBody<Bytes, ScriptedReset>;

/// The body error that makes hyper drop the connection mid-body ([`Reply::ResetMidBody`]).
#[derive(Debug)]
struct ScriptedReset;

impl fmt::Display for ScriptedReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("scripted Reply::ResetMidBody")
    }
}

impl std::error::Error for ScriptedReset {}

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT_EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A handle to a running mock OpenAI upstream.
///
/// Clones share one server; it stops when the last handle is dropped or on
/// [`MockUpstream::shutdown`].
#[derive(Clone)]
pub struct MockUpstream {
    shared: Arc<Shared>,
    stop: Arc<watch::Sender<bool>>,
}

/// One request the mock received, captured after its body was read in full.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The URI path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// The request headers as received.
    pub headers: HeaderMap,
    /// The request body as received.
    pub body: Bytes,
    /// The HTTP version the request came in on.
    pub version: Version,
}

impl RecordedRequest {
    /// The body parsed as JSON. Panics (with the body in the message) if it is not JSON.
    pub fn json(&self) -> Value {
        match self.try_json() {
            Ok(value) => value,
            Err(err) => panic!(
                "recorded {} {} body is not JSON ({err}): {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            ),
        }
    }

    /// The body parsed as JSON.
    pub fn try_json(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.body)
    }

    /// The first value of header `name` (case-insensitive), lossily decoded as UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    }

    /// The body as UTF-8 text, lossily decoded.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl MockUpstream {
    /// Start a recording mock on `127.0.0.1` with an ephemeral port. Panics if binding fails.
    pub async fn start() -> MockUpstream {
        Self::start_local(true).await
    }

    /// Start a mock on `127.0.0.1` that only counts requests (for benchmarks).
    /// Panics if binding fails.
    pub async fn start_unrecorded() -> MockUpstream {
        Self::start_local(false).await
    }

    async fn start_local(recording: bool) -> MockUpstream {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        match Self::start_on(addr, recording).await {
            Ok(mock) => mock,
            Err(err) => panic!("mock upstream failed to bind {addr}: {err}"),
        }
    }

    /// Start a mock on `addr`; with `recording` off only [`Self::request_count`] is kept.
    ///
    /// The entry point for bench harnesses: keep the handle alive as long as the
    /// server should run (must be called inside a Tokio runtime).
    pub async fn start_on(addr: SocketAddr, recording: bool) -> std::io::Result<MockUpstream> {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(4096)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(addr, recording));
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        Ok(MockUpstream { shared, stop: Arc::new(stop) })
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.shared.addr)
    }

    /// `base_url()` joined with `path`, e.g. `url("/chat/completions")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Every recorded request, in the order their bodies finished arriving
    /// (always empty when recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorded().clone()
    }

    /// The most recent recorded request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.recorded().last().cloned()
    }

    /// Remove and return every recorded request (the count is not reset).
    pub fn take_requests(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut *self.shared.recorded())
    }

    /// How many requests have been received, recorded or not.
    pub fn request_count(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// How many TCP connections have been accepted (to check connection reuse).
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many accepted TCP connections are still open.
    pub fn open_connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst) - self.shared.closed_connections.load(Ordering::SeqCst)
    }

    /// Queue `reply`; queued replies are consumed FIFO, one per request, before the default.
    pub fn push_reply(&self, reply: Reply) {
        let mut queue = lock(&self.shared.queue);
        queue.push_back(reply);
        self.shared.queued.store(queue.len(), Ordering::SeqCst);
    }

    /// How many queued replies have not been consumed yet.
    pub fn pending_replies(&self) -> usize {
        self.shared.queued.load(Ordering::SeqCst)
    }

    /// Answer every request that finds the queue empty with `reply` instead of the
    /// built-in OpenAI behaviour.
    pub fn set_default_reply(&self, reply: Reply) {
        *lock(&self.shared.default_reply) = Some(reply);
        self.shared.has_default.store(true, Ordering::SeqCst);
    }

    /// Restore the built-in OpenAI behaviour for requests that find the queue empty.
    pub fn clear_default_reply(&self) {
        let mut default = lock(&self.shared.default_reply);
        self.shared.has_default.store(false, Ordering::SeqCst);
        *default = None;
    }

    /// Wait until at least `n` requests have arrived; `false` on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let shared = &self.shared;
        shared.count_waiters.fetch_add(1, Ordering::SeqCst);
        let reached =
            wait_until(&shared.count_notify, timeout, || shared.count.load(Ordering::SeqCst) >= n).await;
        shared.count_waiters.fetch_sub(1, Ordering::SeqCst);
        reached
    }

    /// Make the built-in model lists (`GET .../models` in the OpenAI, Anthropic and
    /// Gemini formats) list `ids`, in this order (the default is [`fixtures::MODELS`]).
    pub fn set_models(&self, ids: &[&str]) {
        lock(&self.shared.model_lists).ids = ids.iter().map(|id| (*id).to_owned()).collect();
    }

    /// Split the built-in Anthropic and Gemini model lists into pages of `size` models.
    pub fn set_models_page_size(&self, size: usize) {
        lock(&self.shared.model_lists).page_size = Some(size.max(1));
    }

    /// Queue `reply` for the next model-list request (consumed FIFO, before the built-in
    /// list); list requests never take the replies of [`Self::push_reply`].
    pub fn push_models_reply(&self, reply: Reply) {
        lock(&self.shared.model_lists).replies.push_back(reply);
    }

    /// Every model-list request (`GET` of a path ending in `/models`), in order. They are
    /// kept apart from [`Self::requests`] and [`Self::request_count`], so a gateway's
    /// background list fetches leave the other requests' records as they were.
    pub fn model_list_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.model_lists).recorded.clone()
    }

    /// Wait until at least `n` model-list requests have been answered; `false` on timeout.
    pub async fn wait_for_model_list_requests(&self, n: usize, timeout: Duration) -> bool {
        let shared = &self.shared;
        wait_until(&shared.model_lists_notify, timeout, || lock(&shared.model_lists).answered >= n).await
    }

    /// How many SSE bodies were dropped (client went away, or shutdown) before their last step.
    pub fn dropped_streams(&self) -> usize {
        self.shared.dropped.load(Ordering::SeqCst)
    }

    /// Wait until at least one SSE body has been dropped early; `false` on timeout.
    pub async fn wait_for_dropped_stream(&self, timeout: Duration) -> bool {
        self.wait_for_dropped_streams(1, timeout).await
    }

    /// Wait until at least `n` SSE bodies have been dropped early; `false` on timeout.
    pub async fn wait_for_dropped_streams(&self, n: usize, timeout: Duration) -> bool {
        let shared = &self.shared;
        wait_until(&shared.dropped_notify, timeout, || shared.dropped.load(Ordering::SeqCst) >= n).await
    }

    /// Stop accepting connections and close open ones, for every handle.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

impl fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.shared.addr)
            .field("recording", &self.shared.recording)
            .field("request_count", &self.request_count())
            .field("pending_replies", &self.pending_replies())
            .finish()
    }
}

/// Poll `done` each time `notify` fires, until it holds or `timeout` passes.
async fn wait_until(notify: &Notify, timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        // Register before checking, so a notification in between is not lost.
        notified.as_mut().enable();
        if done() {
            return true;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return done();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State shared by the handles, the accept loop and every request.
struct Shared {
    addr: SocketAddr,
    recording: bool,
    recorded: Mutex<Vec<RecordedRequest>>,
    count: AtomicUsize,
    count_waiters: AtomicUsize,
    count_notify: Notify,
    connections: AtomicUsize,
    closed_connections: AtomicUsize,
    queue: Mutex<VecDeque<Reply>>,
    queued: AtomicUsize,
    default_reply: Mutex<Option<Reply>>,
    has_default: AtomicBool,
    dropped: AtomicUsize,
    dropped_notify: Notify,
    templates: Templates,
    model_lists: Mutex<ModelLists>,
    model_lists_notify: Notify,
}

/// The built-in model lists, their scripted replies and their requests.
struct ModelLists {
    ids: Vec<String>,
    page_size: Option<usize>,
    replies: VecDeque<Reply>,
    recorded: Vec<RecordedRequest>,
    /// Requests whose answer has been built (recorded ones may still be in flight).
    answered: usize,
}

impl Shared {
    fn new(addr: SocketAddr, recording: bool) -> Shared {
        Shared {
            addr,
            recording,
            recorded: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            count_waiters: AtomicUsize::new(0),
            count_notify: Notify::new(),
            connections: AtomicUsize::new(0),
            closed_connections: AtomicUsize::new(0),
            queue: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            default_reply: Mutex::new(None),
            has_default: AtomicBool::new(false),
            dropped: AtomicUsize::new(0),
            dropped_notify: Notify::new(),
            templates: Templates::new(),
            model_lists: Mutex::new(ModelLists {
                ids: fixtures::MODELS.iter().map(|id| (*id).to_owned()).collect(),
                page_size: None,
                replies: VecDeque::new(),
                recorded: Vec::new(),
                answered: 0,
            }),
            model_lists_notify: Notify::new(),
        }
    }

    fn recorded(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        lock(&self.recorded)
    }

    /// Record (if enabled) and count one request; returns its 1-based sequence number.
    fn record(&self, parts: &http::request::Parts, body: &Bytes) -> usize {
        let seq = if self.recording {
            let request = RecordedRequest {
                method: parts.method.as_str().to_owned(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                headers: parts.headers.clone(),
                body: body.clone(),
                version: parts.version,
            };
            let mut recorded = self.recorded();
            recorded.push(request);
            // Counted under the lock so `requests()` holds everything `request_count()` says.
            self.count.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            self.count.fetch_add(1, Ordering::SeqCst) + 1
        };
        if self.count_waiters.load(Ordering::SeqCst) > 0 {
            self.count_notify.notify_waiters();
        }
        seq
    }

    /// The next queued reply, else the scripted default; `None` means built-in.
    fn next_reply(&self) -> Option<Reply> {
        if self.queued.load(Ordering::SeqCst) > 0 {
            let mut queue = lock(&self.queue);
            let reply = queue.pop_front();
            self.queued.store(queue.len(), Ordering::SeqCst);
            if reply.is_some() {
                return reply;
            }
        }
        if self.has_default.load(Ordering::SeqCst) {
            return lock(&self.default_reply).clone();
        }
        None
    }

    fn stream_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
        self.dropped_notify.notify_waiters();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    builder.http2().max_concurrent_streams(1024);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        match accepted {
            Ok((tcp, _peer)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve_connection(tcp, builder.clone(), shared.clone(), stop.clone()));
            }
            Err(err) => {
                // E.g. out of file descriptors under load: back off, keep serving.
                tracing::warn!(%err, "mock upstream accept failed");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    builder: auto::Builder<TokioExecutor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let handler_state = shared.clone();
    let service = service_fn(move |request| handle(handler_state.clone(), request));
    let connection = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::select! {
        result = connection => {
            if let Err(err) = result {
                tracing::debug!(%err, "mock upstream connection ended with an error");
            }
        }
        () = stopped(&mut stop) => {}
    }
    shared.closed_connections.fetch_add(1, Ordering::SeqCst);
}

/// Resolves once shutdown is requested or the last handle is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// The service error that makes hyper drop the connection without answering.
#[derive(Debug)]
enum MockError {
    Close,
    Body(hyper::Error),
}

impl fmt::Display for MockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MockError::Close => f.write_str("scripted Reply::Close"),
            MockError::Body(err) => write!(f, "reading the request body failed: {err}"),
        }
    }
}

impl std::error::Error for MockError {}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<MockBody>, MockError> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(MockError::Body)?.to_bytes();
    if parts.method == Method::GET && parts.uri.path().ends_with("/models") {
        return model_list(&shared, &parts, body).await;
    }
    let seq = shared.record(&parts, &body);
    let reply = match shared.next_reply() {
        Some(reply) => reply,
        None => return Ok(builtin(&shared, &parts, &body, seq)),
    };
    scripted(&shared, reply, seq).await
}

/// Answers a model-list request out of band: a [`MockUpstream::push_models_reply`]
/// reply, else the built-in list in the format the request's headers and path ask for.
async fn model_list(
    shared: &Arc<Shared>,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<Response<MockBody>, MockError> {
    let (seq, reply, builtin) = {
        let mut lists = lock(&shared.model_lists);
        lists.recorded.push(RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            body,
            version: parts.version,
        });
        let seq = lists.recorded.len();
        let reply = lists.replies.pop_front();
        let builtin = reply.is_none().then(|| builtin_model_list(&lists, parts));
        (seq, reply, builtin)
    };
    let response = match (reply, builtin) {
        (Some(reply), _) => scripted(shared, reply, seq).await,
        (None, Some(body)) => Ok(json_response(200, &body)),
        (None, None) => Ok(json_response(500, &fixtures::error("server_error", None, "no model list"))),
    };
    lock(&shared.model_lists).answered += 1;
    shared.model_lists_notify.notify_waiters();
    response
}

/// One page of the built-in model list: Anthropic's format when the request carries
/// `anthropic-version` (paged by `after_id`), Gemini's for `/v1beta/models` or
/// `x-goog-api-key` (paged by `pageToken`, the index of the page's first model), else
/// OpenAI's (one page).
fn builtin_model_list(lists: &ModelLists, parts: &http::request::Parts) -> Value {
    let query = |name: &str| {
        parts.uri.query().unwrap_or_default().split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
    };
    let ids = &lists.ids;
    let page_size = lists.page_size.unwrap_or(ids.len().max(1));
    if parts.headers.contains_key("anthropic-version") {
        let start = query("after_id")
            .and_then(|after| ids.iter().position(|id| *id == after))
            .map_or(0, |index| index + 1);
        let end = (start + page_size).min(ids.len());
        return crate::anthropic_fixtures::models_page(&ids[start.min(end)..end], end < ids.len());
    }
    if parts.uri.path().ends_with("/v1beta/models") || parts.headers.contains_key("x-goog-api-key") {
        let start = query("pageToken").and_then(|token| token.parse::<usize>().ok()).unwrap_or(0);
        let end = (start + page_size).min(ids.len());
        let next = (end < ids.len()).then(|| end.to_string());
        return crate::gemini_fixtures::models_page(&ids[start.min(end)..end], next.as_deref());
    }
    fixtures::models_list(ids)
}

/// The response a scripted reply stands for.
async fn scripted(
    shared: &Arc<Shared>,
    mut reply: Reply,
    seq: usize,
) -> Result<Response<MockBody>, MockError> {
    loop {
        let mut response = match reply {
            Reply::Delay(delay, inner) => {
                tokio::time::sleep(delay).await;
                reply = *inner;
                continue;
            }
            Reply::Hang => std::future::pending().await,
            Reply::Close => return Err(MockError::Close),
            Reply::Json { status, headers, body } => {
                let bytes = Bytes::from(body.to_string());
                let mut response = full(status, bytes, APPLICATION_JSON);
                add_headers(response.headers_mut(), &headers);
                response
            }
            Reply::Raw { status, headers, body } => {
                let mut response = full(status, Bytes::from(body), APPLICATION_JSON);
                add_headers(response.headers_mut(), &headers);
                response
            }
            Reply::Sse { status, steps } => {
                let steps = steps.into_iter().map(Step::from).collect();
                sse(shared, status, steps)
            }
            Reply::ResetMidBody { status, headers, partial, content_length } => {
                let mut response = reset_mid_body(status, Bytes::from(partial), content_length);
                add_headers(response.headers_mut(), &headers);
                response
            }
        };
        set_request_id(response.headers_mut(), seq);
        return Ok(response);
    }
}

/// The built-in OpenAI behaviour for a request nobody scripted.
fn builtin(
    shared: &Arc<Shared>,
    parts: &http::request::Parts,
    body: &Bytes,
    seq: usize,
) -> Response<MockBody> {
    let path = parts.uri.path();
    let model_id = path.strip_prefix("/v1/models/");
    let mut response = match (&parts.method, path) {
        (&Method::POST, "/v1/chat/completions") => chat(shared, body),
        (&Method::POST, "/v1/embeddings") => embeddings(shared, body),
        (&Method::GET, _) if model_id.is_some() => {
            let id = model_id.unwrap_or_default();
            if fixtures::MODELS.contains(&id) {
                json_response(200, &fixtures::model(id))
            } else {
                json_response(404, &fixtures::model_not_found(id))
            }
        }
        (method, path) => json_response(404, &fixtures::invalid_url(method.as_str(), path)),
    };
    set_request_id(response.headers_mut(), seq);
    response
}

#[derive(Deserialize)]
struct ChatProbe<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptionsProbe>,
}

#[derive(Deserialize)]
struct StreamOptionsProbe {
    #[serde(default)]
    include_usage: Option<bool>,
}

fn chat(shared: &Arc<Shared>, body: &Bytes) -> Response<MockBody> {
    let probe: ChatProbe<'_> = match serde_json::from_slice(body) {
        Ok(probe) => probe,
        Err(err) => return bad_body(body, err),
    };
    let Some(model) = probe.model else {
        return json_response(400, &fixtures::missing_parameter("model"));
    };
    let model_json = json_string(&model);
    let templates = &shared.templates;
    if probe.stream.unwrap_or(false) {
        let include_usage = probe.stream_options.and_then(|options| options.include_usage).unwrap_or(false);
        let frames = &templates.chat_stream[usize::from(include_usage)];
        let total: usize = frames.iter().map(|t| t.len(&model_json)).sum();
        let mut buf = BytesMut::with_capacity(total);
        let steps = frames
            .iter()
            .map(|template| {
                template.render_into(&mut buf, &model_json);
                Step::Bytes(buf.split().freeze())
            })
            .collect();
        sse(shared, 200, steps)
    } else {
        let bytes = templates.chat_completion.render(&model_json);
        full(200, bytes, APPLICATION_JSON)
    }
}

#[derive(Deserialize)]
struct EmbeddingsProbe<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(borrow, default)]
    encoding_format: Option<Cow<'a, str>>,
}

fn embeddings(shared: &Shared, body: &Bytes) -> Response<MockBody> {
    let probe: EmbeddingsProbe<'_> = match serde_json::from_slice(body) {
        Ok(probe) => probe,
        Err(err) => return bad_body(body, err),
    };
    let Some(model) = probe.model else {
        return json_response(400, &fixtures::missing_parameter("model"));
    };
    let n_inputs = match &probe.input {
        Some(Value::String(_)) => 1,
        // A flat array of token ids is one input; otherwise one input per element.
        Some(Value::Array(items)) if items.first().is_some_and(Value::is_number) => 1,
        Some(Value::Array(items)) if !items.is_empty() => items.len(),
        _ => return json_response(400, &fixtures::missing_parameter("input")),
    };
    let base64 = probe.encoding_format.as_deref() == Some("base64");
    if n_inputs == 1 && !base64 {
        let model_json = json_string(&model);
        return full(200, shared.templates.embeddings_single.render(&model_json), APPLICATION_JSON);
    }
    json_response(200, &fixtures::embeddings_with(&model, n_inputs, base64))
}

/// 400 for a body that is not JSON, or JSON with a field of the wrong type.
fn bad_body(body: &Bytes, err: serde_json::Error) -> Response<MockBody> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        return json_response(400, &fixtures::invalid_json());
    }
    let message = format!("Invalid request body: {err}");
    json_response(400, &fixtures::error("invalid_request_error", None, &message))
}

fn json_string(s: &str) -> String {
    // Serializing a str cannot fail; fall back to an empty string literal anyway.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or_else(|_| {
        tracing::warn!(status, "mock upstream reply has an invalid status; sending 500");
        StatusCode::INTERNAL_SERVER_ERROR
    })
}

fn full(status: u16, body: Bytes, content_type: HeaderValue) -> Response<MockBody> {
    let body = Full::new(body).map_err(|never: Infallible| match never {}).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status_code(status);
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

fn json_response(status: u16, body: &Value) -> Response<MockBody> {
    full(status, Bytes::from(body.to_string()), APPLICATION_JSON)
}

/// Apply scripted headers; later entries with the same name replace earlier ones.
fn add_headers(map: &mut HeaderMap, headers: &[(String, String)]) {
    for (name, value) in headers {
        match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            (Ok(name), Ok(value)) => {
                map.insert(name, value);
            }
            _ => tracing::warn!(name, value, "mock upstream skips an invalid scripted header"),
        }
    }
}

fn set_request_id(map: &mut HeaderMap, seq: usize) {
    if !map.contains_key(&X_REQUEST_ID)
        && let Ok(value) = HeaderValue::try_from(format!("req_mock_{seq}"))
    {
        map.insert(X_REQUEST_ID, value);
    }
}

/// One internal step of a stream: bytes to write, or a pause.
enum Step {
    Bytes(Bytes),
    Delay(Duration),
    Gate(Gate),
}

impl From<SseStep> for Step {
    fn from(step: SseStep) -> Step {
        match step {
            SseStep::Delay(delay) => Step::Delay(delay),
            SseStep::Gate(gate) => Step::Gate(gate),
            other => Step::Bytes(Bytes::from(other.wire_bytes().unwrap_or_default())),
        }
    }
}

/// Counts the stream as dropped unless it ran to the end.
struct DropGuard {
    shared: Arc<Shared>,
    finished: bool,
}

impl DropGuard {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.stream_dropped();
        }
    }
}

struct StreamState {
    steps: std::vec::IntoIter<Step>,
    guard: DropGuard,
}

/// An SSE response whose body yields each byte step as its own frame, as soon as
/// the pauses before it are over.
fn sse(shared: &Arc<Shared>, status: u16, steps: Vec<Step>) -> Response<MockBody> {
    let state = StreamState {
        steps: steps.into_iter(),
        guard: DropGuard { shared: shared.clone(), finished: false },
    };
    let frames = stream::unfold(state, |mut state| async move {
        loop {
            match state.steps.next() {
                Some(Step::Bytes(bytes)) => {
                    return Some((Ok::<_, ScriptedReset>(Frame::data(bytes)), state));
                }
                Some(Step::Delay(delay)) => tokio::time::sleep(delay).await,
                Some(Step::Gate(gate)) => gate.wait().await,
                None => {
                    state.guard.finish();
                    return None;
                }
            }
        }
    });
    let body = StreamBody::new(Box::pin(frames)).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status_code(status);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, TEXT_EVENT_STREAM);
    headers.insert(CACHE_CONTROL, NO_CACHE);
    response
}

/// Where a [`reset_mid_body`] body is.
enum Cut {
    /// The partial body is next.
    Partial(Bytes),
    /// The reset is next.
    Reset,
    /// The body has failed.
    Done,
}

/// A response announcing a `content_length`-byte JSON body that sends `partial`, then
/// fails the body, which makes hyper drop the connection (HTTP/2: reset the stream).
fn reset_mid_body(status: u16, partial: Bytes, content_length: usize) -> Response<MockBody> {
    let frames = stream::unfold(Cut::Partial(partial), |cut| async move {
        match cut {
            Cut::Partial(bytes) => Some((Ok(Frame::data(bytes)), Cut::Reset)),
            Cut::Reset => {
                // A turn for hyper to flush the head and partial body before the reset.
                tokio::task::yield_now().await;
                Some((Err(ScriptedReset), Cut::Done))
            }
            Cut::Done => None,
        }
    });
    let mut response = Response::new(StreamBody::new(Box::pin(frames)).boxed_unsync());
    *response.status_mut() = status_code(status);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, APPLICATION_JSON);
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(content_length));
    response
}

/// A pre-serialized body with the request's model spliced in.
struct Template {
    parts: Vec<Bytes>,
}

/// Stands in for the model while serializing a template; never sent.
const MODEL_PLACEHOLDER: &str = "__loom_mock_model_placeholder__";

impl Template {
    /// Split `text` (built with [`MODEL_PLACEHOLDER`] as model) around the placeholder.
    fn new(text: &str) -> Template {
        let needle = format!("\"{MODEL_PLACEHOLDER}\"");
        let parts = text.split(&needle).map(|part| Bytes::copy_from_slice(part.as_bytes())).collect();
        Template { parts }
    }

    fn len(&self, model_json: &str) -> usize {
        let fixed: usize = self.parts.iter().map(Bytes::len).sum();
        fixed + model_json.len() * self.parts.len().saturating_sub(1)
    }

    fn render_into(&self, buf: &mut BytesMut, model_json: &str) {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                buf.extend_from_slice(model_json.as_bytes());
            }
            buf.extend_from_slice(part);
        }
    }

    fn render(&self, model_json: &str) -> Bytes {
        if self.parts.len() == 1 {
            return self.parts[0].clone();
        }
        let mut buf = BytesMut::with_capacity(self.len(model_json));
        self.render_into(&mut buf, model_json);
        buf.freeze()
    }
}

/// Every fixed default body, serialized once per server.
struct Templates {
    chat_completion: Template,
    /// Indexed by `include_usage as usize`; the last frame is `data: [DONE]`.
    chat_stream: [Vec<Template>; 2],
    embeddings_single: Template,
}

impl Templates {
    fn new() -> Templates {
        let stream = |include_usage| {
            fixtures::chat_stream_steps(MODEL_PLACEHOLDER, include_usage)
                .iter()
                .map(|step| Template::new(&step.wire_bytes().unwrap_or_default()))
                .collect::<Vec<_>>()
        };
        Templates {
            chat_completion: Template::new(&fixtures::chat_completion(MODEL_PLACEHOLDER).to_string()),
            chat_stream: [stream(false), stream(true)],
            embeddings_single: Template::new(&fixtures::embeddings(MODEL_PLACEHOLDER, 1).to_string()),
        }
    }
}
