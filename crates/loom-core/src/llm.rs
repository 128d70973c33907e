//! The request and response types every pipeline stage speaks.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;

use crate::chunk::ChatChunk;
use crate::context::RequestContext;
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::LoomError;
use crate::request::ChatRequest;
use crate::response::ChatResponse;

/// A stream of chunks; an `Err` item ends the stream with that error.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, LoomError>> + Send>>;

/// A canonical request plus its context.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    /// Facts about the request.
    pub context: RequestContext,
    /// What is asked.
    pub payload: RequestPayload,
}

/// The operation a request asks for.
// Moved once per request; boxing the large variant would cost an allocation instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum RequestPayload {
    /// Chat completion, whole or streamed.
    Chat(ChatRequest),
    /// Embeddings.
    Embeddings(EmbeddingsRequest),
}

impl RequestPayload {
    /// The model the client asked for.
    pub fn model(&self) -> &str {
        match self {
            RequestPayload::Chat(chat) => &chat.model,
            RequestPayload::Embeddings(embeddings) => &embeddings.model,
        }
    }
}

impl LlmRequest {
    /// A chat request with a fresh context.
    pub fn chat(context: RequestContext, chat: ChatRequest) -> Self {
        LlmRequest { context, payload: RequestPayload::Chat(chat) }
    }

    /// An embeddings request with a fresh context.
    pub fn embeddings(context: RequestContext, embeddings: EmbeddingsRequest) -> Self {
        LlmRequest { context, payload: RequestPayload::Embeddings(embeddings) }
    }
}

/// A canonical answer and the provider that gave it.
pub struct LlmResponse {
    /// Name of the provider (as configured) that answered.
    pub provider: Arc<str>,
    /// The answer.
    pub payload: ResponsePayload,
}

/// The answer: whole, streamed, or embeddings.
#[allow(clippy::large_enum_variant)]
pub enum ResponsePayload {
    /// A whole chat answer.
    Chat(ChatResponse),
    /// A streamed chat answer.
    Stream(ChunkStream),
    /// An embeddings answer.
    Embeddings(EmbeddingsResponse),
}

impl fmt::Debug for LlmResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let payload = match &self.payload {
            ResponsePayload::Chat(chat) => format!("Chat({})", chat.id),
            ResponsePayload::Stream(_) => "Stream".to_owned(),
            ResponsePayload::Embeddings(embeddings) => {
                format!("Embeddings({} vectors)", embeddings.data.len())
            }
        };
        f.debug_struct("LlmResponse").field("provider", &self.provider).field("payload", &payload).finish()
    }
}
