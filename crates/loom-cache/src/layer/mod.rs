//! [`CacheLayer`]: answers a request from the [`ResponseCache`] when
//! it can, and stores good answers of the provider when it cannot.
//!
//! For a chat request on a route where caching is on:
//!
//! 1. a client that sent `x-loom-cache: bypass`, or a request that is not cacheable (a
//!    `temperature` above 0 where the route does not allow it, a Responses API request),
//!    goes straight on (`x-loom-cache: bypass`);
//! 2. unless the client sent `Cache-Control: no-cache`, the exact entry of the request is
//!    served (`x-loom-cache: hit`), whole or as a stream, in the client's format (the
//!    front door writes it), with a fresh id;
//! 3. otherwise the provider answers (`x-loom-cache: miss`); a complete answer that
//!    stopped on its own is stored, unless the client sent `Cache-Control: no-store`. A
//!    streamed answer is stored when its stream ends, from the chunks the client got:
//!    the client's stream is never held back.
//!
//! ```
//! use std::sync::Arc;
//!
//! use loom_cache::{CacheConfig, CacheLayer, ResponseCache};
//! use loom_core::{ChatRequest, ChatResponse, LlmRequest, LlmResponse, LoomError, RequestContext, ResponsePayload};
//! use serde_json::json;
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let answer: ChatResponse = serde_json::from_value(json!({
//!     "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
//!     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}]
//! }))?;
//! // Stands for the router and the providers.
//! let provider = service_fn(move |_request: LlmRequest| {
//!     let answer = answer.clone();
//!     async move { Ok::<_, LoomError>(LlmResponse::new("openai", ResponsePayload::Chat(answer.into()))) }
//! });
//! let cache = Arc::new(ResponseCache::new(&CacheConfig { enabled: true, ..CacheConfig::default() }, []));
//! let mut service = ServiceBuilder::new().layer(CacheLayer::new(cache.clone())).service(provider);
//!
//! let chat: ChatRequest = serde_json::from_value(json!({
//!     "model": "gpt-4o", "messages": [{"role": "user", "content": "The capital of France?"}]
//! }))?;
//! for (request_id, expected) in [("req-1", "miss"), ("req-2", "hit")] {
//!     let request = LlmRequest::chat(RequestContext::new(request_id), chat.clone());
//!     let response = service.ready().await?.call(request).await?;
//!     assert_eq!(response.headers["x-loom-cache"], expected);
//! }
//! assert_eq!(cache.stats().hits, 1);
//! # Ok(())
//! # }
//! ```

mod service;
mod stream;

use std::sync::Arc;

use tower::Layer;

pub use service::CacheService;

use crate::cache::ResponseCache;

/// The layer that puts a [`ResponseCache`] in front of a service.
#[derive(Clone)]
pub struct CacheLayer {
    cache: Arc<ResponseCache>,
}

impl CacheLayer {
    /// A layer serving from and storing into `cache`.
    pub fn new(cache: Arc<ResponseCache>) -> CacheLayer {
        CacheLayer { cache }
    }

    /// The cache (for the admin API).
    pub fn cache(&self) -> &Arc<ResponseCache> {
        &self.cache
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> CacheService<S> {
        CacheService { inner, cache: self.cache.clone() }
    }
}
