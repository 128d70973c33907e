//! The `gemini` (Google AI Studio) and `vertex` (Vertex AI) providers.

#[cfg(test)]
mod fuzz_tests;
pub mod request;
pub mod response;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use http::Uri;
use http::header::HeaderName;
use loom_core::{
    ChatRequest, ChatResponse, ChunkStream, Embedding, EmbeddingInput, EmbeddingVector, EmbeddingsRequest,
    EmbeddingsResponse, LlmRequest, LlmResponse, LoomError, RequestPayload, ResponsePayload, StreamChunk,
    TokenCount,
};
use serde_json::Map;
use tower::Service;

use crate::client::build_client;
use crate::error::ProviderError;
use crate::google_auth::TokenSource;
use crate::secrets::ProviderSecrets;
use crate::settings::GeminiSettings;
use crate::upstream::{Budget, Upstream, base_headers};

use self::response::StreamTranslator;
use self::wire::{
    BatchEmbedRequest, BatchEmbedResponse, EmbedContentRequest, GeminiContent, GenerateContentResponse, Part,
};

/// Default base URL of the Gemini API.
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// Prefix of tool-call ids Loom invents when Gemini sends none.
pub(crate) const SYNTHETIC_CALL_PREFIX: &str = "call_loom_";

/// A `tower::Service` for Gemini models, on Google AI Studio or Vertex AI.
#[derive(Clone)]
pub struct GeminiProvider {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Upstream,
    /// `.../models` (AI Studio) or `.../publishers/google/models` (Vertex).
    models_base: String,
    /// Vertex tokens; AI Studio sends its key as a fixed header.
    tokens: Option<TokenSource>,
}

impl GeminiProvider {
    /// Builds the provider (`gemini`, or `vertex` when `settings.vertex` is set).
    pub fn new(settings: GeminiSettings) -> Result<Self, ProviderError> {
        let config = &settings.upstream;
        let client = build_client(&config.name, config.timeouts.connect, config.pool_max_idle_per_host)?;
        let vertex_token = settings.vertex.as_ref().and_then(|vertex| vertex.access_token.as_ref());
        let secrets = ProviderSecrets::of(config.secrets().chain(vertex_token).cloned());
        let (models_base, auth, tokens) = if let Some(vertex) = &settings.vertex {
            let host = match vertex.location.as_str() {
                "global" => "https://aiplatform.googleapis.com".to_owned(),
                location => format!("https://{location}-aiplatform.googleapis.com"),
            };
            let base = config.base_url.as_deref().unwrap_or(&host).trim_end_matches('/').to_owned();
            let models_base = format!(
                "{base}/v1/projects/{}/locations/{}/publishers/google/models",
                vertex.project, vertex.location
            );
            let tokens = TokenSource::from_settings(&config.name, vertex, client.clone(), secrets.clone())?;
            (models_base, None, Some(tokens))
        } else {
            let base = config.base_url.as_deref().unwrap_or(GEMINI_BASE_URL).trim_end_matches('/');
            let base = if base.ends_with("/v1beta") || base.ends_with("/v1") {
                base.to_owned()
            } else {
                format!("{base}/v1beta")
            };
            let auth = config
                .api_key
                .as_ref()
                .map(|key| (HeaderName::from_static("x-goog-api-key"), key.expose().to_owned()));
            (format!("{base}/models"), auth, None)
        };
        let headers = base_headers(&config.name, auth, &config.headers)?;
        Ok(GeminiProvider {
            inner: Arc::new(Inner {
                upstream: Upstream::for_provider(config, client, headers, secrets),
                models_base,
                tokens,
            }),
        })
    }

    /// The provider's configured name.
    pub fn name(&self) -> &str {
        &self.inner.upstream.name
    }

    /// The upstream and its `GET .../models` URL (without a query); `None` on Vertex AI,
    /// whose publisher model list Loom does not fetch.
    pub(crate) fn model_list(&self) -> Option<(&Upstream, &str)> {
        self.inner.tokens.is_none().then_some((&self.inner.upstream, self.inner.models_base.as_str()))
    }
}

impl Inner {
    fn uri(&self, model: &str, method: &str) -> Result<Uri, ProviderError> {
        let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
        if model.is_empty() || !model.chars().all(safe) {
            return Err(ProviderError::Unsupported {
                provider: self.upstream.name.to_string(),
                what: format!("the model name `{model}` in a URL"),
            });
        }
        let url = format!("{}/{model}:{method}", self.models_base);
        url.parse::<Uri>().map_err(|error| ProviderError::Config {
            provider: self.upstream.name.to_string(),
            reason: format!("invalid URL `{url}`: {error}"),
        })
    }

    async fn post(
        &self,
        uri: &Uri,
        body: Vec<u8>,
        budget: &Budget,
    ) -> Result<hyper::Response<crate::client::UpstreamBody>, LoomError> {
        let token = match &self.tokens {
            Some(tokens) => {
                let _waiting = budget.waiting();
                Some(tokens.token().await?)
            }
            None => None,
        };
        let endpoint = self.upstream.endpoint(uri)?;
        Ok(self.upstream.post_json_with_token(&endpoint, body, budget, token.as_ref()).await?)
    }

    fn encode<T: serde::Serialize>(&self, body: &T) -> Result<Vec<u8>, LoomError> {
        serde_json::to_vec(body).map_err(|error| LoomError::internal(format!("encoding failed: {error}")))
    }

