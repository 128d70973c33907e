//! # loom-core
//!
//! The canonical model every Loom crate speaks: an OpenAI-shaped chat request and
//! response (whole and streamed), embeddings, token usage, the per-request
//! [`RequestContext`], and the [`LoomError`] each pipeline stage returns.
//!
//! Fields a client sends that Loom does not model are kept in `extra` maps, so a
//! request passes through to an OpenAI-compatible provider without loss. Reasoning
//! blocks with signatures and Anthropic `cache_control` markers are typed, so other
//! formats can round-trip them.
//!
//! ```
//! use loom_core::{ChatRequest, Message, Role};
//!
//! let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"seed":1,"store":true}"#;
//! let request: ChatRequest = serde_json::from_str(body).unwrap();
//! assert_eq!(request.messages[0], Message::text(Role::User, "Hi"));
//! assert_eq!(request.extra["store"], true); // unknown fields are kept
//! assert_eq!(serde_json::to_string(&request).unwrap(), r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"seed":1,"store":true}"#);
//! ```

pub mod answer;
pub mod chunk;
pub mod context;
pub mod embeddings;
pub mod error;
pub mod file;
pub mod json;
pub mod llm;
pub mod message;
pub mod request;
pub mod response;
pub mod scrub;
pub mod secret;
pub mod stream_chunk;
pub mod tool;
pub mod usage;

pub use answer::{ChatAnswer, WireResponse};
pub use chunk::{ChatChunk, ChunkChoice, Delta};
pub use context::{
    CACHE_HIT, CACHE_SEMANTIC_HIT, CACHE_STATUS_HEADER, CacheDirectives, ClientFormat, GuardMarks, Identity,
    InputTokenEstimate, PresentedKey, RequestContext, UpstreamTime, served_from_cache,
};
pub use embeddings::{
    Embedding, EmbeddingInput, EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage,
};
pub use error::{ErrorKind, LoomError, MAX_RETRY_AFTER, UpstreamFailure};
pub use llm::{
    ChunkStream, LlmRequest, LlmResponse, RequestPayload, ResponsePayload, TokenCount, on_stream_end,
};
pub use message::{CacheControl, Content, ContentPart, Message, Role};
pub use request::{ChatRequest, ResponseFormat, Stop, StreamOptions, ThinkingConfig};
pub use response::{ChatResponse, Choice, FinishReason};
pub use scrub::Scrubber;
pub use secret::Secret;
pub use stream_chunk::{StreamChunk, WireChunk};
pub use tool::{FunctionCall, FunctionDefinition, Tool, ToolCall, ToolCallDelta, ToolChoice};
pub use usage::Usage;
