//! Configuration schema and loading.
//!
//! A config is YAML ([`LoomConfig`]). Loading substitutes `${VAR}` / `${VAR:-default}` in
//! string values from the environment, applies `LOOM_<KEY>__<KEY>=value` overrides, parses
//! with unknown keys rejected, and validates; every error names the key at fault.
//!
//! ```
//! use loom_gateway::config::LoomConfig;
//!
//! let yaml = "
//! ai_gateway:
//!   providers:
//!     - name: openai
//!       type: openai
//!       api_key: ${OPENAI_API_KEY}
//! ";
//! let env = |name: &str| (name == "OPENAI_API_KEY").then(|| "sk-test".to_owned());
//! let config = LoomConfig::from_yaml_str(yaml, &env).unwrap();
//! assert_eq!(config.ai_gateway.providers[0].name, "openai");
//! assert_eq!(config.effective_routes()[0].path, "/v1/*");
//!
//! let typo = "ai_gateway:\n  providers:\n    - nmae: openai\n";
//! let error = LoomConfig::from_yaml_str(typo, &env).unwrap_err();
//! assert!(error.to_string().starts_with("ai_gateway.providers[0]"));
//! ```

mod error;
mod interpolate;
mod limits;
mod load;
mod schema;
mod summary;
mod validate;
mod yaml;

pub use error::ConfigError;
pub use load::{ConfigBuilder, ENV_IGNORED, ENV_PREFIX, ENV_SEPARATOR};
pub use schema::{
    AdminConfig, AiGatewayConfig, DEFAULT_MAX_BUFFERED_BODY_BYTES, FailoverConfig, HealthConfig, LogFormat,
    LoggingConfig, LoomConfig, ResponsesConfig, RouteConfig, RoutingConfig, RoutingTarget, ServerConfig,
    Strategy, StreamingConfig, TokenAccountingConfig,
};
pub use summary::provider_is_active;
