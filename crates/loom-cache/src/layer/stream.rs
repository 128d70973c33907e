//! A streamed answer passed on chunk by chunk and stored once it has ended well.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use loom_core::{ChunkStream, LoomError, StreamChunk};

use crate::assemble::Assembler;
use crate::cache::ResponseCache;
use crate::config::CachePolicy;
use crate::key::RequestKey;

/// The stream the client gets on a miss: the provider's, with each chunk also given to an
/// assembler; stored when the provider's stream ends without an error. A client that
/// leaves early drops it before the end: nothing is stored.
pub(super) struct StoringStream {
    pub(super) inner: ChunkStream,
    pub(super) pending: Option<Pending>,
}

pub(super) struct Pending {
    pub(super) assembler: Assembler,
    pub(super) cache: Arc<ResponseCache>,
    pub(super) key: RequestKey,
    pub(super) policy: CachePolicy,
    pub(super) provider: Arc<str>,
}

impl Stream for StoringStream {
    type Item = Result<StreamChunk, LoomError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(pending) = self.pending.as_mut() {
                    pending.assembler.add(chunk);
                }
            }
            Poll::Ready(Some(Err(_))) => self.pending = None,
            Poll::Ready(None) => {
                if let Some(pending) = self.pending.take()
                    && let Some(response) = pending.assembler.finish()
                    && let Ok(json) = serde_json::value::to_raw_value(&response)
                {
                    pending.cache.keep(&pending.key, &response, json, &pending.provider, &pending.policy);
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}
