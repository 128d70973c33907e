//! The `openai` provider (OpenAI and any OpenAI-compatible server) and `azure` (Azure OpenAI).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use http::Uri;
use http::header::{AUTHORIZATION, HeaderName};
use loom_core::{
    ChatAnswer, ChatRequest, ChunkStream, ClientFormat, Content, ContentPart, EmbeddingsRequest,
    EmbeddingsResponse, LlmRequest, LlmResponse, LoomError, RequestPayload, ResponsePayload, Role,
    StreamChunk, TokenCount, WireChunk, WireResponse,
};
use std::borrow::Cow;
use std::collections::BTreeMap;
use tower::Service;

use crate::client::{Endpoint, build_client};
use crate::config::ResponsesApi;
use crate::error::ProviderError;
use crate::native_responses::{NativeResponses, ResponsesEvents, whole_answer};
use crate::secrets::ProviderSecrets;
use crate::settings::OpenAiSettings;
use crate::upstream::{Budget, Upstream, base_headers};

/// Default base URL of the OpenAI API.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// A `tower::Service` that sends canonical requests to an OpenAI-format upstream.
#[derive(Clone)]
pub struct OpenAiProvider {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Upstream,
    endpoints: Endpoints,
    /// Where Responses API requests go untranslated (`responses_api: native`).
    responses: Option<Endpoint>,
}

/// Where chat and embeddings requests go.
// One per provider, built at start-up: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Endpoints {
    /// OpenAI and compatible servers: one URL per operation, and the model list.
    Fixed { chat: Endpoint, embeddings: Endpoint, models: Endpoint },
    /// Azure OpenAI: one URL per deployment, the deployment named by the model.
    Azure(AzureEndpoints),
}

/// Azure URLs: `{base}/openai/deployments/{deployment}/{operation}?api-version={version}`.
struct AzureEndpoints {
    base: String,
    api_version: String,
    /// Model name -> deployment name, from `deployments:`.
    deployments: BTreeMap<String, String>,
}

impl AzureEndpoints {
    fn uri(&self, provider: &str, model: &str, operation: &str) -> Result<Uri, ProviderError> {
        let deployment = self.deployments.get(model).map(String::as_str).unwrap_or(model);
        let url_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if deployment.is_empty() || !deployment.chars().all(url_safe) {
            return Err(ProviderError::Unsupported {
                provider: provider.to_owned(),
                what: format!("the deployment name `{deployment}` (letters, digits, `-`, `_`, `.` only)"),
            });
        }
        let url = format!(
            "{}/openai/deployments/{deployment}/{operation}?api-version={}",
            self.base, self.api_version
        );
        url.parse::<Uri>().map_err(|error| ProviderError::Config {
            provider: provider.to_owned(),
            reason: format!("invalid Azure URL `{url}`: {error}"),
        })
    }
}

/// What an upstream request asks for, which decides its URL.
#[derive(Clone, Copy)]
enum Operation {
    Chat,
    Embeddings,
}

impl Inner {
    /// The URL of `operation` for `model` (Azure names the deployment in the URL).
    fn endpoint(&self, operation: Operation, model: &str) -> Result<Cow<'_, Endpoint>, ProviderError> {
        match (&self.endpoints, operation) {
            (Endpoints::Fixed { chat, .. }, Operation::Chat) => Ok(Cow::Borrowed(chat)),
            (Endpoints::Fixed { embeddings, .. }, Operation::Embeddings) => Ok(Cow::Borrowed(embeddings)),
            (Endpoints::Azure(azure), _) => {
                let path = match operation {
                    Operation::Chat => "chat/completions",
                    Operation::Embeddings => "embeddings",
                };
                let uri = azure.uri(&self.upstream.name, model, path)?;
                self.upstream.endpoint(&uri).map(Cow::Owned)
            }
        }
    }
}

