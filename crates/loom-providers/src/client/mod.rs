//! The pooled upstream HTTP/1.1 client shared by the HTTP-based adapters.
//!
//! Keep-alive connections are pooled per scheme, host and port, and each one is driven by
//! the task that is using it (see the private `body` module): no task per connection and no hand-off of
//! every body chunk between tasks, so a streamed answer that arrives in one read leaves in
//! one write. HTTP is hyper's, TLS is rustls' (webpki roots, HTTP/1.1 by ALPN).

mod body;
mod transport;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use tokio_rustls::TlsConnector;

pub use body::UpstreamBody;
use body::{Connection, SendError};
use transport::Target;

use crate::error::ProviderError;

/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How often idle connections are checked for expiry and for being closed by their server.
const SWEEP_INTERVAL: Duration = Duration::from_secs(15);

/// Why an upstream request got no response.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL cannot be requested.
    #[error("invalid URL: {0}")]
    InvalidUri(String),
    /// The host name did not resolve.
    #[error("DNS lookup failed")]
    Dns(#[source] std::io::Error),
    /// No TCP connection could be opened.
    #[error("connection failed")]
    Connect(#[source] std::io::Error),
    /// DNS, TCP and TLS together took longer than the connect timeout.
    #[error("connecting timed out")]
    ConnectTimeout,
    /// The TLS handshake failed.
    #[error("TLS handshake failed")]
    Tls(#[source] std::io::Error),
    /// The HTTP exchange failed.
    #[error("HTTP exchange failed")]
    Http(#[source] hyper::Error),
}

impl TransportError {
    /// Whether no connection was made (nothing reached the upstream).
    pub fn is_connect(&self) -> bool {
        !matches!(self, TransportError::Http(_))
    }
}

/// Pooled keep-alive client for `http://` and `https://` upstreams.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<ClientInner>,
}

/// The pool and connection settings behind an [`HttpClient`].
pub(crate) struct ClientInner {
    // Boxed so that handing a connection between the pool, requests and bodies moves a pointer.
    #[allow(clippy::vec_box)]
    idle: Mutex<HashMap<Target, Vec<Box<Connection>>, foldhash::fast::RandomState>>,
    tls: TlsConnector,
    connect_timeout: Duration,
    max_idle_per_host: usize,
    /// Whether the task that closes expired idle connections runs (started by the first request).
    sweeping: AtomicBool,
}

/// Builds a pooled client with rustls (HTTP/1.1) and plain HTTP.
pub fn build_client(
    provider: &str,
    connect_timeout: Duration,
    max_idle_per_host: usize,
) -> Result<HttpClient, ProviderError> {
    let tls = transport::tls_connector(transport::public_roots()).map_err(|error| ProviderError::Config {
        provider: provider.to_owned(),
        reason: format!("TLS setup failed: {error}"),
    })?;
    Ok(HttpClient::with_tls(tls, connect_timeout, max_idle_per_host))
}

impl HttpClient {
    fn with_tls(tls: TlsConnector, connect_timeout: Duration, max_idle_per_host: usize) -> Self {
        HttpClient {
            inner: Arc::new(ClientInner {
                idle: Mutex::default(),
                tls,
                connect_timeout,
                max_idle_per_host,
                sweeping: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `request` (absolute URI) on a pooled or new connection; resolves with the
    /// response head. The body must be read to the end for the connection to be reused.
    pub async fn request(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, TransportError> {
        let endpoint = Endpoint::parse(request.uri())?;
        self.request_to(&endpoint, request).await
    }

    /// Sends `request` to `endpoint` (whatever the request's own URI) on a pooled or new
    /// connection; resolves with the response head. The body must be read to the end for
    /// the connection to be reused.
    pub async fn request_to(
        &self,
        endpoint: &Endpoint,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, TransportError> {
        let target = endpoint.target.on_this_runtime();
        *request.uri_mut() = endpoint.path.clone();
        request.headers_mut().entry(HOST).or_insert_with(|| endpoint.host.clone());
        if !self.inner.sweeping.load(Ordering::Relaxed) && !self.inner.sweeping.swap(true, Ordering::Relaxed)
        {
            tokio::spawn(sweep_idle(Arc::downgrade(&self.inner), SWEEP_INTERVAL));
        }
        // A pooled connection the upstream closed meanwhile fails before the request is
        // written; the request then goes on a new connection.
        while let Some(connection) = self.checkout(&target).await {
            match connection.send(request, Arc::downgrade(&self.inner)).await {
                Ok(response) => return Ok(response),
                Err(SendError::NotSent(unsent, _)) => request = *unsent,
                Err(SendError::Failed(error)) => return Err(TransportError::Http(error)),
            }
        }
        // Boxed: connecting is rare, and its future is large; inline it would enlarge every request's.
        let transport =
            Box::pin(transport::connect(&target, &self.inner.tls, self.inner.connect_timeout)).await?;
        let connection = Box::new(Connection::open(target, transport).await?);
        match connection.send(request, Arc::downgrade(&self.inner)).await {
            Ok(response) => Ok(response),
            Err(SendError::NotSent(_, error) | SendError::Failed(error)) => Err(TransportError::Http(error)),
        }
    }

    /// The newest usable idle connection to `target`, dropping stale ones on the way.
    async fn checkout(&self, target: &Target) -> Option<Box<Connection>> {
        loop {
            let mut connection = {
                let mut idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
                idle.get_mut(target)?.pop()?
            };
            if connection.idle_since.elapsed() >= IDLE_TIMEOUT {
                continue;
            }
            if std::future::poll_fn(|cx| std::task::Poll::Ready(connection.is_usable(cx))).await {
                return Some(connection);
            }
        }
    }

    /// How many idle connections the pool holds (for tests).
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        let idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.values().map(Vec::len).sum()
    }
}

/// Every `interval`, closes the idle connections that expired or that their server closed,
/// so an unused pool does not hold sockets; stops when the client is gone.
async fn sweep_idle(pool: Weak<ClientInner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.sweep();
    }
}

impl ClientInner {
    /// Drops idle connections that are past the idle timeout or closed by their server.
    fn sweep(&self) {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        for connections in idle.values_mut() {
            connections.retain_mut(|connection| {
                connection.idle_since.elapsed() < IDLE_TIMEOUT && connection.is_usable(&mut cx)
            });
        }
        idle.retain(|_, connections| !connections.is_empty());
    }

    /// Keeps an idle connection for the next request to its target, within the per-host cap.
    pub(crate) fn put_idle(&self, mut connection: Box<Connection>) {
        connection.idle_since = tokio::time::Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle.entry(connection.target.clone()).or_default();
        if list.len() < self.max_idle_per_host {
            list.push(connection);
        }
    }
}

/// An absolute `http://` or `https://` URL, worked out once for many requests: where to
/// connect, the `Host` header, and the origin-form request target (path and query).
#[derive(Clone, Debug)]
pub struct Endpoint {
    target: Target,
    host: HeaderValue,
    path: Uri,
}

impl Endpoint {
    /// Parses an absolute URL; other schemes than `http` and `https` are refused.
    pub fn parse(uri: &Uri) -> Result<Endpoint, TransportError> {
        let target = Target::parse(uri)?;
        let authority =
            uri.authority().ok_or_else(|| TransportError::InvalidUri(format!("`{uri}` has no host")))?;
        // `user:pass@` is never sent in Host.
        let host = authority.as_str().rsplit('@').next().unwrap_or(authority.as_str());
        let host = HeaderValue::from_str(host)
            .map_err(|_| TransportError::InvalidUri(format!("`{host}` is not a valid host")))?;
        let path = uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        Ok(Endpoint { target, host, path: Uri::from(path) })
    }
}

impl std::str::FromStr for Endpoint {
    type Err = TransportError;

    /// Parses URL text, as [`Endpoint::parse`] a URI.
    fn from_str(url: &str) -> Result<Self, TransportError> {
        let uri = url.parse::<Uri>().map_err(|error| TransportError::InvalidUri(error.to_string()))?;
        Endpoint::parse(&uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn post(url: &str) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::from_static(b"{\"x\":1}")));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url.parse().unwrap();
        request
    }

    /// An HTTP/1.1 server that records what it read and answers every request with `answer`
    /// (closing the connection after it if `close_after`); counts the connections it accepted.
    async fn server(
        answer: &'static [u8],
        close_after: bool,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>, Arc<Mutex<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/chat?x=1", listener.local_addr().unwrap());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (accepted_task, seen_task) = (accepted.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                accepted_task.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let seen = seen_task.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 4096];
                    loop {
                        let read = match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => read,
                        };
                        seen.lock().unwrap().extend_from_slice(&buffer[..read]);
                        if socket.write_all(answer).await.is_err() || close_after {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted, seen)
    }

    #[tokio::test]
    async fn sends_origin_form_with_host_and_reuses_the_connection() {
        let (url, accepted, seen) =
            server(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello", false)
                .await;
        let client = build_client("test", Duration::from_secs(5), 8).unwrap();
        for _ in 0..3 {
            let response = client.request(post(&url)).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"hello");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "one keep-alive connection");
        assert_eq!(client.idle_count(), 1);
        let seen = String::from_utf8(seen.lock().unwrap().clone()).unwrap();
        let host = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
        let one =
            format!("POST /v1/chat?x=1 HTTP/1.1\r\nhost: {host}\r\ncontent-length: 7\r\n\r\n{{\"x\":1}}");
        assert_eq!(seen, one.repeat(3));
    }

    #[tokio::test]
    async fn chunked_answers_leave_the_connection_reusable() {
        let answer =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n\
            7\r\ndata: a\r\n7\r\ndata: b\r\n0\r\n\r\n";
        let (url, accepted, _) = server(answer, false).await;
        let client = build_client("test", Duration::from_secs(5), 8).unwrap();
        for _ in 0..3 {
            let response = client.request(post(&url)).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"data: adata: b");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "one keep-alive connection");
    }

    #[tokio::test]
    async fn a_body_dropped_at_its_terminator_keeps_the_connection() {
        let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
            7\r\ndata: a\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";
        let (url, accepted, _) = server(answer, false).await;
        let client = build_client("test", Duration::from_secs(5), 8).unwrap();
        for _ in 0..3 {
            let mut body = client.request(post(&url)).await.unwrap().into_body();
            // Read up to the terminator only, as a stream reader does.
            let mut read = Vec::new();
            while !read.ends_with(b"[DONE]\n\n") {
                let frame = body.frame().await.unwrap().unwrap();
                read.extend_from_slice(frame.data_ref().unwrap());
            }
            drop(body);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "one keep-alive connection");
    }

    #[tokio::test]
    async fn a_pooled_connection_the_upstream_closed_is_replaced() {
        // Answers as if keeping the connection alive, then closes it.
        let (url, accepted, _) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", true).await;
        let client = build_client("test", Duration::from_secs(5), 8).unwrap();
        for expected_connections in 1..=3 {
            let response = client.request(post(&url)).await.unwrap();
            assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), Bytes::from_static(b"ok"));
            assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), expected_connections);
            // Let the server's FIN arrive before the next checkout.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A TLS acceptor with the committed `localhost` test certificate, and that certificate.
    fn test_acceptor() -> (tokio_rustls::TlsAcceptor, rustls_pki_types::CertificateDer<'static>) {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(include_bytes!("../../tests/fixtures/localhost-cert.pem"))
            .unwrap();
        let key =
            PrivateKeyDer::from_pem_slice(include_bytes!("../../tests/fixtures/localhost-key.pem")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        (tokio_rustls::TlsAcceptor::from(Arc::new(config)), cert)
    }

    #[tokio::test]
    async fn https_upstreams_are_verified_and_spoken_to_over_tls() {
        let (acceptor, cert) = test_acceptor();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (alpn_tx, alpn_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(socket).await.unwrap();
            let _ = alpn_tx.send(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.ends_with(b"{\"x\":1}") {
                let read = tls.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..read]);
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecure").await.unwrap();
            tls.flush().await.unwrap();
            // Keep the connection open until the client is done.
            let _ = tls.read(&mut buffer).await;
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client =
            HttpClient::with_tls(transport::tls_connector(roots).unwrap(), Duration::from_secs(5), 8);
        let response = client.request(post(&format!("https://localhost:{port}/v1"))).await.unwrap();
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), Bytes::from_static(b"secure"));
        assert_eq!(alpn_rx.await.unwrap().as_deref(), Some(&b"http/1.1"[..]));
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_a_tls_error() {
        let (acceptor, _) = test_acceptor();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = acceptor.accept(socket).await;
            }
        });
        // The public roots do not trust the test certificate.
        let client = build_client("test", Duration::from_secs(5), 8).unwrap();
        let error = client.request(post(&format!("https://localhost:{port}/v1"))).await.unwrap_err();
        assert!(matches!(error, TransportError::Tls(_)), "{error:?}");
        assert!(error.is_connect());
    }

    #[tokio::test]
    async fn idle_connections_the_server_closed_are_swept() {
        // Answers once, then closes the connection when told to.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; 4096];
            let _ = socket.read(&mut buffer).await.unwrap();
            socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.unwrap();
            let _ = close_rx.await;
        });
        let client = build_client("test", Duration::from_secs(5), 8).unwrap();
        let response = client.request(post(&url)).await.unwrap();
        response.into_body().collect().await.unwrap();
        client.inner.sweep();
        assert_eq!(client.idle_count(), 1, "an open idle connection is kept");
        close_tx.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.inner.sweep();
        assert_eq!(client.idle_count(), 0, "the closed one is dropped without waiting for a request");
    }

    #[tokio::test]
    async fn a_server_that_hangs_up_at_once_is_an_error_not_a_hang() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let client = build_client("test", Duration::from_secs(5), 8).unwrap();
        for _ in 0..20 {
            let result = tokio::time::timeout(Duration::from_secs(5), client.request(post(&url))).await;
            let error = result.expect("an answer, not a hang").unwrap_err();
            assert!(matches!(error, TransportError::Http(_)), "{error:?}");
        }
    }

    #[tokio::test]
    async fn refused_and_unresolvable_targets_are_connect_errors() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = build_client("test", Duration::from_secs(5), 8).unwrap();
        let error = client.request(post(&format!("http://127.0.0.1:{port}/"))).await.unwrap_err();
        assert!(matches!(error, TransportError::Connect(_)), "{error:?}");
        assert!(error.is_connect());
        let error = client.request(post("ftp://127.0.0.1/")).await.unwrap_err();
        assert!(matches!(error, TransportError::InvalidUri(_)));
    }
}
