//! TEMPORARY stand-in; replaced by the config branch.
use loom_providers::ProviderConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct LoomConfig {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub logging: LoggingConfig,
    pub ai_gateway: AiGatewayConfig,
    pub routes: Vec<RouteConfig>,
}
#[derive(Debug, Clone, Deserialize)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: u64,
    pub shutdown_timeout: Duration,
    pub request_timeout: Duration,
}
#[derive(Debug, Clone, Deserialize)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub enabled: bool,
}
#[derive(Debug, Clone, Deserialize)]
pub struct LoggingConfig {
    pub level: String,
    pub format: LogFormat,
}
#[derive(Debug, Clone, Copy, Deserialize)]
pub enum LogFormat {
    Text,
    Json,
}
#[derive(Debug, Clone, Deserialize)]
pub struct AiGatewayConfig {
    pub enabled: bool,
    pub providers: Vec<ProviderConfig>,
    pub routing: RoutingConfig,
    pub model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    pub streaming: StreamingConfig,
}
#[derive(Debug, Clone, Deserialize)]
pub struct RoutingConfig {
    pub providers: Vec<RoutingTarget>,
}
#[derive(Debug, Clone, Deserialize)]
pub struct RoutingTarget {
    pub name: String,
    pub priority: Option<u32>,
}
#[derive(Debug, Clone, Deserialize)]
pub struct StreamingConfig {
    pub enabled: bool,
    pub flush_interval: Duration,
}
#[derive(Debug, Clone, Deserialize)]
pub struct RouteConfig {
    pub id: String,
    pub path: String,
    pub ai_gateway: bool,
    pub routing: Option<RoutingConfig>,
}
impl LoomConfig {
    pub fn effective_routes(&self) -> Vec<RouteConfig> {
        self.routes.clone()
    }
}
#[derive(Debug, thiserror::Error)]
#[error("config")]
pub struct ConfigError;
impl LoomConfig {
    pub fn load(_p: &std::path::Path) -> Result<LoomConfig, ConfigError> {
        Err(ConfigError)
    }
    pub fn summary(&self) -> String {
        String::new()
    }
    pub fn inactive_features(&self) -> Vec<String> {
        Vec::new()
    }
}