impl OpenAiProvider {
    /// Builds the provider (`openai`, `local` with `format: openai`, or `azure`).
    pub fn new(settings: OpenAiSettings) -> Result<Self, ProviderError> {
        let OpenAiSettings { upstream: config, azure, responses_api } = settings;
        let config_error = |reason: String| ProviderError::Config { provider: config.name.clone(), reason };
        let mut responses = None;
        let (endpoints, auth) = if let Some(azure) = azure {
            let base = config
                .base_url
                .as_deref()
                .ok_or_else(|| {
                    config_error("azure needs `base_url` (https://RESOURCE.openai.azure.com)".into())
                })?
                .trim_end_matches('/')
                .to_owned();
            let azure =
                AzureEndpoints { base, api_version: azure.api_version, deployments: azure.deployments };
            let auth = config
                .api_key
                .as_ref()
                .map(|key| (HeaderName::from_static("api-key"), key.expose().to_owned()));
            (Endpoints::Azure(azure), auth)
        } else {
            let base = config.base_url.as_deref().unwrap_or(OPENAI_BASE_URL).trim_end_matches('/');
            let uri = |path: &str| {
                format!("{base}{path}")
                    .parse::<Endpoint>()
                    .map_err(|error| config_error(format!("base_url `{base}`: {error}")))
            };
            if responses_api == ResponsesApi::Native {
                responses = Some(uri("/responses")?);
            }
            let endpoints = Endpoints::Fixed {
                chat: uri("/chat/completions")?,
                embeddings: uri("/embeddings")?,
                models: uri("/models")?,
            };
            let auth = config.api_key.as_ref().map(|key| (AUTHORIZATION, format!("Bearer {}", key.expose())));
            (endpoints, auth)
        };
        let headers = base_headers(&config.name, auth, &config.headers)?;
        let client = build_client(&config.name, config.timeouts.connect, config.pool_max_idle_per_host)?;
        Ok(OpenAiProvider {
            inner: Arc::new(Inner {
                upstream: Upstream::for_provider(
                    &config,
                    client,
                    headers,
                    ProviderSecrets::of(config.secrets().cloned()),
                ),
                endpoints,
                responses,
            }),
        })
    }

    /// Whether Responses API requests go to the upstream's own `/responses` untranslated.
    pub fn serves_responses_natively(&self) -> bool {
        self.inner.responses.is_some()
    }

    /// Sends a Responses API request untranslated: `native`'s body, with the model
    /// `request` names (as routing mapped it).
    pub(crate) fn call_responses(
        &self,
        request: LlmRequest,
        native: NativeResponses,
    ) -> Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.responses(request, native).await.map_err(LoomError::from) })
    }

    /// The provider's configured name.
    pub fn name(&self) -> &str {
        &self.inner.upstream.name
    }

    /// The upstream and its `GET {base}/models` URL; `None` for Azure, whose models
    /// are its configured deployments.
    pub(crate) fn model_list(&self) -> Option<(&Upstream, &Endpoint)> {
        match &self.inner.endpoints {
            Endpoints::Fixed { models, .. } => Some((&self.inner.upstream, models)),
            Endpoints::Azure(_) => None,
        }
    }
}

impl Inner {
    async fn call(self: Arc<Self>, request: LlmRequest) -> Result<LlmResponse, ProviderError> {
        let translated = request.context.client_format != ClientFormat::OpenAi;
        let budget = self.upstream.budget(&request.context.upstream_time);
        let payload = match request.payload {
            RequestPayload::Chat(mut chat) if chat.is_stream() => {
                prepare(&mut chat, &self.upstream.name, translated)?;
                ResponsePayload::Stream(self.stream(&chat, &budget).await?)
            }
            RequestPayload::Chat(mut chat) => {
                prepare(&mut chat, &self.upstream.name, translated)?;
                ResponsePayload::Chat(self.chat(&chat, &budget).await?)
            }
            RequestPayload::Embeddings(embeddings) => {
                ResponsePayload::Embeddings(self.embeddings(&embeddings, &budget).await?)
            }
            // OpenAI has no token-count API: Loom's tokenizers count.
            RequestPayload::CountTokens(chat) => ResponsePayload::TokenCount(TokenCount::uncounted(chat)),
        };
        Ok(LlmResponse::new(self.upstream.name.clone(), payload))
    }

