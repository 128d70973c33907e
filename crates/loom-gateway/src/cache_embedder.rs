//! The semantic cache's embedder: the local model of `ai_gateway.embedder`, on its bounded
//! pool, reusing the embedding the security checks made of the same text.

use std::sync::Arc;

use loom_cache::{EmbedFuture, QuestionEmbedder};
use loom_tokens::embed::{EmbedPool, PromptEmbedding};

/// Questions embedded on the local model's pool.
pub struct LocalEmbedder {
    pool: Arc<EmbedPool>,
}

impl LocalEmbedder {
    /// An embedder running on `pool`.
    pub fn new(pool: Arc<EmbedPool>) -> LocalEmbedder {
        LocalEmbedder { pool }
    }
}

impl QuestionEmbedder for LocalEmbedder {
    fn embed(&self, text: &str, extensions: &http::Extensions) -> Option<EmbedFuture> {
        if let Some(known) = extensions.get::<PromptEmbedding>().filter(|known| known.is_of(text)) {
            let vector: Arc<[f32]> = Arc::from(known.embedding().as_slice());
            return Some(Box::pin(std::future::ready(Some(vector))));
        }
        // A full queue refuses at once: the request misses rather than waits.
        let embedding = self.pool.try_embed(text).ok()?;
        Some(Box::pin(async move { embedding.await.ok().map(|embedding| Arc::from(embedding.as_slice())) }))
    }

    fn dimensions(&self) -> usize {
        self.pool.embedder().dims()
    }
}
