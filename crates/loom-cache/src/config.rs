//! The cache's configuration, as it appears in YAML (`ai_gateway.cache`, and `cache` on a
//! route to change it there).

use std::time::Duration;

use serde::Deserialize;

use crate::DEFAULT_SIMILARITY_THRESHOLD;

/// `ai_gateway.cache`: the response cache.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Whether answers are cached at all (routes can turn it off or on for themselves).
    pub enabled: bool,
    /// Whose answers a request may get: the same virtual key's, the same team's, or anyone's.
    pub namespace: Namespace,
    /// How long an answer stays servable.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Memory the in-process entries may take, in bytes; least recently used go first.
    pub max_bytes: u64,
    /// Largest answer stored, in bytes of JSON; larger ones are served, not stored.
    pub max_entry_bytes: u64,
    /// Whether answers to requests with `temperature` above 0 are cached (one sample then
    /// answers every later request).
    pub sampled: bool,
    /// Whether answers that end in tool calls are cached, besides those that end in `stop`.
    pub tool_calls: bool,
    /// Where entries live: `memory` (this process), or `state`: the shared state backend
    /// (`ai_gateway.state`; Redis there shares entries between instances).
    pub store: StoreChoice,
    /// Serving the answer of a question that asks the same thing in other words.
    pub semantic: SemanticConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: false,
            namespace: Namespace::Key,
            ttl: Duration::from_secs(3600),
            max_bytes: 256 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            sampled: false,
            tool_calls: false,
            store: StoreChoice::State,
            semantic: SemanticConfig::default(),
        }
    }
}

/// Whose answers a request may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    /// Only answers stored through the same virtual key (or, without keys, the same caller's user header).
    Key,
    /// Only answers stored by the same team.
    Team,
    /// Every caller shares entries.
    Global,
}

impl Namespace {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Key => "key",
            Namespace::Team => "team",
            Namespace::Global => "global",
        }
    }
}

/// Where entries are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreChoice {
    /// In this process only.
    Memory,
    /// The shared state backend of `ai_gateway.state` (memory or Redis).
    State,
}

/// `ai_gateway.cache.semantic`: hits for questions asked in other words.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SemanticConfig {
    /// Whether a request that missed exactly is looked up by meaning.
    pub enabled: bool,
    /// Lowest cosine similarity served (the question guard must agree too).
    pub similarity_threshold: f32,
    /// Longest last user turn embedded, in bytes; longer ones are exact-only.
    pub max_question_bytes: usize,
    /// Entries the semantic index holds at most.
    pub max_entries: usize,
    /// Longest an embedding may take; a slower one is a miss.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A provider's embeddings endpoint instead of the local model (`ai_gateway.embedder`).
    pub embedder: Option<ProviderEmbedderConfig>,
}

/// `ai_gateway.cache.semantic.embedder`: questions embedded by a configured provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEmbedderConfig {
    /// The provider's name in `ai_gateway.providers`.
    pub provider: String,
    /// The embedding model (e.g. `text-embedding-3-small`).
    pub model: String,
    /// The length of its vectors (e.g. 1536).
    pub dimensions: usize,
    /// Embedding calls in flight at most; past that a request misses rather than waits.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

fn default_max_concurrent() -> usize {
    16
}

impl Default for SemanticConfig {
    fn default() -> Self {
        SemanticConfig {
            enabled: false,
            similarity_threshold: DEFAULT_SIMILARITY_THRESHOLD,
            max_question_bytes: 2048,
            max_entries: 100_000,
            timeout: Duration::from_millis(500),
            embedder: None,
        }
    }
}

/// `cache` on a route: what differs there from `ai_gateway.cache`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCacheConfig {
    /// Caching on this route.
    pub enabled: Option<bool>,
    /// How long this route's answers stay servable.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// Whether answers to sampled requests (`temperature` > 0) are cached here.
    pub sampled: Option<bool>,
    /// Whether answers ending in tool calls are cached here.
    pub tool_calls: Option<bool>,
    /// Semantic lookups on this route.
    pub semantic: Option<RouteSemanticConfig>,
}

/// `cache.semantic` on a route.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSemanticConfig {
    /// Semantic lookups on this route.
    pub enabled: Option<bool>,
    /// Lowest cosine similarity served on this route.
    pub similarity_threshold: Option<f32>,
}

/// What the cache does on one route: the global config with the route's changes.
#[derive(Debug, Clone, PartialEq)]
pub struct CachePolicy {
    /// Caching on.
    pub enabled: bool,
    /// Entry lifetime.
    pub ttl: Duration,
    /// Sampled requests cacheable.
    pub sampled: bool,
    /// Tool-call answers cacheable.
    pub tool_calls: bool,
    /// Semantic lookups on.
    pub semantic: bool,
    /// Lowest similarity served.
    pub similarity_threshold: f32,
}

