//! # loom-routing
//!
//! The router: a `tower::Service<LlmRequest>` over provider services that applies
//! the model mapping, picks a provider by strategy (`priority`, `round_robin`,
//! smooth `weighted`, `cost`, peak-EWMA `latency`), fails over on the configured
//! status codes, connect errors, timeouts and broken answers (a body that is not the
//! provider's format or is cut off; streams only before their first byte), and skips
//! providers whose circuit breaker is open.
//!
//! The `cost` strategy reads a `loom_tokens::accounting::PriceTable`
//! ([`Router::with_prices`]): give it the table billing reads, and a request is routed
//! and billed by the same price.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use loom_core::{ChatRequest, LlmRequest, Message, RequestContext, ResponsePayload, Role};
//! use loom_providers::{Provider, ProviderConfig, ProviderType};
//! use loom_routing::{ProviderState, RouteTarget, Router, RoutingConfig, Strategy};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let routing = RoutingConfig { strategy: Strategy::RoundRobin, ..RoutingConfig::default() };
//! let targets = ["a", "b"].map(|name| RouteTarget {
//!     provider: Provider::from_config(&ProviderConfig::new(name, ProviderType::Mock)).unwrap(),
//!     state: Arc::new(ProviderState::new(name, routing.health.clone())),
//!     models: vec![],
//!     weight: 1,
//! });
//! let router = Router::new(targets.into(), &routing, BTreeMap::new());
//! let mut answered_by = Vec::new();
//! for id in 0..4 {
//!     let chat = ChatRequest::new("any", vec![Message::text(Role::User, "hi")]);
//!     let request = LlmRequest::chat(RequestContext::new(format!("req-{id}")), chat);
//!     answered_by.push(router.clone().oneshot(request).await.unwrap().provider.to_string());
//! }
//! assert_eq!(answered_by, ["a", "b", "a", "b"]);
//! # });
//! ```

pub mod config;
pub mod health;
pub mod router;
mod strategy;

pub use config::{FailoverConfig, HealthConfig, RoutingConfig, RoutingTarget, Strategy};
pub use health::{BreakerSnapshot, BreakerState, ProviderSnapshot, ProviderState};
pub use router::{RouteTarget, Router};
pub use strategy::DEFAULT_OUTPUT_ESTIMATE;
