//! # loom-providers
//!
//! One adapter per provider type, each a `tower::Service<LlmRequest>` that turns
//! canonical requests into the provider's wire format over a pooled keep-alive
//! client (rustls for `https://`, plain HTTP for local servers), streaming included.
//!
//! Provider types: `openai` (OpenAI and any OpenAI-compatible server through `base_url`,
//! `local` with `format: openai`), `azure`, `anthropic` (and `local` with
//! `format: anthropic`), `gemini`, `vertex`, and the built-in `mock`. Each is built from
//! narrow [`settings`] ([`Provider::new`]), or from a `providers:` entry
//! ([`Provider::from_config`], through [`ProviderConfig::settings`]). Each can list the
//! models its upstream serves ([`models`]). The connections'
//! writes wait one scheduler turn ([`deferred_writes`]), so a busy worker's writes leave
//! together; the gateway's client-facing connections use the same wrapper.
//!
//! ```
//! use loom_core::{ChatRequest, LlmRequest, Message, RequestContext, ResponsePayload, Role};
//! use loom_providers::{Provider, ProviderConfig, ProviderType};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let provider = Provider::from_config(&ProviderConfig::new("demo", ProviderType::Mock)).unwrap();
//! let chat = ChatRequest::new("any-model", vec![Message::text(Role::User, "ping")]);
//! let response = provider.oneshot(LlmRequest::chat(RequestContext::new("req-1"), chat)).await.unwrap();
//! let ResponsePayload::Chat(answer) = response.payload else { unreachable!() };
//! let answer = answer.into_typed().unwrap();
//! assert_eq!(
//!     answer.choices[0].message.content.as_ref().unwrap().joined_text(),
//!     "Hello from Loom's mock provider! You said: ping"
//! );
//! # });
//! ```

pub mod anthropic;
pub mod client;
pub mod config;
pub mod deferred_writes;
pub mod error;
#[cfg(test)]
mod fuzz_tests;
pub mod gemini;
pub mod google_auth;
mod media;
pub mod mock;
pub mod models;
pub mod native_responses;
pub mod openai;
pub mod provider;
pub mod secrets;
pub mod settings;
mod tool_calls;
mod upstream;
mod upstream_error;

pub use anthropic::AnthropicProvider;
pub use config::{
    MockSettings, ProviderConfig, ProviderType, ResponsesApi, Secret, Timeouts, VertexSettings, WireFormat,
};
pub use error::{ErrorFields, ProviderError, TimeoutPhase};
pub use gemini::GeminiProvider;
pub use mock::MockProvider;
pub use models::ListedModel;
pub use native_responses::{NativeOnly, NativeResponses};
pub use openai::OpenAiProvider;
pub use provider::Provider;
pub use secrets::ProviderSecrets;
pub use settings::{
    AnthropicSettings, AzureSettings, GeminiSettings, OpenAiSettings, ProviderSettings, UpstreamSettings,
};
