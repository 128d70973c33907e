//! The service of [`CacheLayer`](super::CacheLayer).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderValue;
use loom_core::{
    CACHE_STATUS_HEADER, CacheDirectives, ChatAnswer, ChatRequest, ClientFormat, LlmRequest, LlmResponse,
    LoomError, RequestPayload, ResponsePayload,
};
use tower::Service;

use super::stream::{Pending, StoringStream};
use crate::assemble::Assembler;
use crate::cache::{Lookup, ResponseCache};
use crate::config::CachePolicy;
use crate::key::{RequestKey, namespace, request_key};
use crate::replay;
use crate::status::CacheStatus;

/// The service [`CacheLayer`](super::CacheLayer) produces.
#[derive(Clone)]
pub struct CacheService<S> {
    pub(super) inner: S,
    pub(super) cache: Arc<ResponseCache>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

/// What to do with a request.
enum Plan {
    /// Not the cache's business (not a chat request, or caching is off on its route).
    PassThrough,
    /// Go on without looking up or storing.
    Bypass,
    /// Look up (unless `refresh`), and store a good answer (unless `store` is false).
    Cache { key: RequestKey, policy: CachePolicy, refresh: bool, store: bool },
}

impl<S> CacheService<S> {
    fn plan(&self, request: &mut LlmRequest) -> Plan {
        let RequestPayload::Chat(chat) = &mut request.payload else { return Plan::PassThrough };
        let context = &request.context;
        let policy = self.cache.policy(context.route.as_deref());
        if !policy.enabled {
            return Plan::PassThrough;
        }
        let directives = context.extensions.get::<CacheDirectives>().copied().unwrap_or_default();
        if directives.bypass || !cacheable(chat, policy, context.client_format) {
            return Plan::Bypass;
        }
        let namespace = namespace(self.cache.config().namespace, &context.identity);
        let Some(key) = request_key(namespace, context.route.as_deref().unwrap_or(""), chat) else {
            return Plan::Bypass;
        };
        Plan::Cache { key, policy: policy.clone(), refresh: directives.no_cache, store: !directives.no_store }
    }
}

/// Whether answers to `chat` may be served from the cache and stored in it.
fn cacheable(chat: &ChatRequest, policy: &CachePolicy, format: ClientFormat) -> bool {
    // A Responses request may be passed through to a provider untranslated, its answer
    // then not a chat answer; log probabilities describe one sampling, and a stream
    // replayed from a stored answer could not carry them.
    let sampled = chat.temperature.is_some_and(|temperature| temperature > 0.0);
    format != ClientFormat::Responses && chat.logprobs != Some(true) && (policy.sampled || !sampled)
}

impl<S> Service<LlmRequest> for CacheService<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: LlmRequest) -> BoxFuture {
        let (mut key, policy, refresh, store) = match self.plan(&mut request) {
            Plan::PassThrough => return Box::pin(self.inner.call(request)),
            Plan::Bypass => {
                self.cache.count(CacheStatus::Bypass);
                return with_status(self.inner.call(request), CacheStatus::Bypass);
            }
            Plan::Cache { key, policy, refresh, store } => (key, policy, refresh, store),
        };
        let stream = matches!(&request.payload, RequestPayload::Chat(chat) if chat.is_stream());
        let cache = self.cache.clone();
        // The readied service makes the call; this one keeps a fresh clone.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        Box::pin(async move {
            let status = if refresh {
                CacheStatus::Miss
            } else {
                let mut found = cache.find(&key).await;
                if matches!(found, Lookup::Miss(CacheStatus::Miss)) && policy.semantic && cache.has_semantic()
                {
                    found = cache
                        .find_similar(&mut key, policy.similarity_threshold, &request.context.extensions)
                        .await;
                }
                match found {
                    Lookup::Hit { answer, status, similarity } => {
                        let request_id = &request.context.request_id;
                        let payload = if stream {
                            replay::stream(&answer.response, request_id).map(ResponsePayload::Stream)
                        } else {
                            replay::whole(&answer.response, request_id).map(ResponsePayload::Chat)
                        };
                        match payload {
                            Some(payload) => {
                                cache.count(status);
                                let mut response = LlmResponse::new(answer.provider.as_str(), payload);
                                set_status(&mut response, status, similarity);
                                return Ok(response);
                            }
                            // A shared store's entry that is no answer: the provider answers.
                            None => CacheStatus::Error,
                        }
                    }
                    Lookup::Miss(status) => status,
                }
            };
            cache.count(status);
            let mut response = inner.call(request).await?;
            set_status(&mut response, status, None);
            if store {
                keep(&cache, key, policy, &mut response);
            }
            Ok(response)
        })
    }
}

/// Stores a whole answer now, and a streamed one when its stream has ended well.
fn keep(cache: &Arc<ResponseCache>, key: RequestKey, policy: CachePolicy, response: &mut LlmResponse) {
    match &mut response.payload {
        ResponsePayload::Chat(answer) => {
            let json = match answer {
                ChatAnswer::Wire(wire) => serde_json::from_slice(wire.json()).ok(),
                ChatAnswer::Typed(typed) => serde_json::value::to_raw_value(typed).ok(),
            };
            if let (Some(json), Ok(typed)) = (json, answer.clone().into_typed()) {
                cache.keep(&key, &typed, json, &response.provider, &policy);
            }
        }
        ResponsePayload::Stream(stream) => {
            let inner = std::mem::replace(stream, Box::pin(futures_util::stream::empty()));
            let max_bytes = usize::try_from(cache.config().max_entry_bytes).unwrap_or(usize::MAX);
            let pending = Pending {
                assembler: Assembler::new(max_bytes),
                cache: cache.clone(),
                key,
                policy,
                provider: response.provider.clone(),
            };
            *stream = Box::pin(StoringStream { inner, pending: Some(pending) });
        }
        ResponsePayload::Embeddings(_) | ResponsePayload::TokenCount(_) => {}
    }
}

fn with_status<F>(call: F, status: CacheStatus) -> BoxFuture
where
    F: Future<Output = Result<LlmResponse, LoomError>> + Send + 'static,
{
    Box::pin(async move {
        let mut response = call.await?;
        set_status(&mut response, status, None);
        Ok(response)
    })
}

fn set_status(response: &mut LlmResponse, status: CacheStatus, similarity: Option<f32>) {
    response.headers.insert(CACHE_STATUS_HEADER, HeaderValue::from_static(status.header()));
    if let Some(similarity) = similarity
        && let Ok(value) = HeaderValue::from_str(&format!("{similarity:.4}"))
    {
        response.headers.insert(SIMILARITY_HEADER, value);
    }
}

/// The header with a semantic hit's cosine similarity.
pub const SIMILARITY_HEADER: &str = "x-loom-cache-similarity";
