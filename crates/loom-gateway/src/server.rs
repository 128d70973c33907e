//! The accept loop: HTTP/1.1 keep-alive and h2c on one port, with graceful drain and
//! every connection bounded (count, header and idle timeouts, buffers).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use loom_providers::deferred_writes::DeferredWrites;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::config::ServerConfig;

/// What the servers run for every request: a cloneable async function from a request to
/// a response (the front door's and the admin server's handlers).
pub trait Handler: Fn(Request<Incoming>) -> Self::Answer + Clone + Send + Sync + 'static {
    /// The future of one request.
    type Answer: Future<Output = Result<Response<Self::Body>, Infallible>> + Send + 'static;
    /// The response body.
    type Body: Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static;
}

impl<H, Fut, B> Handler for H
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static,
{
    type Answer = Fut;
    type Body = B;
}

/// HTTP/1 read buffer per connection: the largest request head, and what is read ahead of a body.
const HTTP1_MAX_BUFFER: usize = 64 * 1024;
/// HTTP/2 header block per request (HPACK-decoded).
const HTTP2_MAX_HEADER_LIST: u32 = 64 * 1024;
/// Time a connection told to close gets to finish what it has in flight before it is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How often a refused connection or a failed accept is logged, at most.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// File descriptors kept back from the automatic `max_connections` for everything else
/// (upstream connections, the admin server, the ledger, logs).
const RESERVED_DESCRIPTORS: u64 = 64;
/// Connections the admin server accepts at once.
const ADMIN_MAX_CONNECTIONS: usize = 64;
/// The answer a connection over `max_connections` gets before it is closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 140\r\n\r\n\
{\"error\":{\"message\":\"Too many open connections; retry shortly\",\"type\":\"overloaded_error\",\"param\":null,\"code\":\"too_many_connections\"}}\n";

/// The bounds of every connection of one server: how many, and how long each may stay quiet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time from accept until the first request head is complete.
    pub header_timeout: Duration,
    /// Time a connection with no request in flight is kept open.
    pub keepalive_timeout: Duration,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Concurrent requests on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// Interval of HTTP/2 keep-alive pings; a peer that does not answer one within this
    /// time is disconnected.
    pub http2_keepalive_interval: Duration,
    /// Longest a connection may have requests in flight with none starting or ending: past
    /// the request timeout, only a client that does not read its answer gets there.
    pub stall_timeout: Duration,
}

/// Time past `server.request_timeout` a connection's requests may go without progress
/// before it is cut (their answers should have ended by then).
const STALL_SLACK: Duration = Duration::from_secs(5);

impl ConnectionLimits {
    /// The front door's limits from `server:`; `max_connections` unset follows the
    /// process's file-descriptor limit.
    pub fn front_door(server: &ServerConfig) -> Self {
        ConnectionLimits {
            header_timeout: server.header_timeout,
            keepalive_timeout: server.keepalive_timeout,
            max_connections: server.max_connections.map_or_else(automatic_max_connections, |max| max.get()),
            http2_max_concurrent_streams: server.http2_max_concurrent_streams,
            http2_keepalive_interval: server.http2_keepalive_interval,
            stall_timeout: server.request_timeout.saturating_add(STALL_SLACK),
        }
    }

    /// The admin server's limits: the front door's timeouts, few connections.
    pub fn admin(server: &ServerConfig) -> Self {
        ConnectionLimits { max_connections: ADMIN_MAX_CONNECTIONS, ..ConnectionLimits::front_door(server) }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::front_door(&ServerConfig::default())
    }
}

/// Half of the file descriptors left after a reserve (each client connection may need an
/// upstream one), raising the soft limit to the hard one first, as nginx and Go do.
fn automatic_max_connections() -> usize {
    #[cfg(unix)]
    let descriptors = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    #[cfg(not(unix))]
    let descriptors = 1024_u64;
    let connections = descriptors.saturating_sub(RESERVED_DESCRIPTORS) / 2;
    usize::try_from(connections.clamp(16, 100_000)).unwrap_or(16)
}

/// Serves `handler` on `listener` until `shutdown` fires, then drains open
/// connections for at most `grace`. Connections are served on the current runtime.
pub async fn serve(
    listener: TcpListener,
    handler: impl Handler,
    limits: ConnectionLimits,
    shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let open = OpenConnections::new(limits.max_connections);
    let connections = Connections::new(&limits);
    accept_until(listener, shutdown, &open, |stream, peer, ticket| {
        connections.serve(stream, peer, handler.clone(), ticket)
    })
    .await;
    connections.drain(grace).await;
}

/// The number of connections a server has open, against its maximum.
#[derive(Clone)]
pub(crate) struct OpenConnections {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl OpenConnections {
    pub(crate) fn new(max: usize) -> Self {
        OpenConnections { open: Arc::new(AtomicUsize::new(0)), max }
    }

