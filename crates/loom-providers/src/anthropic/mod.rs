//! The `anthropic` provider (and `local` with `format: anthropic`): the Messages API.

#[cfg(test)]
mod fuzz_tests;
pub mod request;
pub mod response;
pub mod stream;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use http::header::HeaderName;
use loom_core::{
    ChatRequest, ChatResponse, ChunkStream, ClientFormat, LlmRequest, LlmResponse, LoomError, RequestPayload,
    ResponsePayload, StreamChunk, TokenCount, UpstreamFailure,
};
use tower::Service;

use crate::client::{Endpoint, build_client};
use crate::error::{ErrorFields, ProviderError, kind_for_status};
use crate::secrets::ProviderSecrets;
use crate::settings::AnthropicSettings;
use crate::upstream::{Budget, ErrorBody, Upstream, base_headers, parse_error_body};
use crate::upstream_error::UpstreamErrorReport;

use self::stream::StreamTranslator;
use self::wire::{CountTokensRequest, MessagesRequest, MessagesResponse, StreamEvent, TokenCountResponse};

/// Default base URL of the Anthropic API.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// Default `anthropic-version` header.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Output limit sent when the client set none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

/// The canonical error for an Anthropic `error` event of a stream, its parts made safe
/// (see [`stream_status`] for its status).
pub(crate) fn stream_error(provider: &str, status: u16, report: UpstreamErrorReport) -> LoomError {
    let UpstreamErrorReport { fields, message, body } = report;
    let kind = fields.error_type.as_deref().unwrap_or("error");
    LoomError::new(kind_for_status(status), format!("provider `{provider}` reported {kind}: {message}"))
        .with_upstream(UpstreamFailure {
            provider: provider.to_owned(),
            status: Some(status),
            error_type: fields.error_type,
            code: None,
            retry_after: None,
            body,
        })
}

/// The HTTP status an Anthropic error type stands for.
pub(crate) fn stream_status(kind: Option<&str>) -> u16 {
    match kind.unwrap_or_default() {
        "overloaded_error" => 529,
        "rate_limit_error" => 429,
        "invalid_request_error" => 400,
        "request_too_large" => 413,
        "not_found_error" => 404,
        "authentication_error" | "permission_error" => 401,
        _ => 500,
    }
}

/// The error of an Anthropic stream's `error` event (`data` its whole JSON).
fn stream_error_event(upstream: &Upstream, data: &str) -> LoomError {
    let parsed = parse_error_body(data.as_bytes());
    let status = stream_status(parsed.fields.error_type.as_deref());
    stream_error(&upstream.name, status, upstream.error_report(status, parsed, data.as_bytes()))
}

/// The error of a parsed Anthropic `error` event, for callers without the provider's
/// secrets: key-shaped strings are still removed.
pub(crate) fn parsed_stream_error(provider: &str, kind: &str, message: &str) -> LoomError {
    let status = stream_status(Some(kind));
    let parsed = ErrorBody {
        fields: ErrorFields { error_type: Some(kind.to_owned()), ..ErrorFields::default() },
        message: message.to_owned(),
    };
    let report =
        crate::upstream_error::report(&loom_core::Scrubber::default(), provider, status, parsed, b"");
    stream_error(provider, status, report)
}

/// A `tower::Service` that speaks Anthropic's Messages API.
#[derive(Clone)]
pub struct AnthropicProvider {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Upstream,
    messages: Endpoint,
    /// `{messages}/count_tokens`.
    count_tokens: Endpoint,
    /// `GET /v1/models`, without its query.
    models: String,
    default_max_tokens: u32,
}

impl AnthropicProvider {
    /// Builds the provider (`anthropic`, or `local` with `format: anthropic`).
    pub fn new(settings: AnthropicSettings) -> Result<Self, ProviderError> {
        let config = &settings.upstream;
        let base = config.base_url.as_deref().unwrap_or(ANTHROPIC_BASE_URL).trim_end_matches('/');
        let url =
            if base.ends_with("/v1") { format!("{base}/messages") } else { format!("{base}/v1/messages") };
        let endpoint = |url: &str| {
            url.parse::<Endpoint>().map_err(|error| ProviderError::Config {
                provider: config.name.clone(),
                reason: format!("base_url `{base}`: {error}"),
            })
        };
        let messages = endpoint(&url)?;
        let count_tokens = endpoint(&format!("{url}/count_tokens"))?;
        let models = url.strip_suffix("/messages").unwrap_or(&url);
        let models = format!("{models}/models");
        // Checked now so a bad URL fails at start-up, not at every refresh.
        endpoint(&models)?;
        let auth = config
            .api_key
            .as_ref()
            .map(|key| (HeaderName::from_static("x-api-key"), key.expose().to_owned()));
        let mut headers = base_headers(&config.name, auth, &config.headers)?;
        if !headers.contains_key("anthropic-version") {
            let version = settings.api_version.as_deref().unwrap_or(ANTHROPIC_VERSION);
            let value = http::HeaderValue::from_str(version).map_err(|_| ProviderError::Config {
                provider: config.name.clone(),
                reason: "api_version is not a valid header value".to_owned(),
            })?;
            headers.insert(HeaderName::from_static("anthropic-version"), value);
        }
        let client = build_client(&config.name, config.timeouts.connect, config.pool_max_idle_per_host)?;
        Ok(AnthropicProvider {
            inner: Arc::new(Inner {
                upstream: Upstream::for_provider(
                    config,
                    client,
                    headers,
                    ProviderSecrets::of(config.secrets().cloned()),
                ),
                messages,
                count_tokens,
                models,
                default_max_tokens: settings.default_max_tokens,
            }),
        })
    }

