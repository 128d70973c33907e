//! Provider configuration, deserialized straight from a `providers:` entry.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The wire format and auth scheme a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    /// OpenAI, or any OpenAI-compatible server via `base_url`.
    Openai,
    /// Azure OpenAI.
    Azure,
    /// Anthropic messages API.
    Anthropic,
    /// Google AI Studio (Gemini API).
    Gemini,
    /// Google Vertex AI.
    Vertex,
    /// A local or custom server in the format named by `format`.
    Local,
    /// Built-in deterministic provider for demos and tests; needs no network.
    Mock,
}

impl ProviderType {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Openai => "openai",
            ProviderType::Azure => "azure",
            ProviderType::Anthropic => "anthropic",
            ProviderType::Gemini => "gemini",
            ProviderType::Vertex => "vertex",
            ProviderType::Local => "local",
            ProviderType::Mock => "mock",
        }
    }
}

/// Wire format of a `local` provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// OpenAI chat-completions.
    Openai,
    /// Anthropic messages.
    Anthropic,
}

pub use loom_core::Secret;

/// How an OpenAI provider serves Responses API (`/v1/responses`) requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponsesApi {
    /// Translated to chat completions, like for every other provider (the default).
    #[default]
    Translate,
    /// Passed through untranslated to the upstream's own `/responses`.
    Native,
}

/// Upstream timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// Whole request, for non-streamed calls.
    #[serde(with = "humantime_serde")]
    pub request: Duration,
    /// Until the response headers arrive.
    #[serde(with = "humantime_serde")]
    pub first_byte: Duration,
    /// Longest gap between two stream chunks.
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(600),
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(120),
        }
    }
}

/// Behaviour of the built-in `mock` provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockSettings {
    /// Delay before the answer (or the first chunk) starts.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// Delay between stream chunks.
    #[serde(with = "humantime_serde")]
    pub chunk_delay: Duration,
    /// Fixed reply; by default the mock echoes the last user message.
    pub reply: Option<String>,
}

impl Default for MockSettings {
    fn default() -> Self {
        MockSettings { latency: Duration::ZERO, chunk_delay: Duration::ZERO, reply: None }
    }
}

/// Google Vertex AI settings (`type: vertex`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VertexSettings {
    /// Google Cloud project id.
    pub project: String,
    /// Region, e.g. `us-central1` (or `global`).
    #[serde(default = "default_vertex_location")]
    pub location: String,
    /// A ready OAuth2 access token (e.g. `${VERTEX_ACCESS_TOKEN}`); used as is.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// Path of a service-account JSON key; tokens are minted from it and refreshed.
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// OAuth2 token endpoint; defaults to the key file's `token_uri`.
    #[serde(default)]
    pub token_url: Option<String>,
}

fn default_vertex_location() -> String {
    "us-central1".to_owned()
}

/// One `ai_gateway.providers` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name, used by routing and in metrics.
    pub name: String,
    /// Provider type.
    #[serde(rename = "type")]
    pub kind: ProviderType,
    /// API key; `${VAR}` in config reads it from the environment.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Base URL override (any OpenAI-compatible server).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Models this provider serves; empty means any.
    #[serde(default)]
    pub models: Vec<String>,
    /// Azure API version.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Azure: model name -> deployment name.
    #[serde(default)]
    pub deployments: BTreeMap<String, String>,
    /// Wire format of a `local` provider.
    #[serde(default)]
    pub format: Option<WireFormat>,
    /// Price per 1,000 input tokens.
    #[serde(default)]
    pub cost_per_1k_input: Option<f64>,
    /// Price per 1,000 output tokens.
    #[serde(default)]
    pub cost_per_1k_output: Option<f64>,
    /// Output limit sent to providers that require one (Anthropic) when the client set none.
    #[serde(default)]
    pub default_max_tokens: Option<u32>,
    /// Extra headers sent upstream on every request; their values are secrets (often an
    /// `Authorization` for a custom server), never printed.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Upstream timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Idle upstream connections kept per host.
    #[serde(default = "default_pool_max_idle")]
    pub pool_max_idle_per_host: usize,
    /// Settings of the `mock` type.
    #[serde(default)]
    pub mock: Option<MockSettings>,
    /// Settings of the `vertex` type.
    #[serde(default)]
    pub vertex: Option<VertexSettings>,
    /// How an `openai` provider serves Responses API requests (default `translate`).
    #[serde(default)]
    pub responses_api: ResponsesApi,
}

fn default_pool_max_idle() -> usize {
    crate::settings::DEFAULT_POOL_MAX_IDLE_PER_HOST
}

impl ProviderConfig {
    /// A provider of this type with every optional field unset.
    pub fn new(name: impl Into<String>, kind: ProviderType) -> Self {
        ProviderConfig {
            name: name.into(),
            kind,
            api_key: None,
            base_url: None,
            models: Vec::new(),
            api_version: None,
            deployments: BTreeMap::new(),
            format: None,
            cost_per_1k_input: None,
            cost_per_1k_output: None,
            default_max_tokens: None,
            headers: BTreeMap::new(),
            timeouts: Timeouts::default(),
            pool_max_idle_per_host: default_pool_max_idle(),
            mock: None,
            vertex: None,
            responses_api: ResponsesApi::Translate,
        }
    }

    /// Every secret this entry holds: the API key, header values and a Vertex access token.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        let vertex_token = self.vertex.as_ref().and_then(|vertex| vertex.access_token.as_ref());
        self.api_key.iter().chain(self.headers.values()).chain(vertex_token)
    }

    /// Whether this provider serves `model` (an empty `models` list serves any).
    pub fn serves(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|served| served == model)
    }
}
