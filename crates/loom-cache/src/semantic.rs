//! Semantic lookups: the embedding of a request's last user turn, searched among the
//! stored questions of its partition (everything else the same), served only when the
//! similarity reaches the route's threshold and [`same_question`](crate::same_question())
//! agrees the two ask the same thing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use crate::key::{EntryId, PartitionKey};
use crate::semantic_index::{IndexOptions, SemanticIndex};

/// An embedding being computed; `None` when the embedder failed.
pub type EmbedFuture = Pin<Box<dyn Future<Output = Option<Arc<[f32]>>> + Send>>;

/// Turns a question into a unit-length vector: the local model, or a provider's embeddings
/// endpoint.
pub trait QuestionEmbedder: Send + Sync {
    /// Starts embedding `text`; `None` when the embedder is saturated (the request then
    /// misses rather than waits). `extensions` are the request's: an earlier stage may have
    /// embedded the same text already.
    fn embed(&self, text: &str, extensions: &http::Extensions) -> Option<EmbedFuture>;

    /// The length of its vectors.
    fn dimensions(&self) -> usize;
}

/// Candidates looked at per lookup: the nearest few, in case the nearest is refused by
/// the question guard and a farther one is the same question.
pub(crate) const CANDIDATES: usize = 4;

/// Changes waiting for the index's writer at most; past that a change is dropped (an
/// answer then stays exact-only, a stale id is dropped at its next lookup).
const MAX_PENDING_CHANGES: usize = 4096;

/// The semantic side of a [`ResponseCache`](crate::ResponseCache).
pub(crate) struct Semantic {
    pub(crate) index: Arc<SemanticIndex>,
    pub(crate) embedder: Arc<dyn QuestionEmbedder>,
    /// Longest an embedding may take before the request misses.
    pub(crate) timeout: Duration,
    /// Longest question embedded, in bytes.
    pub(crate) max_question_bytes: usize,
    /// Changes to the index, applied in order by one thread of their own: adding to a large
    /// partition can rebuild its graph, which must never hold up a front-door thread.
    changes: SyncSender<Change>,
    /// Changes dropped because the writer was behind.
    dropped: AtomicU64,
}

/// One change to the index.
pub(crate) enum Change {
    Insert(PartitionKey, EntryId, Arc<[f32]>),
    Remove(EntryId),
    Clear,
}

impl Semantic {
    /// An empty index for `embedder`'s vectors, holding at most `max_entries`, with its
    /// writer thread (which ends when the cache is dropped).
    pub(crate) fn new(
        embedder: Arc<dyn QuestionEmbedder>,
        max_entries: usize,
        timeout: Duration,
        max_question_bytes: usize,
    ) -> Semantic {
        let index = Arc::new(SemanticIndex::new(IndexOptions::new(embedder.dimensions(), max_entries)));
        let (changes, pending) = sync_channel(MAX_PENDING_CHANGES);
        let writer = index.clone();
        // Without its thread the index only ever misses: semantic lookups degrade to exact ones.
        let _ = std::thread::Builder::new()
            .name("loom-cache-index".into())
            .spawn(move || write_changes(&writer, &pending));
        Semantic { index, embedder, timeout, max_question_bytes, changes, dropped: AtomicU64::new(0) }
    }

    /// Queues `change` for the writer; drops it when the writer is behind.
    pub(crate) fn change(&self, change: Change) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.changes.try_send(change) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Changes dropped so far.
    pub(crate) fn dropped_changes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The embedding of `question`, or `None` when it is too long, the embedder is
    /// saturated or failed, or it took longer than the timeout.
    pub(crate) async fn embed(&self, question: &str, extensions: &http::Extensions) -> Option<Arc<[f32]>> {
        if question.len() > self.max_question_bytes {
            return None;
        }
        let embedding = self.embedder.embed(question, extensions)?;
        tokio::time::timeout(self.timeout, embedding).await.ok().flatten()
    }
}

fn write_changes(index: &SemanticIndex, pending: &Receiver<Change>) {
    while let Ok(change) = pending.recv() {
        match change {
            // A full index keeps the answer exact-only.
            Change::Insert(partition, id, vector) => drop(index.insert(partition, id, &vector)),
            Change::Remove(id) => drop(index.remove(&id)),
            Change::Clear => index.clear(),
        }
    }
}
