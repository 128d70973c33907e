//! The semantic cache's embedders: the local model of `ai_gateway.embedder`, on its bounded
//! pool, reusing the embedding the security checks made of the same text; or a provider's
//! embeddings endpoint (`ai_gateway.cache.semantic.embedder`).

use std::sync::Arc;

use loom_cache::{EmbedFuture, QuestionEmbedder};
use loom_core::embeddings::{EmbeddingInput, EmbeddingVector, EmbeddingsRequest};
use loom_core::{LlmRequest, RequestContext, ResponsePayload};
use loom_providers::Provider;
use loom_tokens::embed::{EmbedPool, PromptEmbedding};
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

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

/// Questions embedded by a provider's embeddings endpoint, a bounded number at a time.
pub struct ProviderEmbedder {
    provider: Provider,
    model: String,
    dimensions: usize,
    in_flight: Arc<Semaphore>,
}

impl ProviderEmbedder {
    /// Embeds with `model` on `provider`, expecting `dimensions`-long vectors, at most
    /// `max_concurrent` calls at once.
    pub fn new(
        provider: Provider,
        model: String,
        dimensions: usize,
        max_concurrent: usize,
    ) -> ProviderEmbedder {
        ProviderEmbedder { provider, model, dimensions, in_flight: Arc::new(Semaphore::new(max_concurrent)) }
    }
}

impl QuestionEmbedder for ProviderEmbedder {
    fn embed(&self, text: &str, _extensions: &http::Extensions) -> Option<EmbedFuture> {
        // Every call in flight: the request misses rather than queues.
        let permit = self.in_flight.clone().try_acquire_owned().ok()?;
        let request = LlmRequest::embeddings(
            RequestContext::new("cache-embedding"),
            EmbeddingsRequest {
                model: self.model.clone(),
                input: EmbeddingInput::Text(text.to_owned()),
                encoding_format: None,
                dimensions: None,
                user: None,
                extra: serde_json::Map::new(),
            },
        );
        let (mut provider, dimensions) = (self.provider.clone(), self.dimensions);
        Some(Box::pin(async move {
            let _permit = permit;
            let response = provider.ready().await.ok()?.call(request).await.ok()?;
            let ResponsePayload::Embeddings(embeddings) = response.payload else { return None };
            let EmbeddingVector::Float(values) = &embeddings.data.first()?.embedding else { return None };
            unit_vector(values, dimensions)
        }))
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }
}

/// `values` scaled to length 1, if they are `dimensions` finite numbers, not all zero (a
/// provider's answer is not trusted).
fn unit_vector(values: &[f64], dimensions: usize) -> Option<Arc<[f32]>> {
    if values.len() != dimensions || values.iter().any(|value| !value.is_finite()) {
        return None;
    }
    let norm = values.iter().map(|value| value * value).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return None;
    }
    Some(values.iter().map(|value| (value / norm) as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_providers_vector_is_checked_and_scaled_to_unit_length() {
        let unit = unit_vector(&[3.0, 4.0], 2).unwrap();
        assert_eq!(&unit[..], &[0.6, 0.8]);
        assert!(unit_vector(&[3.0, 4.0], 3).is_none());
        assert!(unit_vector(&[0.0, 0.0], 2).is_none());
        assert!(unit_vector(&[f64::NAN, 1.0], 2).is_none());
    }
}
