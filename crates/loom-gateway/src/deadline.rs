//! `server.request_timeout`: one deadline for the whole request, streams included.

use std::time::Duration;

use futures_util::StreamExt;
use loom_core::{ChunkStream, ErrorKind, LoomError};
use tokio::time::{Instant, sleep_until};

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
    let timer = Box::pin(sleep_until(deadline));
    Box::pin(futures_util::stream::unfold(Some((chunks, timer)), move |state| async move {
        let (mut chunks, mut timer) = state?;
        tokio::select! {
            biased;
            next = chunks.next() => next.map(|item| (item, Some((chunks, timer)))),
            () = &mut timer => Some((Err(request_timeout_error(limit)), None)),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use loom_core::StreamChunk;

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
