//! The request and response types every pipeline stage speaks.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::answer::ChatAnswer;
use crate::context::RequestContext;
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::error::LoomError;
use crate::request::ChatRequest;
use crate::stream_chunk::StreamChunk;

/// A stream of chunks; an `Err` item ends the stream with that error.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<StreamChunk, LoomError>> + Send>>;

/// `chunks`, running `finish` once when the stream ends or is dropped (a client that
/// went away), so stages can time or account for streams without buffering them.
pub fn on_stream_end(chunks: ChunkStream, finish: impl FnOnce() + Send + 'static) -> ChunkStream {
    Box::pin(OnEnd { inner: chunks, finish: Some(Box::new(finish)) })
}

struct OnEnd {
    inner: ChunkStream,
    finish: Option<Box<dyn FnOnce() + Send>>,
}

impl Stream for OnEnd {
    type Item = Result<StreamChunk, LoomError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = polled
            && let Some(finish) = self.finish.take()
        {
            finish();
        }
        polled
    }
}

impl Drop for OnEnd {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish();
        }
    }
}

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
#[derive(Debug, Clone)]
pub enum RequestPayload {
    /// Chat completion, whole or streamed (boxed: every stage moves the request, and a
    /// small request moves cheaply).
    Chat(Box<ChatRequest>),
    /// Embeddings.
    Embeddings(EmbeddingsRequest),
    /// How many input tokens a chat request would take (Anthropic's `count_tokens`);
    /// nothing is generated.
    CountTokens(Box<ChatRequest>),
}

impl RequestPayload {
    /// The model the client asked for.
    pub fn model(&self) -> &str {
        match self {
            RequestPayload::Chat(chat) | RequestPayload::CountTokens(chat) => &chat.model,
            RequestPayload::Embeddings(embeddings) => &embeddings.model,
        }
    }
}

impl LlmRequest {
    /// A chat request with a fresh context.
    pub fn chat(context: RequestContext, chat: ChatRequest) -> Self {
        LlmRequest { context, payload: RequestPayload::Chat(Box::new(chat)) }
    }

    /// An embeddings request with a fresh context.
    pub fn embeddings(context: RequestContext, embeddings: EmbeddingsRequest) -> Self {
        LlmRequest { context, payload: RequestPayload::Embeddings(embeddings) }
    }

    /// A token-count request with a fresh context.
    pub fn count_tokens(context: RequestContext, chat: ChatRequest) -> Self {
        LlmRequest { context, payload: RequestPayload::CountTokens(Box::new(chat)) }
    }
}

/// A canonical answer and the provider that gave it.
pub struct LlmResponse {
    /// Name of the provider (as configured) that answered.
    pub provider: Arc<str>,
    /// The answer.
    pub payload: ResponsePayload,
    /// HTTP headers the client gets with the answer, set by stages (e.g. rate-limit state).
    pub headers: http::HeaderMap,
}

impl LlmResponse {
    /// `provider`'s answer, with no extra headers.
    pub fn new(provider: impl Into<Arc<str>>, payload: ResponsePayload) -> Self {
        LlmResponse { provider: provider.into(), payload, headers: http::HeaderMap::new() }
    }
}

/// The answer: whole, streamed, or embeddings.
pub enum ResponsePayload {
    /// A whole chat answer.
    Chat(ChatAnswer),
    /// A streamed chat answer.
    Stream(ChunkStream),
    /// An embeddings answer.
    Embeddings(EmbeddingsResponse),
    /// The answer to a token-count request.
    TokenCount(TokenCount),
}

/// How many input tokens a chat request takes.
#[derive(Debug)]
pub struct TokenCount {
    /// The provider's count; `None` from a provider that cannot count, for a stage that
    /// has a tokenizer to fill in.
    pub input_tokens: Option<u64>,
    /// The request as the provider got it (its model mapped), to count locally.
    pub request: Box<ChatRequest>,
}

impl TokenCount {
    /// The answer of a provider that cannot count `request`: a later stage counts it.
    pub fn uncounted(request: Box<ChatRequest>) -> Self {
        TokenCount { input_tokens: None, request }
    }
}

impl fmt::Debug for LlmResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let payload = match &self.payload {
            ResponsePayload::Chat(chat) => format!("Chat({})", chat.id()),
            ResponsePayload::Stream(_) => "Stream".to_owned(),
            ResponsePayload::Embeddings(embeddings) => {
                format!("Embeddings({} vectors)", embeddings.data.len())
            }
            ResponsePayload::TokenCount(count) => format!("TokenCount({:?})", count.input_tokens),
        };
        f.debug_struct("LlmResponse").field("provider", &self.provider).field("payload", &payload).finish()
    }
}