    async fn responses(
        &self,
        request: LlmRequest,
        native: NativeResponses,
    ) -> Result<LlmResponse, ProviderError> {
        let (Some(endpoint), RequestPayload::Chat(chat)) = (&self.responses, &request.payload) else {
            return Err(ProviderError::Unsupported {
                provider: self.upstream.name.to_string(),
                what: "the Responses API natively (set `responses_api: native`)".to_owned(),
            });
        };
        let budget = self.upstream.budget(&request.context.upstream_time);
        let body = self.encode(&native.body_for(&chat.model))?;
        let response = self.upstream.post_json(endpoint, body, &budget).await?;
        let payload = if chat.is_stream() {
            let events = self.upstream.events(response, &budget);
            ResponsePayload::Stream(Box::pin(ResponsesEvents::new(events, self.upstream.clone(), native)))
        } else {
            let body = self.upstream.read_body(response, &budget).await?;
            let answer = whole_answer(&self.upstream, body)?;
            native.mark_passed_through();
            ResponsePayload::Chat(ChatAnswer::Wire(answer))
        };
        Ok(LlmResponse::new(self.upstream.name.clone(), payload))
    }

    fn encode<T: serde::Serialize>(&self, body: &T) -> Result<Vec<u8>, ProviderError> {
        serde_json::to_vec(body).map_err(|error| ProviderError::Config {
            provider: self.upstream.name.to_string(),
            reason: format!("request could not be encoded: {error}"),
        })
    }

    /// A whole answer, kept as the upstream's JSON (OpenAI clients get it unchanged).
    async fn chat(&self, chat: &ChatRequest, budget: &Budget) -> Result<ChatAnswer, ProviderError> {
        let response = self
            .upstream
            .post_json(&*self.endpoint(Operation::Chat, &chat.model)?, self.encode(chat)?, budget)
            .await?;
        let body = self.upstream.read_body(response, budget).await?;
        WireResponse::parse(body).map(ChatAnswer::Wire).map_err(|error| ProviderError::InvalidResponse {
            provider: self.upstream.name.to_string(),
            reason: format!("unexpected JSON: {error}"),
        })
    }

    async fn embeddings(
        &self,
        embeddings: &EmbeddingsRequest,
        budget: &Budget,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let response = self
            .upstream
            .post_json(
                &*self.endpoint(Operation::Embeddings, &embeddings.model)?,
                self.encode(embeddings)?,
                budget,
            )
            .await?;
        let body = self.upstream.read_body(response, budget).await?;
        self.upstream.decode(&body)
    }

    async fn stream(&self, chat: &ChatRequest, budget: &Budget) -> Result<ChunkStream, ProviderError> {
        let response = self
            .upstream
            .post_json(&*self.endpoint(Operation::Chat, &chat.model)?, self.encode(chat)?, budget)
            .await?;
        let events = self.upstream.events(response, budget);
        Ok(Box::pin(WireChunks { events: Some(events), upstream: self.upstream.clone(), first: true }))
    }
}

/// The chunks of an OpenAI-format stream: each event's JSON as a [`WireChunk`], up to
/// `data: [DONE]`; a stream that ends before it is truncated. The first chunk is checked
/// in full; later ones are read only where they may carry usage or an error.
struct WireChunks<E> {
    /// `None` once the stream has ended (the body is dropped then, freeing its connection).
    events: Option<E>,
    upstream: Upstream,
    first: bool,
}

impl<E> futures_util::Stream for WireChunks<E>
where
    E: futures_util::Stream<Item = Result<sse_core::MessageEvent, ProviderError>> + Unpin,
{
    type Item = Result<StreamChunk, LoomError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(events) = this.events.as_mut() else { return Poll::Ready(None) };
            let item = match events.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => Err(this.upstream.truncated()),
                Poll::Ready(Some(Err(error))) => Err(error),
                Poll::Ready(Some(Ok(event))) if event.data == "[DONE]" => {
                    this.events = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(event))) if event.data.trim().is_empty() => continue,
                Poll::Ready(Some(Ok(event))) => {
                    let chunk = wire_chunk(&this.upstream, event.data, this.first);
                    this.first = false;
                    chunk
                }
            };
            if item.is_err() {
                this.events = None;
            }
            return Poll::Ready(Some(item.map_err(LoomError::from)));
        }
    }
}

