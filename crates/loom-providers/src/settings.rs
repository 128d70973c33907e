//! What each adapter needs to be built, and nothing routing or billing owns (models,
//! prices): an embedder builds a provider from these without a `providers:` entry,
//! and [`ProviderConfig::settings`] is the one place a config entry becomes them.
//!
//! ```
//! use loom_providers::{OpenAiSettings, Provider, ProviderSettings, Secret};
//!
//! let mut settings = OpenAiSettings::new("vllm");
//! settings.upstream.base_url = Some("http://localhost:8000/v1".to_owned());
//! settings.upstream.api_key = Some(Secret::new("token"));
//! let provider = Provider::new(ProviderSettings::OpenAi(settings))?;
//! assert_eq!(provider.name(), "vllm");
//! # Ok::<(), loom_providers::ProviderError>(())
//! ```
//!
//! ```
//! use loom_providers::{AnthropicSettings, Provider, ProviderSettings, Secret};
//!
//! let mut anthropic = AnthropicSettings::new("claude");
//! anthropic.upstream.api_key = Some(Secret::new("sk-ant-example"));
//! anthropic.default_max_tokens = 1024;
//! let provider = Provider::new(ProviderSettings::Anthropic(anthropic))?;
//! assert_eq!(provider.name(), "claude");
//! # Ok::<(), loom_providers::ProviderError>(())
//! ```

use std::collections::BTreeMap;

use crate::anthropic::DEFAULT_MAX_TOKENS;
use crate::config::{
    MockSettings, ProviderConfig, ProviderType, ResponsesApi, Secret, Timeouts, VertexSettings, WireFormat,
};
use crate::error::ProviderError;

/// Idle upstream connections kept per host unless set.
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 256;

/// The settings of one adapter, by the wire format it speaks.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderSettings {
    /// OpenAI chat completions: OpenAI, compatible servers, Azure OpenAI.
    OpenAi(OpenAiSettings),
    /// Anthropic's Messages API.
    Anthropic(AnthropicSettings),
    /// Gemini on Google AI Studio or Vertex AI.
    Gemini(GeminiSettings),
    /// The built-in mock.
    Mock {
        /// Name in logs, errors and usage.
        name: String,
        /// How it answers.
        mock: MockSettings,
    },
}

/// How to reach and authenticate with one upstream; every HTTP adapter has these.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UpstreamSettings {
    /// Name in logs, errors, metrics and usage.
    pub name: String,
    /// Base URL; each adapter has its public API's as default (Azure needs one).
    pub base_url: Option<String>,
    /// API key, sent as the adapter's auth header.
    pub api_key: Option<Secret>,
    /// Extra headers on every request; their values are secrets.
    pub headers: BTreeMap<String, Secret>,
    /// Upstream timeouts.
    pub timeouts: Timeouts,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl UpstreamSettings {
    /// An upstream named `name` at the adapter's default URL, without a key.
    pub fn new(name: impl Into<String>) -> Self {
        UpstreamSettings {
            name: name.into(),
            base_url: None,
            api_key: None,
            headers: BTreeMap::new(),
            timeouts: Timeouts::default(),
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
        }
    }

    /// The secrets errors and logs are scrubbed of: the key and the header values.
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.api_key.iter().chain(self.headers.values())
    }
}

/// An OpenAI-format adapter's settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OpenAiSettings {
    /// Where and who.
    pub upstream: UpstreamSettings,
    /// Azure OpenAI's URL scheme and `api-key` auth; `None` for OpenAI and compatible servers.
    pub azure: Option<AzureSettings>,
    /// Whether Responses API requests go to the upstream's `/responses` untranslated.
    pub responses_api: ResponsesApi,
}

impl OpenAiSettings {
    /// An OpenAI adapter named `name` at the OpenAI API.
    pub fn new(name: impl Into<String>) -> Self {
        OpenAiSettings {
            upstream: UpstreamSettings::new(name),
            azure: None,
            responses_api: ResponsesApi::Translate,
        }
    }
}

/// Azure OpenAI: the deployment is named in the URL.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AzureSettings {
    /// The `api-version` query parameter.
    pub api_version: String,
    /// Model name -> deployment name; a model not listed is its own deployment.
    pub deployments: BTreeMap<String, String>,
}

impl AzureSettings {
    /// Azure at `api_version`, every model its own deployment.
    pub fn new(api_version: impl Into<String>) -> Self {
        AzureSettings { api_version: api_version.into(), deployments: BTreeMap::new() }
    }
}

/// An Anthropic-format adapter's settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AnthropicSettings {
    /// Where and who.
    pub upstream: UpstreamSettings,
    /// The `anthropic-version` header, unless `headers` sets it.
    pub api_version: Option<String>,
    /// Output limit sent when the client set none (Anthropic requires one).
    pub default_max_tokens: u32,
}

