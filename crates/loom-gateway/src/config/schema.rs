//! The configuration schema: serde structs deserialized straight from `loom.yaml`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::time::Duration;

use loom_providers::ProviderConfig;
use serde::Deserialize;

/// The whole `loom.yaml`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoomConfig {
    /// The public HTTP listener.
    pub server: ServerConfig,
    /// The admin API listener.
    pub admin: AdminConfig,
    /// Log level and format.
    pub logging: LoggingConfig,
    /// Providers, routing, model mapping and streaming.
    pub ai_gateway: AiGatewayConfig,
    /// HTTP routes; empty means the single default route (see [`LoomConfig::effective_routes`]).
    pub routes: Vec<RouteConfig>,
}

impl LoomConfig {
    /// The routes in force: `routes`, or the default AI route `/v1/*` when none are configured.
    pub fn effective_routes(&self) -> Vec<RouteConfig> {
        if self.routes.is_empty() { vec![RouteConfig::default_ai_route()] } else { self.routes.clone() }
    }
}

/// `server:` the public HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the public listener binds.
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: u64,
    /// Time in-flight requests get to finish on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Upper bound on a whole client request, streaming included.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Threads serving client connections, each with its own event loop; one per CPU when unset.
    pub workers: Option<NonZeroUsize>,
    /// Time from accept until a connection's first request head is complete.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time a request body may take to arrive (408 after it).
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Time a connection with no request in flight is kept open.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// Client connections open at once; unset follows the file-descriptor limit.
    pub max_connections: Option<NonZeroUsize>,
    /// Request-body bytes held at once across all requests (503 past it); unset is
    /// [`DEFAULT_MAX_BUFFERED_BODY_BYTES`], or `max_body_bytes` if that is larger.
    pub max_buffered_body_bytes: Option<u64>,
    /// Concurrent requests on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// Interval of HTTP/2 keep-alive pings (and how long a pong may take).
    #[serde(with = "humantime_serde")]
    pub http2_keepalive_interval: Duration,
}

/// Request-body bytes held at once when `server.max_buffered_body_bytes` is unset: 256 MiB.
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES: u64 = 256 * 1024 * 1024;

impl ServerConfig {
    /// The request-body bytes all requests may hold at once.
    pub fn buffered_body_budget(&self) -> u64 {
        self.max_buffered_body_bytes.unwrap_or(DEFAULT_MAX_BUFFERED_BODY_BYTES.max(self.max_body_bytes))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080)),
            max_body_bytes: 10 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(600),
            workers: None,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(75),
            max_connections: None,
            max_buffered_body_bytes: None,
            http2_max_concurrent_streams: 128,
            http2_keepalive_interval: Duration::from_secs(30),
        }
    }
}

/// `admin:` the admin API listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address the admin listener binds.
    pub listen: SocketAddr,
    /// Whether the admin listener runs at all.
    pub enabled: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 9091)), enabled: true }
    }
}

/// `logging:` log level and output format.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Log filter, e.g. `info` or `loom_gateway=debug,info`.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig { level: "info".to_owned(), format: LogFormat::Text }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// `ai_gateway:` providers, routing, model mapping and streaming.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AiGatewayConfig {
    /// Whether AI routes are served.
    pub enabled: bool,
    /// The upstream LLM providers.
    pub providers: Vec<ProviderConfig>,
    /// How requests pick a provider.
    pub routing: RoutingConfig,
    /// Client model name -> provider name -> provider model name.
    pub model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    /// Streaming behaviour.
    pub streaming: StreamingConfig,
    /// Token usage and cost accounting.
    pub token_accounting: TokenAccountingConfig,
    /// How often the model lists of providers without `models:` are fetched again for
    /// `GET /v1/models`.
    #[serde(with = "humantime_serde")]
    pub models_refresh: std::time::Duration,
    /// Virtual keys: who may call, with what identity.
    pub auth: loom_guard::AuthConfig,
    /// Rate limits every request must pass (keys add their own).
    pub rate_limits: loom_guard::RateLimitsConfig,
    /// Spending and token budgets (keys add their own).
    pub budgets: loom_guard::BudgetsConfig,
    /// What a request reserves from limits and budgets before its call.
    pub reservations: loom_guard::ReservationsConfig,
    /// Where limits, budgets and keys live: in memory, or on Redis shared by instances.
    pub state: loom_guard::StateConfig,
    /// The conversations kept for the Responses API's `previous_response_id`.
    pub responses: ResponsesConfig,
    /// Security checks on what the model reads (absent: the built-in ones).
    pub checks: Option<loom_guard::ChecksConfig>,
    /// The local sentence-embedding model (the injection check's embedding stage, the
    /// semantic cache).
    pub embedder: Option<EmbedderConfig>,
    /// The response cache.
    pub cache: loom_cache::CacheConfig,
}

/// `ai_gateway.embedder:` the local sentence-embedding model and the threads it runs on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderConfig {
    /// The model directory (`config.json`, `model.safetensors`, `tokenizer.json`), e.g.
    /// all-MiniLM-L6-v2's; loaded at start, never downloaded.
    pub path: std::path::PathBuf,
    /// Threads that run embeddings, off the front door's (default 1).
    #[serde(default = "one")]
    pub threads: usize,
    /// Embeddings that may wait for a thread; past that a request goes on without one (default 16).
    #[serde(default = "sixteen")]
    pub queue: usize,
}

fn one() -> usize {
    1
}

fn sixteen() -> usize {
    16
}

