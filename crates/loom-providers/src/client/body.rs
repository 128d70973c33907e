//! One upstream HTTP/1.1 connection driven by the task that uses it, and the response body
//! that drives it.
//!
//! hyper's pooled client runs each connection in a task of its own and hands every body
//! chunk to the request's task through a channel, one chunk per scheduler turn: a
//! streamed answer then reached the client as one TCP write per event. Here the reading
//! task polls the connection itself, so everything the socket holds is decoded in one
//! go, with no hand-off between tasks.

use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::transport::{Target, Transport};
use super::{ClientInner, TransportError};
use crate::deferred_writes::DeferredWrites;

/// How many already-received frames a dropped body reads to reach its end.
const MAX_FRAMES_READ_ON_DROP: usize = 4;

/// An open HTTP/1.1 connection: the handle that sends requests, and the state machine that
/// does the I/O whenever it is polled.
pub(crate) struct Connection {
    pub(crate) target: Target,
    sender: http1::SendRequest<Full<Bytes>>,
    driver: http1::Connection<TokioIo<DeferredWrites<Transport>>, Full<Bytes>>,
    /// When the connection last went idle, for the pool's idle timeout.
    pub(crate) idle_since: Instant,
}

/// Why a request did not get an answer on a connection.
pub(crate) enum SendError {
    /// The connection was closed before the request was written: it can go elsewhere unchanged.
    NotSent(Box<Request<Full<Bytes>>>, hyper::Error),
    /// The request may have reached the upstream.
    Failed(hyper::Error),
}

impl Connection {
    /// Performs the (local, immediate) HTTP/1.1 handshake over an open transport.
    pub(crate) async fn open(target: Target, transport: Transport) -> Result<Self, TransportError> {
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(DeferredWrites::new(transport)))
            .await
            .map_err(TransportError::Http)?;
        Ok(Connection { target, sender, driver, idle_since: Instant::now() })
    }

    /// Sends `request` and drives the connection until the response head arrives.
    pub(crate) async fn send(
        mut self: Box<Self>,
        request: Request<Full<Bytes>>,
        pool: Weak<ClientInner>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let mut response = std::pin::pin!(self.sender.try_send_request(request));
        let polled = std::future::poll_fn(|cx| {
            if let Poll::Ready(head) = response.as_mut().poll(cx) {
                return Poll::Ready(Some(head));
            }
            if Pin::new(&mut self.driver).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            response.as_mut().poll(cx).map(Some)
        })
        .await;
        let (head, connection) = match polled {
            Some(head) => (head, Some(self)),
            None => {
                // The connection ended. Dropping it answers the request: the response if it
                // came, else an error (with the request back if it was never written).
                drop(self);
                (response.await, None)
            }
        };
        match head {
            Ok(response) => Ok(response.map(|incoming| UpstreamBody { incoming, connection, pool })),
            Err(mut error) => match error.take_message() {
                Some(request) => Err(SendError::NotSent(Box::new(request), error.into_error())),
                None => Err(SendError::Failed(error.into_error())),
            },
        }
    }

    /// Polls the connection's I/O; `true` once the connection has closed.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        Pin::new(&mut self.driver).poll(cx).is_ready()
    }

    /// Whether the connection still works after a check with the current task: an idle
    /// connection whose peer closed it is found out here.
    pub(crate) fn is_usable(&mut self, cx: &mut Context<'_>) -> bool {
        !self.drive(cx) && self.sender.is_ready()
    }
}

/// The body of an upstream response. Polling it drives the connection; once it has been
/// read to the end, the connection goes back to its client's pool.
pub struct UpstreamBody {
    incoming: Incoming,
    connection: Option<Box<Connection>>,
    pool: Weak<ClientInner>,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody").field("pooled", &self.connection.is_some()).finish()
    }
}

impl UpstreamBody {
    /// Returns the connection to the pool if it can carry another request.
    fn release(&mut self, cx: &mut Context<'_>) {
        let Some(mut connection) = self.connection.take() else { return };
        // One more turn lets the connection go idle and ask for the next request.
        if connection.is_usable(cx)
            && let Some(pool) = self.pool.upgrade()
        {
            pool.put_idle(connection);
        }
    }
}

impl Drop for UpstreamBody {
    /// A reader that stops at its protocol's terminator (`data: [DONE]`) leaves the body's
    /// last bytes unread; they have usually arrived already, so finish it here without
    /// waiting and keep the connection.
    fn drop(&mut self) {
        if self.connection.is_none() {
            return;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..MAX_FRAMES_READ_ON_DROP {
            match Pin::new(&mut *self).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(None) | Poll::Ready(Some(Err(_))) | Poll::Pending => return,
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        loop {
            match Pin::new(&mut this.incoming).poll_frame(cx) {
                Poll::Ready(None) => {
                    this.release(cx);
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(error))) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(Some(Ok(frame))) => return Poll::Ready(Some(Ok(frame))),
                Poll::Pending => {}
            }
            let Some(connection) = this.connection.as_mut() else { return Poll::Pending };
            if connection.drive(cx) {
                // Closed: the body now ends (or fails) with what was read.
                this.connection = None;
                continue;
            }
            // The connection may have decoded the next chunk from its buffer.
            return match Pin::new(&mut this.incoming).poll_frame(cx) {
                Poll::Ready(None) => {
                    this.release(cx);
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Err(error))) => {
                    this.connection = None;
                    Poll::Ready(Some(Err(error)))
                }
                other => other,
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