impl AnthropicSettings {
    /// An Anthropic adapter named `name` at Anthropic's API.
    pub fn new(name: impl Into<String>) -> Self {
        AnthropicSettings {
            upstream: UpstreamSettings::new(name),
            api_version: None,
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// A Gemini adapter's settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GeminiSettings {
    /// Where and who (the key is AI Studio's; Vertex AI uses `vertex`'s credentials).
    pub upstream: UpstreamSettings,
    /// Vertex AI's project, region and credentials; `None` for Google AI Studio.
    pub vertex: Option<VertexSettings>,
}

impl GeminiSettings {
    /// A Google AI Studio adapter named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GeminiSettings { upstream: UpstreamSettings::new(name), vertex: None }
    }
}

impl ProviderConfig {
    /// What this entry's adapter needs, by its `type` (and `format` for `local`).
    /// Fails when a field its type requires is missing.
    pub fn settings(&self) -> Result<ProviderSettings, ProviderError> {
        let config_error =
            |reason: &str| ProviderError::Config { provider: self.name.clone(), reason: reason.to_owned() };
        let upstream = UpstreamSettings {
            name: self.name.clone(),
            base_url: self.base_url.clone(),
            api_key: self.api_key.clone(),
            headers: self.headers.clone(),
            timeouts: self.timeouts,
            pool_max_idle_per_host: self.pool_max_idle_per_host,
        };
        Ok(match (self.kind, self.format) {
            (ProviderType::Azure, _) => {
                let api_version =
                    self.api_version.clone().ok_or_else(|| config_error("azure needs `api_version`"))?;
                let azure = AzureSettings { api_version, deployments: self.deployments.clone() };
                ProviderSettings::OpenAi(OpenAiSettings {
                    upstream,
                    azure: Some(azure),
                    responses_api: ResponsesApi::Translate,
                })
            }
            (ProviderType::Openai, _) | (ProviderType::Local, Some(WireFormat::Openai) | None) => {
                ProviderSettings::OpenAi(OpenAiSettings {
                    upstream,
                    azure: None,
                    responses_api: self.responses_api,
                })
            }
            (ProviderType::Anthropic, _) | (ProviderType::Local, Some(WireFormat::Anthropic)) => {
                ProviderSettings::Anthropic(AnthropicSettings {
                    upstream,
                    api_version: self.api_version.clone(),
                    default_max_tokens: self.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                })
            }
            (ProviderType::Gemini, _) => ProviderSettings::Gemini(GeminiSettings { upstream, vertex: None }),
            (ProviderType::Vertex, _) => {
                let vertex =
                    self.vertex.clone().ok_or_else(|| config_error("vertex needs a `vertex:` block"))?;
                ProviderSettings::Gemini(GeminiSettings { upstream, vertex: Some(vertex) })
            }
            (ProviderType::Mock, _) => ProviderSettings::Mock {
                name: self.name.clone(),
                mock: self.mock.clone().unwrap_or_default(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_gets_the_settings_of_its_wire_format_and_nothing_of_routing() {
        let mut azure = ProviderConfig::new("az", ProviderType::Azure);
        azure.base_url = Some("https://r.openai.azure.com".to_owned());
        azure.api_key = Some(Secret::new("k"));
        azure.models = vec!["gpt-4o".to_owned()];
        azure.cost_per_1k_input = Some(1.0);
        azure.deployments.insert("gpt-4o".to_owned(), "prod-4o".to_owned());
        assert!(
            matches!(azure.settings(), Err(ProviderError::Config { reason, .. }) if reason == "azure needs `api_version`")
        );
        azure.api_version = Some("2024-10-21".to_owned());
        let mut expected = OpenAiSettings::new("az");
        expected.upstream.base_url = azure.base_url.clone();
        expected.upstream.api_key = Some(Secret::new("k"));
        let mut azure_settings = AzureSettings::new("2024-10-21");
        azure_settings.deployments = azure.deployments.clone();
        expected.azure = Some(azure_settings);
        assert_eq!(azure.settings().unwrap(), ProviderSettings::OpenAi(expected));

        let mut local = ProviderConfig::new("llama", ProviderType::Local);
        local.format = Some(WireFormat::Anthropic);
        local.default_max_tokens = Some(512);
        let ProviderSettings::Anthropic(anthropic) = local.settings().unwrap() else { panic!("anthropic") };
        assert_eq!((anthropic.upstream.name.as_str(), anthropic.default_max_tokens), ("llama", 512));
        assert_eq!(
            AnthropicSettings::new("a").default_max_tokens,
            DEFAULT_MAX_TOKENS,
            "the default limit without config"
        );

        let vertex = ProviderConfig::new("v", ProviderType::Vertex);
        assert!(
            matches!(vertex.settings(), Err(ProviderError::Config { reason, .. }) if reason.contains("`vertex:`"))
        );
        let gemini = ProviderConfig::new("g", ProviderType::Gemini);
        assert_eq!(gemini.settings().unwrap(), ProviderSettings::Gemini(GeminiSettings::new("g")));
        let mock = ProviderConfig::new("m", ProviderType::Mock);
        assert_eq!(
            mock.settings().unwrap(),
            ProviderSettings::Mock { name: "m".to_owned(), mock: MockSettings::default() }
        );
    }
}
