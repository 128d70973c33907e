//! `server.request_timeout`: one deadline for the whole request, streams included.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use loom_core::{ChunkStream, ErrorKind, LoomError, StreamChunk};
use tokio::time::{Instant, Sleep, sleep_until};

/// The error a request gets when it runs past `server.request_timeout`.
pub fn request_timeout_error(limit: Duration) -> LoomError {
    LoomError::new(
        ErrorKind::Timeout,
        format!("The request took longer than server.request_timeout ({limit:?})"),
    )
    .with_code("request_timeout")
}

/// Ends `chunks` with a timeout error once `deadline` passes.
pub fn stream_with_deadline(chunks: ChunkStream, deadline: Instant, limit: Duration) -> ChunkStream {
    Box::pin(WithDeadline { chunks: Some(chunks), timer: Box::pin(sleep_until(deadline)), limit })
}

/// The stream [`stream_with_deadline`] returns.
struct WithDeadline {
    /// `None` once the stream has ended or timed out.
    chunks: Option<ChunkStream>,
    timer: Pin<Box<Sleep>>,
    limit: Duration,
}

impl Stream for WithDeadline {
    type Item = Result<StreamChunk, LoomError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(chunks) = this.chunks.as_mut() else { return Poll::Ready(None) };
        // Chunks that are ready win over the timer, as they reached Loom in time.
        if let Poll::Ready(next) = chunks.as_mut().poll_next(cx) {
            if next.is_none() {
                this.chunks = None;
            }
            return Poll::Ready(next);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.chunks = None;
                Poll::Ready(Some(Err(request_timeout_error(this.limit))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_stream_past_its_deadline_ends_with_a_timeout() {
        let endless: ChunkStream =
            Box::pin(futures_util::stream::pending::<Result<StreamChunk, LoomError>>());
        let limit = Duration::from_secs(3);
        let mut limited = stream_with_deadline(endless, Instant::now() + limit, limit);
        let error = limited.next().await.expect("an item").expect_err("a timeout");
        assert_eq!(error.kind, ErrorKind::Timeout);
        assert_eq!(error.code.as_deref(), Some("request_timeout"));
        assert!(limited.next().await.is_none());
    }
}
