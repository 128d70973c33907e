//! `MetricsLayer`: counts the requests that reach a provider, per provider and model, and
//! times them, streams included (`loom_ai_requests_total`, `loom_ai_duration_seconds`);
//! and `ProviderTokens`, the usage observer that feeds token counts to provider statistics.
//!
//! ```
//! use std::sync::Arc;
//! use loom_core::{ChatRequest, LlmRequest, Message, RequestContext, Role};
//! use loom_gateway::metrics::Metrics;
//! use loom_gateway::provider_metrics::MetricsLayer;
//! use loom_providers::{Provider, ProviderConfig, ProviderType};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Arc::new(Metrics::with_models(["gpt-4o"]));
//! let provider = Provider::from_config(&ProviderConfig::new("mock", ProviderType::Mock))?;
//! let chat = ChatRequest::new("gpt-4o", vec![Message::text(Role::User, "hi")]);
//! MetricsLayer::new(metrics.clone()).layer(provider).oneshot(LlmRequest::chat(RequestContext::new("r"), chat)).await?;
//! let text = metrics.encode(&[], loom_gateway::metrics::ExpositionFormat::PrometheusText);
//! assert!(text.contains(r#"loom_ai_requests_total{provider="mock",model="gpt-4o"} 1"#));
//! # Ok(())
//! # }
//! ```

mod layer;
mod service;
mod tokens;

pub use layer::MetricsLayer;
pub use service::MetricsService;
pub use tokens::ProviderTokens;