    /// A ticket for one more connection, or `None` at the maximum.
    fn admit(&self) -> Option<ConnectionTicket> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < self.max).then_some(open + 1))
            .is_ok();
        admitted.then(|| ConnectionTicket(self.open.clone()))
    }
}

/// Counts one connection as open until dropped.
pub(crate) struct ConnectionTicket(Arc<AtomicUsize>);

impl Drop for ConnectionTicket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A warning logged at most once per [`LOG_INTERVAL`], with the count of what it stands for.
struct ThrottledWarning {
    last: Option<Instant>,
    suppressed: u64,
}

impl ThrottledWarning {
    fn new() -> Self {
        ThrottledWarning { last: None, suppressed: 0 }
    }

    /// Whether to log now; if so, how many occurrences the line stands for.
    fn due(&mut self) -> Option<u64> {
        self.suppressed += 1;
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < LOG_INTERVAL) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Accepts connections and hands each, with its ticket, to `accepted` until `shutdown`
/// fires; past `open`'s maximum, connections get a 503 and are closed.
pub(crate) async fn accept_until(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    open: &OpenConnections,
    mut accepted: impl FnMut(TcpStream, SocketAddr, ConnectionTicket),
) {
    let mut refused = ThrottledWarning::new();
    let mut failed = ThrottledWarning::new();
    loop {
        tokio::select! {
            next = listener.accept() => match next {
                Ok((stream, peer)) => match open.admit() {
                    Some(ticket) => {
                        let _ = stream.set_nodelay(true);
                        accepted(stream, peer, ticket);
                    }
                    None => {
                        // Best effort: the socket buffer of a new connection takes this at once.
                        let _ = stream.try_write(BUSY_RESPONSE);
                        if let Some(count) = refused.due() {
                            warn!(refused = count, max_connections = open.max, "connection limit reached; refusing connections");
                        }
                    }
                },
                Err(error) => {
                    if let Some(count) = failed.due() {
                        warn!(%error, failures = count, "accept failed");
                    }
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
}

/// The HTTP connections served on one runtime, watched for graceful shutdown.
pub(crate) struct Connections {
    builder: auto::Builder<TokioExecutor>,
    limits: ConnectionLimits,
    /// Tells every connection to finish; closed once every connection has ended.
    shutdown: watch::Sender<bool>,
}

impl Connections {
    /// HTTP/1.1 and h2c, detected per connection, with `limits`' buffers and pings.
    pub(crate) fn new(limits: &ConnectionLimits) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Idle keep-alive connections are closed by the watchdog (keepalive_timeout);
        // hyper's own header timeout would cut them at header_timeout instead.
        builder.http1().max_buf_size(HTTP1_MAX_BUFFER);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.http2_max_concurrent_streams)
            .max_header_list_size(HTTP2_MAX_HEADER_LIST)
            .keep_alive_interval(limits.http2_keepalive_interval)
            .keep_alive_timeout(limits.http2_keepalive_interval);
        let (shutdown, _) = watch::channel(false);
        Connections { builder, limits: limits.clone(), shutdown }
    }

    /// Serves one connection in a task of its own on the current runtime; `ticket` is
    /// dropped when the connection ends.
    pub(crate) fn serve(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        handler: impl Handler,
        ticket: impl Send + 'static,
    ) {
        let activity = Arc::new(Activity::default());
        let tracked = activity.clone();
        let service = service_fn(move |request| {
            let in_flight = InFlight::start(&tracked);
            let answer = handler(request);
            async move {
                let response = answer.await?;
                Ok::<_, Infallible>(response.map(|body| TrackedBody { body, in_flight: Some(in_flight) }))
            }
        });
        let connection =
            self.builder.serve_connection(TokioIo::new(DeferredWrites::new(stream)), service).into_owned();
        let quiet = Watchdog { activity, limits: self.limits.clone() }.quiet();
        let (close_tx, close_rx) = oneshot::channel();
        // Tells the connection to close when the server shuts down or the connection has
        // been quiet too long. A task of its own, so that the connection's own wake-ups
        // (every read and write) poll nothing but the connection and one oneshot.
        tokio::spawn(supervise(close_tx, self.shutdown.subscribe(), quiet));
        // Held until the connection ends: the server's drain waits for every receiver.
        let draining = self.shutdown.subscribe();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                biased;
                result = connection.as_mut() => result,
                close = close_rx => match close {
                    // Shutdown drains for the server's whole grace period.
                    Ok(Close::Shutdown) => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                    Ok(Close::Quiet) => {
                        connection.as_mut().graceful_shutdown();
                        match tokio::time::timeout(CLOSE_GRACE, connection).await {
                            Ok(result) => result,
                            Err(_) => {
                                debug!(%peer, "cut a quiet connection that did not close when told to");
                                Ok(())
                            }
                        }
                    }
                    // The supervisor ends only after telling, or once this connection is over.
                    Err(_) => connection.await,
                },
            };
            if let Err(error) = result {
                debug!(%peer, %error, "connection ended with an error");
            }
            drop(draining);
            drop(ticket);
        });
    }

