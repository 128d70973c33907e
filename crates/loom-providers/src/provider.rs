//! Any configured provider, built from its config entry.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom_core::{LlmRequest, LlmResponse, LoomError};
use tower::Service;

use crate::anthropic::AnthropicProvider;
use crate::config::{ProviderConfig, ProviderType, WireFormat};
use crate::error::ProviderError;
use crate::gemini::GeminiProvider;
use crate::mock::MockProvider;
use crate::openai::OpenAiProvider;

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
    /// Builds the adapter a config entry asks for.
    pub fn from_config(config: &ProviderConfig) -> Result<Provider, ProviderError> {
        match (config.kind, config.format) {
            (ProviderType::Openai | ProviderType::Azure, _)
            | (ProviderType::Local, Some(WireFormat::Openai) | None) => {
                Ok(Provider::OpenAi(OpenAiProvider::new(config)?))
            }
            (ProviderType::Anthropic, _) | (ProviderType::Local, Some(WireFormat::Anthropic)) => {
                Ok(Provider::Anthropic(AnthropicProvider::new(config)?))
            }
            (ProviderType::Gemini | ProviderType::Vertex, _) => {
                Ok(Provider::Gemini(GeminiProvider::new(config)?))
            }
            (ProviderType::Mock, _) => Ok(Provider::Mock(MockProvider::new(config))),
        }
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
        match self {
            Provider::OpenAi(provider) => provider.call(request),
            Provider::Anthropic(provider) => provider.call(request),
            Provider::Gemini(provider) => provider.call(request),
            Provider::Mock(provider) => provider.call(request),
        }
    }
}
