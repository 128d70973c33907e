//! A cached answer as stored: the provider's whole answer and what it was an answer to.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One stored answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedAnswer {
    /// The answer's `chat.completion` JSON as the provider gave it, nulls and unknown fields
    /// included (a streamed answer assembled whole), kept as text: an entry takes about
    /// its JSON's size in memory.
    pub response: Box<RawValue>,
    /// The provider (as configured) that answered.
    pub provider: String,
    /// The namespace it was stored in.
    pub namespace: String,
    /// The model the client asked for.
    pub model: String,
    /// The last user turn, for the question guard of semantic lookups.
    pub question: Option<String>,
    /// When it was stored, in seconds since the Unix epoch.
    pub stored_at: u64,
    /// When it stops being served, in milliseconds since the Unix epoch (instances that
    /// read it from a shared store keep it no longer).
    pub expires_at_ms: u64,
}

impl CachedAnswer {
    /// About the bytes the entry takes: its JSON and its strings.
    pub fn size(&self) -> usize {
        let strings = self.provider.len() + self.namespace.len() + self.model.len();
        self.response.get().len() + strings + self.question.as_ref().map_or(0, String::len)
    }

    /// The entry as stored in a shared backend.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data (strings, numbers, maps) cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// An entry read back from a shared backend; `None` for anything malformed (a backend's
    /// content is not trusted).
    pub fn from_bytes(bytes: &[u8]) -> Option<CachedAnswer> {
        serde_json::from_slice(bytes).ok()
    }
}