/// `ai_gateway.responses:` the conversations Loom keeps for `previous_response_id`, in the
/// state backend of `ai_gateway.state` (memory or Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponsesConfig {
    /// How long a stored response stays continuable (default 1h; on Redis, the key's expiry).
    #[serde(with = "humantime_serde")]
    pub store_ttl: Duration,
    /// Most conversations kept in memory, the oldest dropped first (default 10 000; 0 keeps
    /// none, on either backend). Redis is bounded by `store_ttl` and its own `maxmemory`.
    pub max_conversations: u64,
    /// Most bytes (as JSON) all conversations kept in memory may take (default 256 MiB).
    pub max_bytes: u64,
    /// Most bytes (as JSON) one conversation may take, on either backend (default 16 MiB);
    /// a longer one is not kept, and continuing it answers 404.
    pub max_conversation_bytes: u64,
}

impl Default for ResponsesConfig {
    fn default() -> Self {
        ResponsesConfig {
            store_ttl: Duration::from_secs(3600),
            max_conversations: 10_000,
            max_bytes: 256 * 1024 * 1024,
            max_conversation_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Default `ai_gateway.models_refresh`.
pub const DEFAULT_MODELS_REFRESH: std::time::Duration = std::time::Duration::from_secs(600);

/// `ai_gateway.token_accounting:` usage records, the ledger and prices.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenAccountingConfig {
    /// SQLite file that keeps every usage record across restarts; none keeps usage in memory only.
    pub ledger_path: Option<std::path::PathBuf>,
    /// Longest time a record waits before it is committed (the crash-loss window).
    #[serde(with = "humantime_serde")]
    pub flush_interval: std::time::Duration,
    /// Model name prefix -> price, overriding the built-in table.
    pub prices: BTreeMap<String, loom_tokens::accounting::Price>,
    /// Model name prefix -> tokenizer (`o200k_base`, `cl100k_base` or a `tokenizer.json` path).
    pub tokenizers: BTreeMap<String, loom_tokens::TokenizerSpec>,
    /// Count every request's input tokens exactly before sending it (always on when a
    /// routing block uses the `cost` strategy).
    pub count_input: bool,
    /// Memory budget, in bytes, of the in-memory usage totals per group; groups past it
    /// add up under `(other)` (see `loom_tokens::accounting::aggregate`).
    pub max_aggregate_bytes: u64,
}

impl Default for TokenAccountingConfig {
    fn default() -> Self {
        TokenAccountingConfig {
            ledger_path: None,
            flush_interval: std::time::Duration::from_secs(1),
            prices: BTreeMap::new(),
            tokenizers: BTreeMap::new(),
            count_input: false,
            max_aggregate_bytes: loom_tokens::accounting::DEFAULT_MAX_AGGREGATE_BYTES as u64,
        }
    }
}

impl Default for AiGatewayConfig {
    fn default() -> Self {
        AiGatewayConfig {
            enabled: true,
            providers: Vec::new(),
            routing: RoutingConfig::default(),
            model_mapping: BTreeMap::new(),
            streaming: StreamingConfig::default(),
            token_accounting: TokenAccountingConfig::default(),
            models_refresh: DEFAULT_MODELS_REFRESH,
            auth: loom_guard::AuthConfig::default(),
            rate_limits: Vec::new(),
            budgets: Vec::new(),
            reservations: loom_guard::ReservationsConfig::default(),
            state: loom_guard::StateConfig::default(),
            responses: ResponsesConfig::default(),
            checks: None,
            embedder: None,
            cache: loom_cache::CacheConfig::default(),
        }
    }
}

impl AiGatewayConfig {
    /// The provider named `name`, if configured.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|provider| provider.name == name)
    }

    /// The model to send to `provider` for a client's `model` (the mapped name, or `model` itself).
    pub fn provider_model<'a>(&'a self, model: &'a str, provider: &str) -> &'a str {
        self.model_mapping
            .get(model)
            .and_then(|per_provider| per_provider.get(provider))
            .map_or(model, String::as_str)
    }
}

pub use loom_routing::config::{FailoverConfig, HealthConfig, RoutingConfig, RoutingTarget, Strategy};

/// `streaming:` server-sent events behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamingConfig {
    /// Whether clients may stream (`"stream": true`).
    pub enabled: bool,
    /// Longest time a chunk may wait to be batched before it is flushed; 0 flushes every chunk.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig { enabled: true, flush_interval: Duration::ZERO }
    }
}

/// One `routes:` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique route id, used in logs and metrics.
    pub id: String,
    /// Path pattern: exact, or a prefix ending in `/*`.
    pub path: String,
    /// Whether the AI gateway serves this route.
    #[serde(default)]
    pub ai_gateway: bool,
    /// Routing for this route only, instead of `ai_gateway.routing`.
    #[serde(default)]
    pub routing: Option<RoutingConfig>,
    /// Security checks for this route only, instead of `ai_gateway.checks`.
    #[serde(default)]
    pub checks: Option<loom_guard::ChecksConfig>,
    /// What the response cache does differently on this route.
    #[serde(default)]
    pub cache: Option<loom_cache::RouteCacheConfig>,
}

impl RouteConfig {
    /// The route used when `routes` is empty: `{id: ai, path: /v1/*, ai_gateway: true}`.
    pub fn default_ai_route() -> Self {
        RouteConfig {
            id: "ai".to_owned(),
            path: "/v1/*".to_owned(),
            ai_gateway: true,
            routing: None,
            checks: None,
            cache: None,
        }
    }
}