impl CachePolicy {
    /// The policy of a route with `route` changes (none: the global policy).
    pub fn of(global: &CacheConfig, route: Option<&RouteCacheConfig>) -> CachePolicy {
        let route_semantic = route.and_then(|route| route.semantic.as_ref());
        CachePolicy {
            enabled: route.and_then(|route| route.enabled).unwrap_or(global.enabled),
            ttl: route.and_then(|route| route.ttl).unwrap_or(global.ttl),
            sampled: route.and_then(|route| route.sampled).unwrap_or(global.sampled),
            tool_calls: route.and_then(|route| route.tool_calls).unwrap_or(global.tool_calls),
            semantic: route_semantic.and_then(|semantic| semantic.enabled).unwrap_or(global.semantic.enabled),
            similarity_threshold: route_semantic
                .and_then(|semantic| semantic.similarity_threshold)
                .unwrap_or(global.semantic.similarity_threshold),
        }
    }
}

/// Why a cache config cannot be used; names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// The config key, relative to the `cache` block (e.g. `semantic.similarity_threshold`).
    pub key: String,
    /// Why.
    pub reason: String,
}

impl CacheConfig {
    /// Checks the values serde cannot (ranges).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let error = |key: &str, reason: &str| Err(ConfigError { key: key.into(), reason: reason.into() });
        if self.ttl.is_zero() {
            return error("ttl", "must be above 0");
        }
        if self.max_bytes == 0 {
            return error("max_bytes", "must be above 0");
        }
        if self.max_entry_bytes == 0 || self.max_entry_bytes > self.max_bytes {
            return error("max_entry_bytes", "must be above 0 and at most max_bytes");
        }
        if self.max_entry_bytes > 64 * 1024 * 1024 {
            return error("max_entry_bytes", "must be at most 64 MiB");
        }
        check_threshold(self.semantic.similarity_threshold)
            .or_else(|reason| error("semantic.similarity_threshold", reason))?;
        if self.semantic.max_question_bytes == 0 {
            return error("semantic.max_question_bytes", "must be above 0");
        }
        if self.semantic.max_entries == 0 {
            return error("semantic.max_entries", "must be above 0");
        }
        if self.semantic.timeout.is_zero() {
            return error("semantic.timeout", "must be above 0");
        }
        if let Some(embedder) = &self.semantic.embedder {
            if embedder.model.trim().is_empty() {
                return error("semantic.embedder.model", "must not be empty");
            }
            if !(1..=8192).contains(&embedder.dimensions) {
                return error("semantic.embedder.dimensions", "must be 1 to 8192");
            }
            if !(1..=1024).contains(&embedder.max_concurrent) {
                return error("semantic.embedder.max_concurrent", "must be 1 to 1024");
            }
        }
        Ok(())
    }
}

impl RouteCacheConfig {
    /// Checks the values serde cannot (ranges).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ttl.is_some_and(|ttl| ttl.is_zero()) {
            return Err(ConfigError { key: "ttl".into(), reason: "must be above 0".into() });
        }
        if let Some(threshold) = self.semantic.as_ref().and_then(|semantic| semantic.similarity_threshold) {
            check_threshold(threshold).map_err(|reason| ConfigError {
                key: "semantic.similarity_threshold".into(),
                reason: reason.into(),
            })?;
        }
        Ok(())
    }
}

fn check_threshold(threshold: f32) -> Result<(), &'static str> {
    if threshold.is_finite() && threshold > 0.0 && threshold <= 1.0 {
        Ok(())
    } else {
        Err("must be above 0 and at most 1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_changes_only_what_it_names() {
        let global: CacheConfig = serde_json::from_value(serde_json::json!({
            "enabled": true, "ttl": "10m", "semantic": {"enabled": true}
        }))
        .unwrap();
        let route: RouteCacheConfig = serde_json::from_value(
            serde_json::json!({"ttl": "30s", "semantic": {"similarity_threshold": 0.9}}),
        )
        .unwrap();
        assert_eq!(
            CachePolicy::of(&global, Some(&route)),
            CachePolicy {
                enabled: true,
                ttl: Duration::from_secs(30),
                sampled: false,
                tool_calls: false,
                semantic: true,
                similarity_threshold: 0.9,
            }
        );
        assert_eq!(CachePolicy::of(&global, None).ttl, Duration::from_secs(600));
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = CacheConfig { enabled: true, ..CacheConfig::default() };
        assert_eq!(config.validate(), Ok(()));
        config.semantic.similarity_threshold = 1.5;
        assert_eq!(config.validate().unwrap_err().key, "semantic.similarity_threshold");
        config.semantic.similarity_threshold = 0.9;
        config.max_entry_bytes = config.max_bytes + 1;
        assert_eq!(config.validate().unwrap_err().key, "max_entry_bytes");
        let unknown = serde_json::from_value::<CacheConfig>(serde_json::json!({"enabeld": true}));
        assert!(unknown.unwrap_err().to_string().contains("enabeld"));
    }
}
