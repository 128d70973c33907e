//! Semantic lookups: the embedding of a request's last user turn, searched among the
//! stored questions of its partition (everything else the same), served only when the
//! similarity reaches the route's threshold and [`same_question`](crate::same_question())
//! agrees the two ask the same thing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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

/// The semantic side of a [`ResponseCache`](crate::ResponseCache).
pub(crate) struct Semantic {
    pub(crate) index: SemanticIndex,
    pub(crate) embedder: Arc<dyn QuestionEmbedder>,
    /// Longest an embedding may take before the request misses.
    pub(crate) timeout: Duration,
    /// Longest question embedded, in bytes.
    pub(crate) max_question_bytes: usize,
}

impl Semantic {
    /// An empty index for `embedder`'s vectors, holding at most `max_entries`.
    pub(crate) fn new(
        embedder: Arc<dyn QuestionEmbedder>,
        max_entries: usize,
        timeout: Duration,
        max_question_bytes: usize,
    ) -> Semantic {
        let index = SemanticIndex::new(IndexOptions::new(embedder.dimensions(), max_entries));
        Semantic { index, embedder, timeout, max_question_bytes }
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
