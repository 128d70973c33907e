//! Embeddings request and response.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An embeddings request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// Embedding model.
    pub model: String,
    /// Text or token ids to embed.
    pub input: EmbeddingInput,
    /// `float` or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// Output dimensions, for models that can shorten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Fields Loom does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What to embed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One string.
    Text(String),
    /// Several strings.
    Texts(Vec<String>),
    /// One token-id sequence.
    Tokens(Vec<u32>),
    /// Several token-id sequences.
    TokenBatches(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// Number of inputs to embed.
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Text(_) | EmbeddingInput::Tokens(_) => 1,
            EmbeddingInput::Texts(texts) => texts.len(),
            EmbeddingInput::TokenBatches(batches) => batches.len(),
        }
    }

    /// Whether there is nothing to embed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An embeddings answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// Always `list`.
    #[serde(default = "list_object")]
    pub object: String,
    /// One embedding per input.
    pub data: Vec<Embedding>,
    /// Model that answered.
    pub model: String,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<EmbeddingsUsage>,
    /// Fields Loom does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn list_object() -> String {
    "list".to_owned()
}

/// One embedding vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// Always `embedding`.
    #[serde(default = "embedding_object")]
    pub object: String,
    /// Position of the input it embeds.
    pub index: u32,
    /// Floats, or base64 when `encoding_format` was `base64`.
    pub embedding: EmbeddingVector,
}

fn embedding_object() -> String {
    "embedding".to_owned()
}

/// An embedding as floats or base64 of little-endian f32s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// Float values (f64 keeps the provider's digits exactly).
    Float(Vec<f64>),
    /// Base64 string.
    Base64(String),
}

/// Token usage of an embeddings call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsUsage {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Same as `prompt_tokens`.
    pub total_tokens: u64,
}
