//! The request extension that carries the prompt's embedding from the guard to the cache.

use std::sync::Arc;

use super::vector::Embedding;

/// The embedding of a request's last user turn, kept in the request's extensions so
/// that it is computed once (by the guard) and reused (by the semantic cache). It
/// carries the xxh3-64 hash of the exact text embedded: a consumer that would embed
/// different text (after its own normalisation, say) checks [`PromptEmbedding::is_of`]
/// and embeds its own instead of trusting a vector of something else.
#[derive(Debug, Clone)]
pub struct PromptEmbedding {
    embedding: Arc<Embedding>,
    text_hash: u64,
}

impl PromptEmbedding {
    /// The embedding of `text`.
    pub fn new(text: &str, embedding: Arc<Embedding>) -> PromptEmbedding {
        PromptEmbedding { embedding, text_hash: Self::hash(text) }
    }

    /// The vector.
    pub fn embedding(&self) -> &Arc<Embedding> {
        &self.embedding
    }

    /// xxh3-64 of the text that was embedded.
    pub fn text_hash(&self) -> u64 {
        self.text_hash
    }

    /// Whether this is the embedding of exactly `text` (by hash).
    pub fn is_of(&self, text: &str) -> bool {
        self.text_hash == Self::hash(text)
    }

    /// The hash [`PromptEmbedding`] keeps of a text: xxh3-64 of its UTF-8 bytes.
    pub fn hash(text: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `http::Extensions::insert` asks of a type.
    fn request_extension<T: Clone + Send + Sync + 'static>() {}

    #[test]
    fn can_travel_in_request_extensions() {
        request_extension::<PromptEmbedding>();
    }

    #[test]
    fn recognises_exactly_the_text_it_embedded() {
        let prompt =
            PromptEmbedding::new("Is Python dynamically typed?", Arc::new(Embedding::new(vec![1.0])));
        assert!(prompt.is_of("Is Python dynamically typed?"));
        assert!(!prompt.is_of("Is Python dynamically typed? "));
        assert!(!prompt.is_of("is python dynamically typed?"));
        assert_eq!(prompt.text_hash(), xxhash_rust::xxh3::xxh3_64(b"Is Python dynamically typed?"));
        assert_eq!(prompt.embedding().as_slice(), [1.0]);
    }
}