/// Adapts a canonical request to what OpenAI-format servers accept: Anthropic
/// reasoning blocks of earlier turns are removed (servers reject them, and they only
/// matter to the model that wrote them), Anthropic `thinking` becomes
/// `reasoning_effort`, and tools only Anthropic can run are refused.
fn prepare(chat: &mut ChatRequest, provider: &str, translated: bool) -> Result<(), ProviderError> {
    for tool in chat.tools.iter().flatten() {
        if tool.function.is_none() && !matches!(tool.kind.as_str(), "function" | "custom") {
            return Err(ProviderError::Unsupported {
                provider: provider.to_owned(),
                what: format!("the tool type `{}` (tools)", tool.kind),
            });
        }
    }
    if let Some(thinking) = chat.thinking.take()
        && thinking.kind == "enabled"
        && chat.reasoning_effort.is_none()
    {
        let effort = match thinking.budget_tokens.unwrap_or(8192) {
            0..=1024 => "minimal",
            1025..=4096 => "low",
            4097..=16384 => "medium",
            _ => "high",
        };
        chat.reasoning_effort = Some(effort.to_owned());
    }
    if translated && takes_max_completion_tokens_only(&chat.model) && chat.max_completion_tokens.is_none() {
        // OpenAI refuses `max_tokens` for its reasoning models, and an Anthropic client
        // always sends it. (An OpenAI client's request goes as it was written.)
        chat.max_completion_tokens = chat.max_tokens.take();
    }
    drop_reasoning_blocks(chat);
    Ok(())
}

/// Whether `model` is an OpenAI reasoning model (o1, o3, o4-mini, gpt-5 and their
/// variants), which takes `max_completion_tokens` and refuses `max_tokens`.
fn takes_max_completion_tokens_only(model: &str) -> bool {
    let is_series = |series: &str| {
        model.strip_prefix(series).is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.']))
    };
    ["o1", "o3", "o4", "gpt-5"].into_iter().any(is_series)
}

/// Removes reasoning blocks from earlier assistant turns.
fn drop_reasoning_blocks(chat: &mut ChatRequest) {
    for message in &mut chat.messages {
        if message.role != Role::Assistant {
            continue;
        }
        message.extra.remove("thinking_blocks");
        if let Some(Content::Parts(parts)) = &mut message.content {
            parts.retain(|part| !matches!(part, ContentPart::Thinking(_) | ContentPart::RedactedThinking(_)));
        }
    }
}

/// Reads one stream event: a chunk, kept as the upstream's JSON, or an in-band
/// `{"error": ...}` object.
fn wire_chunk(upstream: &Upstream, data: String, first: bool) -> Result<StreamChunk, ProviderError> {
    let json = Bytes::from(data);
    let parsed = if first { WireChunk::parse(json) } else { WireChunk::parse_next(json) };
    match parsed {
        Ok(wire) if !wire.is_error() => Ok(StreamChunk::Wire(wire)),
        // An error in a stream that started well: the gateway's fault to the client.
        Ok(error) => Err(upstream.error_from_body(502, error.json(), None)),
        Err(decode_error) => Err(upstream.invalid_json(&decode_error)),
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

#[cfg(test)]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_models_are_told_apart_by_name() {
        for model in
            ["o1", "o1-mini", "o3", "o3-mini-2025-01-31", "o4-mini", "gpt-5", "gpt-5-nano", "gpt-5.1"]
        {
            assert!(takes_max_completion_tokens_only(model), "{model}");
        }
        for model in ["gpt-4o", "gpt-4.1-mini", "o100", "gpt-50", "omni-moderation-latest", "llama-3-o1"] {
            assert!(!takes_max_completion_tokens_only(model), "{model}");
        }
    }

    #[test]
    fn translated_max_tokens_becomes_max_completion_tokens_for_reasoning_models_only() {
        let request = |model: &str, extra: &str| -> ChatRequest {
            serde_json::from_str(&format!(r#"{{"model":"{model}","messages":[],"max_tokens":64{extra}}}"#))
                .unwrap()
        };
        let limits = |chat: &ChatRequest| (chat.max_tokens, chat.max_completion_tokens);
        let mut reasoning = request("o3-mini", "");
        prepare(&mut reasoning, "openai", true).unwrap();
        assert_eq!(limits(&reasoning), (None, Some(64)));
        let mut both = request("o3-mini", r#","max_completion_tokens":32"#);
        prepare(&mut both, "openai", true).unwrap();
        assert_eq!(limits(&both), (Some(64), Some(32)), "the client's choice stands");
        let mut chat = request("gpt-4o", "");
        prepare(&mut chat, "openai", true).unwrap();
        assert_eq!(limits(&chat), (Some(64), None));
        let mut openai_client = request("o3-mini", "");
        prepare(&mut openai_client, "openai", false).unwrap();
        assert_eq!(limits(&openai_client), (Some(64), None), "an OpenAI client's request goes as written");
    }
}