    /// The provider's configured name.
    pub fn name(&self) -> &str {
        &self.inner.upstream.name
    }

    /// The upstream and its `GET /v1/models` URL (without a query).
    pub(crate) fn model_list(&self) -> (&Upstream, &str) {
        (&self.inner.upstream, &self.inner.models)
    }
}

impl Inner {
    async fn call(self: Arc<Self>, request: LlmRequest) -> Result<LlmResponse, LoomError> {
        // Fields an Anthropic client sent that Loom does not model are Anthropic's own:
        // they pass through. An OpenAI client's unknown fields would be rejected.
        let native = request.context.client_format == ClientFormat::Anthropic;
        let budget = self.upstream.budget(&request.context.upstream_time);
        let payload = match request.payload {
            RequestPayload::Chat(chat) if chat.is_stream() => {
                ResponsePayload::Stream(self.stream(&chat, native, &budget).await?)
            }
            RequestPayload::Chat(chat) => {
                ResponsePayload::Chat(self.chat(&chat, native, &budget).await?.into())
            }
            RequestPayload::Embeddings(_) => {
                return Err(ProviderError::Unsupported {
                    provider: self.upstream.name.to_string(),
                    what: "embeddings (Anthropic has no embeddings API)".to_owned(),
                }
                .into());
            }
            RequestPayload::CountTokens(chat) => {
                let input_tokens = self.count_tokens(&chat, native, &budget).await?;
                ResponsePayload::TokenCount(TokenCount { input_tokens: Some(input_tokens), request: chat })
            }
        };
        Ok(LlmResponse::new(self.upstream.name.clone(), payload))
    }

    fn request_body(&self, chat: &ChatRequest, native: bool) -> Result<MessagesRequest, LoomError> {
        let mut body = request::to_anthropic(chat, self.default_max_tokens)?;
        if native {
            body.extra = chat
                .extra
                .iter()
                .filter(|(key, _)| key.as_str() != "top_k")
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
        }
        Ok(body)
    }

    fn body(&self, chat: &ChatRequest, native: bool) -> Result<Vec<u8>, LoomError> {
        encode(&self.request_body(chat, native)?)
    }

    /// Asks Anthropic how many input tokens `chat` takes (`POST /v1/messages/count_tokens`).
    async fn count_tokens(
        &self,
        chat: &ChatRequest,
        native: bool,
        budget: &Budget,
    ) -> Result<u64, LoomError> {
        let request = self.request_body(chat, native)?;
        let body = encode(&CountTokensRequest::from(&request))?;
        let response = self.upstream.post_json(&self.count_tokens, body, budget).await?;
        let body = self.upstream.read_body(response, budget).await?;
        let count: TokenCountResponse = self.upstream.decode(&body)?;
        Ok(count.input_tokens)
    }

    async fn chat(
        &self,
        chat: &ChatRequest,
        native: bool,
        budget: &Budget,
    ) -> Result<ChatResponse, LoomError> {
        let response = self.upstream.post_json(&self.messages, self.body(chat, native)?, budget).await?;
        let body = self.upstream.read_body(response, budget).await?;
        let answer: MessagesResponse = self.upstream.decode(&body)?;
        Ok(response::from_anthropic(answer))
    }

    async fn stream(
        &self,
        chat: &ChatRequest,
        native: bool,
        budget: &Budget,
    ) -> Result<ChunkStream, LoomError> {
        let response = self.upstream.post_json(&self.messages, self.body(chat, native)?, budget).await?;
        let upstream = self.upstream.clone();
        let events = Box::pin(self.upstream.events(response, budget));
        let translator = StreamTranslator::new(&self.upstream.name);
        let state = (events, upstream, translator, std::collections::VecDeque::new());
        let chunks = futures_util::stream::unfold(Some(state), |state| async move {
            let (mut events, upstream, mut translator, mut pending) = state?;
            loop {
                if let Some(chunk) = pending.pop_front() {
                    return Some((
                        Ok(StreamChunk::from(chunk)),
                        Some((events, upstream, translator, pending)),
                    ));
                }
                if translator.is_complete() {
                    return None;
                }
                let event = match events.next().await {
                    None => return Some((Err(LoomError::from(upstream.truncated())), None)),
                    Some(Err(error)) => return Some((Err(LoomError::from(error)), None)),
                    Some(Ok(event)) => event,
                };
                if event.data.trim().is_empty() {
                    continue;
                }
                let parsed = upstream.decode::<StreamEvent>(event.data.as_bytes());
                if event.event == "error" || matches!(parsed, Ok(StreamEvent::Error { .. })) {
                    return Some((Err(stream_error_event(&upstream, &event.data)), None));
                }
                let parsed = match parsed {
                    Ok(parsed) => parsed,
                    Err(error) => return Some((Err(LoomError::from(error)), None)),
                };
                match translator.on_event(parsed) {
                    Ok(chunks) => pending.extend(chunks),
                    Err(error) => return Some((Err(error), None)),
                }
            }
        });
        Ok(Box::pin(chunks))
    }
}

fn encode(body: &impl serde::Serialize) -> Result<Vec<u8>, LoomError> {
    serde_json::to_vec(body).map_err(|error| LoomError::internal(format!("encoding failed: {error}")))
}

impl Service<LlmRequest> for AnthropicProvider {
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(inner.call(request))
    }
}
