//! The `openai` provider: OpenAI and any OpenAI-compatible server.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use http::Uri;
use http::header::AUTHORIZATION;
use loom_core::{
    ChatChunk, ChatRequest, ChatResponse, ChunkStream, EmbeddingsRequest, EmbeddingsResponse, LlmRequest,
    LlmResponse, LoomError, RequestPayload, ResponsePayload,
};
use tokio::time::Instant;
use tower::Service;

use crate::client::build_client;
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::upstream::{Upstream, base_headers, parse_error_body};

/// Default base URL of the OpenAI API.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// A `tower::Service` that sends canonical requests to an OpenAI-format upstream.
#[derive(Clone)]
pub struct OpenAiProvider {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Upstream,
    chat_uri: Uri,
    embeddings_uri: Uri,
}

impl OpenAiProvider {
    /// Builds the provider from its config entry.
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let base = config.base_url.as_deref().unwrap_or(OPENAI_BASE_URL).trim_end_matches('/');
        let uri = |path: &str| {
            format!("{base}{path}").parse::<Uri>().map_err(|error| ProviderError::Config {
                provider: config.name.clone(),
                reason: format!("base_url `{base}` is not a valid URL: {error}"),
            })
        };
        let auth = config.api_key.as_ref().map(|key| (AUTHORIZATION, format!("Bearer {}", key.expose())));
        let headers = base_headers(&config.name, auth, &config.headers)?;
        let client = build_client(&config.name, config.timeouts.connect, config.pool_max_idle_per_host)?;
        Ok(OpenAiProvider {
            inner: Arc::new(Inner {
                upstream: Upstream::new(
                    Arc::from(config.name.as_str()),
                    client,
                    headers,
                    config.timeouts,
                    config.api_key.clone(),
                ),
                chat_uri: uri("/chat/completions")?,
                embeddings_uri: uri("/embeddings")?,
            }),
        })
    }

    /// The provider's configured name.
    pub fn name(&self) -> &str {
        &self.inner.upstream.name
    }
}

impl Inner {
    async fn call(self: Arc<Self>, request: LlmRequest) -> Result<LlmResponse, ProviderError> {
        let payload = match request.payload {
            RequestPayload::Chat(chat) if chat.is_stream() => {
                ResponsePayload::Stream(self.stream(&chat).await?)
            }
            RequestPayload::Chat(chat) => ResponsePayload::Chat(self.chat(&chat).await?),
            RequestPayload::Embeddings(embeddings) => {
                ResponsePayload::Embeddings(self.embeddings(&embeddings).await?)
            }
        };
        Ok(LlmResponse { provider: self.upstream.name.clone(), payload })
    }

    fn encode<T: serde::Serialize>(&self, body: &T) -> Result<Vec<u8>, ProviderError> {
        serde_json::to_vec(body).map_err(|error| ProviderError::Config {
            provider: self.upstream.name.to_string(),
            reason: format!("request could not be encoded: {error}"),
        })
    }

    async fn chat(&self, chat: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let deadline = self.upstream.deadline();
        let response = self.upstream.post_json(&self.chat_uri, self.encode(chat)?, deadline).await?;
        let body = self.upstream.read_body(response, deadline).await?;
        self.upstream.decode(&body)
    }

    async fn embeddings(&self, embeddings: &EmbeddingsRequest) -> Result<EmbeddingsResponse, ProviderError> {
        let deadline = self.upstream.deadline();
        let response =
            self.upstream.post_json(&self.embeddings_uri, self.encode(embeddings)?, deadline).await?;
        let body = self.upstream.read_body(response, deadline).await?;
        self.upstream.decode(&body)
    }

    async fn stream(&self, chat: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let deadline: Instant = self.upstream.deadline();
        let response = self.upstream.post_json(&self.chat_uri, self.encode(chat)?, deadline).await?;
        let upstream = self.upstream.clone();
        let events = Box::pin(self.upstream.events(response, deadline));
        let chunks = futures_util::stream::unfold(Some((events, upstream)), |state| async move {
            let (mut events, upstream) = state?;
            loop {
                let item = match events.next().await {
                    None => Err(upstream.truncated()),
                    Some(Err(error)) => Err(error),
                    Some(Ok(event)) if event.data == "[DONE]" => return None,
                    Some(Ok(event)) if event.data.trim().is_empty() => continue,
                    Some(Ok(event)) => decode_chunk(&upstream, event.data.as_bytes()),
                };
                return match item {
                    Ok(chunk) => Some((Ok(chunk), Some((events, upstream)))),
                    Err(error) => Some((Err(LoomError::from(error)), None)),
                };
            }
        });
        Ok(Box::pin(chunks))
    }
}

/// Decodes one stream event: a chunk, or an in-band `{"error": ...}` object.
fn decode_chunk(upstream: &Upstream, data: &[u8]) -> Result<ChatChunk, ProviderError> {
    match serde_json::from_slice::<ChatChunk>(data) {
        Ok(chunk) => Ok(chunk),
        Err(decode_error) => {
            let is_error = serde_json::from_slice::<serde_json::Value>(data)
                .map(|value| value.get("error").is_some())
                .unwrap_or(false);
            if is_error {
                let (error_type, code, message) = parse_error_body(data);
                Err(ProviderError::Status {
                    provider: upstream.name.to_string(),
                    status: 502,
                    error_type,
                    code,
                    message,
                    retry_after: None,
                })
            } else {
                Err(ProviderError::InvalidResponse {
                    provider: upstream.name.to_string(),
                    reason: format!("unexpected stream chunk: {decode_error}"),
                })
            }
        }
    }
}

impl Service<LlmRequest> for OpenAiProvider {
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.call(request).await.map_err(LoomError::from) })
    }
}
