//! Any provider, built from its settings (or a config entry).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom_core::{LlmRequest, LlmResponse, LoomError, RequestPayload};
use tower::Service;

use crate::anthropic::AnthropicProvider;
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::gemini::GeminiProvider;
use crate::mock::MockProvider;
use crate::native_responses::NativeResponses;
use crate::openai::OpenAiProvider;
use crate::settings::ProviderSettings;

/// One provider of any supported type, as a `tower::Service<LlmRequest>`.
#[derive(Clone)]
pub enum Provider {
    /// OpenAI, Azure OpenAI, or an OpenAI-compatible server.
    OpenAi(OpenAiProvider),
    /// Anthropic's Messages API.
    Anthropic(AnthropicProvider),
    /// Gemini on Google AI Studio or Vertex AI.
    Gemini(GeminiProvider),
    /// The built-in mock.
    Mock(MockProvider),
}

impl Provider {
    /// Builds the adapter of these settings.
    pub fn new(settings: ProviderSettings) -> Result<Provider, ProviderError> {
        Ok(match settings {
            ProviderSettings::OpenAi(settings) => Provider::OpenAi(OpenAiProvider::new(settings)?),
            ProviderSettings::Anthropic(settings) => Provider::Anthropic(AnthropicProvider::new(settings)?),
            ProviderSettings::Gemini(settings) => Provider::Gemini(GeminiProvider::new(settings)?),
            ProviderSettings::Mock { name, mock } => Provider::Mock(MockProvider::new(&name, mock)),
        })
    }

    /// Builds the adapter a config entry asks for ([`ProviderConfig::settings`]).
    pub fn from_config(config: &ProviderConfig) -> Result<Provider, ProviderError> {
        Provider::new(config.settings()?)
    }

    /// The provider's configured name.
    pub fn name(&self) -> &str {
        match self {
            Provider::OpenAi(provider) => provider.name(),
            Provider::Anthropic(provider) => provider.name(),
            Provider::Gemini(provider) => provider.name(),
            Provider::Mock(provider) => provider.name(),
        }
    }
}

impl Service<LlmRequest> for Provider {
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        match self {
            Provider::OpenAi(provider) => provider.poll_ready(cx),
            Provider::Anthropic(provider) => provider.poll_ready(cx),
            Provider::Gemini(provider) => provider.poll_ready(cx),
            Provider::Mock(provider) => provider.poll_ready(cx),
        }
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        if let Some(native) = request.context.extensions.get::<NativeResponses>() {
            let serves_natively =
                matches!(self, Provider::OpenAi(provider) if provider.serves_responses_natively());
            let unchanged = match &request.payload {
                RequestPayload::Chat(chat) => native.is_unchanged(&chat.messages),
                _ => false,
            };
            if serves_natively
                && unchanged
                && let Provider::OpenAi(provider) = self
            {
                let native = native.clone();
                return provider.call_responses(request, native);
            }
            if let Some(refusal) = native.refusal(self.name(), serves_natively) {
                return Box::pin(std::future::ready(Err(refusal)));
            }
        }
        match self {
            Provider::OpenAi(provider) => provider.call(request),
            Provider::Anthropic(provider) => provider.call(request),
            Provider::Gemini(provider) => provider.call(request),
            Provider::Mock(provider) => provider.call(request),
        }
    }
}