    /// Asks every connection to finish its in-flight requests and close, waiting at most `grace`.
    pub(crate) async fn drain(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        tokio::select! {
            _ = self.shutdown.closed() => debug!("all connections drained"),
            _ = tokio::time::sleep(grace) => warn!(?grace, "shutdown grace period elapsed; closing remaining connections"),
        }
    }
}

/// Why a connection is told to close.
enum Close {
    /// The server is shutting down.
    Shutdown,
    /// The watchdog found it quiet too long.
    Quiet,
}

/// Waits for the first reason to close a connection and sends it; ends early when the
/// connection does.
async fn supervise(
    close: oneshot::Sender<Close>,
    mut shutdown: watch::Receiver<bool>,
    quiet: impl Future<Output = ()>,
) {
    let mut close = close;
    let reason = tokio::select! {
        biased;
        () = close.closed() => return,
        () = shutdown_requested(&mut shutdown) => Close::Shutdown,
        () = quiet => Close::Quiet,
    };
    let _ = close.send(reason);
}

/// Resolves once the server is told to shut down (or its sender is gone).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// What one connection is doing: requests started, and requests whose answers are not
/// yet fully written.
#[derive(Default)]
struct Activity {
    started: AtomicU64,
    ended: AtomicU64,
    in_flight: AtomicUsize,
}

/// One request in flight on its connection, until its answer has been written (or dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.started.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.ended.fetch_add(1, Ordering::Relaxed);
    }
}

/// Decides when a connection has been quiet too long: no request head within
/// `header_timeout` of accept, no request in flight for `keepalive_timeout`, or requests
/// in flight that make no progress (none starts or ends) for `stall_timeout`.
struct Watchdog {
    activity: Arc<Activity>,
    limits: ConnectionLimits,
}

/// Checks per shorter timeout: a quiet connection is closed at most a quarter of that
/// timeout late.
const IDLE_CHECKS: u32 = 4;

impl Watchdog {
    /// Resolves once the connection has been quiet for too long.
    async fn quiet(self) {
        let Watchdog { activity, limits } = self;
        // Checking a few times per period costs one timer per connection, not one per request.
        let tick = (limits.header_timeout.min(limits.keepalive_timeout) / IDLE_CHECKS)
            .max(Duration::from_millis(10));
        let accepted = Instant::now();
        while activity.started.load(Ordering::Relaxed) == 0 {
            if accepted.elapsed() >= limits.header_timeout {
                return;
            }
            tokio::time::sleep(tick).await;
        }
        let progress = || (activity.started.load(Ordering::Relaxed), activity.ended.load(Ordering::Relaxed));
        let mut last_progress = progress();
        let mut since_progress = Instant::now();
        loop {
            tokio::time::sleep(tick).await;
            let now_progress = progress();
            if now_progress != last_progress {
                (last_progress, since_progress) = (now_progress, Instant::now());
                continue;
            }
            let limit = if activity.in_flight.load(Ordering::Relaxed) > 0 {
                limits.stall_timeout
            } else {
                limits.keepalive_timeout
            };
            if since_progress.elapsed() >= limit {
                return;
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until it is written.
    struct TrackedBody<B> {
        #[pin]
        body: B,
        in_flight: Option<InFlight>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.in_flight.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(600),
            ..ConnectionLimits::default()
        }
    }

    /// How long (virtual time) until the watchdog finds the connection quiet.
    async fn quiet_after(activity: &Arc<Activity>, limits: ConnectionLimits) -> Duration {
        let start = Instant::now();
        Watchdog { activity: activity.clone(), limits }.quiet().await;
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_is_quiet_at_the_header_timeout() {
        let activity = Arc::new(Activity::default());
        let waited = quiet_after(&activity, limits()).await;
        assert!(waited >= Duration::from_secs(10) && waited <= Duration::from_millis(12_500), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_quiet_a_keep_alive_after_its_last_request() {
        let activity = Arc::new(Activity::default());
        drop(InFlight::start(&activity));
        let waited = quiet_after(&activity, limits()).await;
        assert!(waited >= Duration::from_secs(60) && waited <= Duration::from_secs(75), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_the_connection_until_it_stalls() {
        let activity = Arc::new(Activity::default());
        let in_flight = InFlight::start(&activity);
        let waited = quiet_after(&activity, limits()).await;
        assert!(waited >= Duration::from_secs(600) && waited <= Duration::from_secs(615), "{waited:?}");
        drop(in_flight);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_come_and_go_keep_the_connection_open() {
        let activity = Arc::new(Activity::default());
        let busy = activity.clone();
        let watchdog = tokio::spawn(Watchdog { activity: activity.clone(), limits: limits() }.quiet());
        for _ in 0..100 {
            drop(InFlight::start(&busy));
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        assert!(!watchdog.is_finished(), "50 minutes of a request every 30 s is not quiet");
        watchdog.abort();
    }
}