    async fn call(self: Arc<Self>, request: LlmRequest) -> Result<LlmResponse, LoomError> {
        let id = format!("chatcmpl-{}", request.context.request_id);
        let budget = self.upstream.budget(&request.context.upstream_time);
        let payload = match request.payload {
            RequestPayload::Chat(chat) if chat.is_stream() => {
                ResponsePayload::Stream(self.stream(&chat, id, &budget).await?)
            }
            RequestPayload::Chat(chat) => ResponsePayload::Chat(self.chat(&chat, id, &budget).await?.into()),
            RequestPayload::Embeddings(embeddings) => {
                ResponsePayload::Embeddings(self.embeddings(&embeddings, &budget).await?)
            }
            // Counted by Loom's tokenizers, not with a call upstream.
            RequestPayload::CountTokens(chat) => ResponsePayload::TokenCount(TokenCount::uncounted(chat)),
        };
        Ok(LlmResponse::new(self.upstream.name.clone(), payload))
    }

    async fn chat(&self, chat: &ChatRequest, id: String, budget: &Budget) -> Result<ChatResponse, LoomError> {
        let body = self.encode(&request::to_gemini(chat)?)?;
        let response = self.post(&self.uri(&chat.model, "generateContent")?, body, budget).await?;
        let bytes = self.upstream.read_body(response, budget).await?;
        let answer: GenerateContentResponse = self.upstream.decode(&bytes)?;
        Ok(response::from_gemini(answer, id, &chat.model))
    }

    async fn stream(
        &self,
        chat: &ChatRequest,
        id: String,
        budget: &Budget,
    ) -> Result<ChunkStream, LoomError> {
        let body = self.encode(&request::to_gemini(chat)?)?;
        let mut uri = self.uri(&chat.model, "streamGenerateContent")?.to_string();
        uri.push_str("?alt=sse");
        let uri = uri.parse::<Uri>().map_err(|error| LoomError::internal(format!("stream URL: {error}")))?;
        let response = self.post(&uri, body, budget).await?;
        let upstream = self.upstream.clone();
        let events = Box::pin(self.upstream.events(response, budget));
        let translator = StreamTranslator::new(id, &chat.model);
        let state = (events, upstream, translator, std::collections::VecDeque::new(), false);
        let chunks = futures_util::stream::unfold(Some(state), |state| async move {
            let (mut events, upstream, mut translator, mut pending, ended) = state?;
            loop {
                if let Some(chunk) = pending.pop_front() {
                    return Some((
                        Ok(StreamChunk::from(chunk)),
                        Some((events, upstream, translator, pending, ended)),
                    ));
                }
                if ended {
                    return None;
                }
                let event = match events.next().await {
                    None if translator.is_finished() => {
                        pending.extend(translator.finish());
                        return pending.pop_front().map(|chunk| {
                            (
                                Ok(StreamChunk::from(chunk)),
                                Some((events, upstream, translator, pending, true)),
                            )
                        });
                    }
                    None => return Some((Err(LoomError::from(upstream.truncated())), None)),
                    Some(Err(error)) => return Some((Err(LoomError::from(error)), None)),
                    Some(Ok(event)) => event,
                };
                if event.data.trim().is_empty() {
                    continue;
                }
                if let Some(error) = upstream.in_band_error(&event.data) {
                    return Some((Err(LoomError::from(error)), None));
                }
                match upstream.decode::<GenerateContentResponse>(event.data.as_bytes()) {
                    Ok(chunk) => pending.extend(translator.on_chunk(chunk)),
                    Err(error) => return Some((Err(LoomError::from(error)), None)),
                }
            }
        });
        Ok(Box::pin(chunks))
    }

    async fn embeddings(
        &self,
        embeddings: &EmbeddingsRequest,
        budget: &Budget,
    ) -> Result<EmbeddingsResponse, LoomError> {
        let texts: Vec<String> = match &embeddings.input {
            EmbeddingInput::Text(text) => vec![text.clone()],
            EmbeddingInput::Texts(texts) => texts.clone(),
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => {
                return Err(LoomError::invalid_request(
                    "Gemini embeds text, not token ids",
                    Some("input".to_owned()),
                ));
            }
        };
        if embeddings.encoding_format.as_deref().is_some_and(|format| format != "float") {
            return Err(LoomError::invalid_request(
                "Gemini embeddings are returned as floats only; set `encoding_format: float`",
                Some("encoding_format".to_owned()),
            ));
        }
        let model_path = format!("models/{}", embeddings.model);
        let body = BatchEmbedRequest {
            requests: texts
                .into_iter()
                .map(|text| EmbedContentRequest {
                    model: Some(model_path.clone()),
                    content: GeminiContent {
                        role: None,
                        parts: vec![Part { text: Some(text), ..Part::default() }],
                    },
                    output_dimensionality: embeddings.dimensions,
                })
                .collect(),
        };
        let response = self
            .post(&self.uri(&embeddings.model, "batchEmbedContents")?, self.encode(&body)?, budget)
            .await?;
        let bytes = self.upstream.read_body(response, budget).await?;
        let answer: BatchEmbedResponse = self.upstream.decode(&bytes)?;
        Ok(EmbeddingsResponse {
            object: "list".to_owned(),
            data: answer
                .embeddings
                .into_iter()
                .enumerate()
                .map(|(index, embedding)| Embedding {
                    object: "embedding".to_owned(),
                    index: index as u32,
                    embedding: EmbeddingVector::Float(embedding.values),
                })
                .collect(),
            model: embeddings.model.clone(),
            usage: None,
            extra: Map::new(),
        })
    }
}

impl Service<LlmRequest> for GeminiProvider {
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        Box::pin(self.inner.clone().call(request))
    }
}
