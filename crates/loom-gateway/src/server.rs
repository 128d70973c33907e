//! The accept loop: HTTP/1.1 keep-alive and h2c on one port, with graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use loom_providers::deferred_writes::DeferredWrites;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

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

/// Serves `handler` on `listener` until `shutdown` fires, then drains open
/// connections for at most `grace`. Connections are served on the current runtime.
pub async fn serve(
    listener: TcpListener,
    handler: impl Handler,
    shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let connections = Connections::new();
    accept_until(listener, shutdown, |stream, peer| connections.serve(stream, peer, handler.clone(), ()))
        .await;
    connections.drain(grace).await;
}

/// Accepts connections and hands each to `accepted` until `shutdown` fires.
pub(crate) async fn accept_until(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    mut accepted: impl FnMut(TcpStream, SocketAddr),
) {
    loop {
        tokio::select! {
            next = listener.accept() => match next {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    accepted(stream, peer);
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(%error, "accept failed");
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
    graceful: GracefulShutdown,
}

impl Connections {
    /// HTTP/1.1 (30 s to read a request head) and h2c, detected per connection.
    pub(crate) fn new() -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
        Connections { builder, graceful: GracefulShutdown::new() }
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
        let connection = self
            .builder
            .serve_connection(TokioIo::new(DeferredWrites::new(stream)), service_fn(handler))
            .into_owned();
        let connection = self.graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%peer, %error, "connection ended with an error");
            }
            drop(ticket);
        });
    }

    /// Asks every connection to finish its in-flight requests and close, waiting at most `grace`.
    pub(crate) async fn drain(self, grace: Duration) {
        tokio::select! {
            _ = self.graceful.shutdown() => debug!("all connections drained"),
            _ = tokio::time::sleep(grace) => warn!(?grace, "shutdown grace period elapsed; closing remaining connections"),
        }
    }
}
