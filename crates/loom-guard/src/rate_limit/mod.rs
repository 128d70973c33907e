//! Rate limits and budgets: [`RateLimitLayer`] reserves, before a request goes on, one
//! request and its estimated tokens from every rate limit that applies, and its estimated
//! cost and tokens from every budget; all of them, or the request gets 429. After the call
//! the reservation is settled with what token accounting recorded (streams when they end,
//! a client that left included), or released when the request never reached accounting.
//!
//! The estimate is the input's rough size plus the request's `max_tokens` (or a
//! configured default). Allowed answers carry OpenAI's `x-ratelimit-limit-requests`,
//! `x-ratelimit-remaining-requests`, `x-ratelimit-reset-requests` and the `-tokens` trio;
//! refusals carry them too, with `Retry-After` (and `retry-after-ms`) for rate limits and
//! an `insufficient_quota` error naming the budget and its reset for budgets. Refused
//! requests are recorded in usage with their reason, at zero cost.
//!
//! `scope: provider` limits wait for the router's pick: [`RateLimitLayer::for_provider`]
//! makes a [`ProviderRateLimitLayer`] to put around each of the router's targets. A
//! provider at its limit answers a 429 marked as Loom's own refusal, which the router
//! takes as "try the next provider".
//!
//! ```
//! use std::sync::Arc;
//! use loom_core::{ChatRequest, LlmRequest, LlmResponse, LoomError, Message, RequestContext, ResponsePayload, Role};
//! use loom_guard::rate_limit::RateLimitLayer;
//! use loom_guard::{Budgets, GuardState, LimitConfig, Limits, Scope};
//! use tower::{Layer, ServiceExt};
//!
//! fn answer() -> loom_core::ChatResponse {
//!     serde_json::from_str(r#"{"id":"c","model":"gpt-4o","choices":[]}"#).unwrap()
//! }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let limits = Limits::new(&[LimitConfig {
//!     scope: Scope::Global,
//!     requests_per_minute: Some(1),
//!     ..LimitConfig::default()
//! }]);
//! let layer = RateLimitLayer::new(limits, Budgets::new(&[]), GuardState::memory(1000));
//! let backend = tower::service_fn(|_: LlmRequest| async {
//!     Ok::<_, LoomError>(LlmResponse::new("echo", ResponsePayload::Chat(answer().into())))
//! });
//! let service = layer.layer(backend);
//! let hi = || LlmRequest::chat(RequestContext::new("r"), ChatRequest::new("gpt-4o", vec![Message::text(Role::User, "Hi")]));
//!
//! let answer = service.clone().oneshot(hi()).await.unwrap();
//! assert_eq!(answer.headers["x-ratelimit-remaining-requests"], "0");
//! let refused = service.oneshot(hi()).await.unwrap_err();
//! assert_eq!(refused.http_status(), 429);
//! assert_eq!(refused.headers.unwrap()["retry-after"], "60");
//! # });
//! ```

mod headers;
mod layer;
mod provider;
mod service;
#[cfg(test)]
mod tests;

pub use layer::{DEFAULT_OUTPUT_TOKENS, DEFAULT_RESERVATION_TTL, RateLimitLayer};
pub use provider::{ProviderRateLimit, ProviderRateLimitLayer};
pub use service::RateLimit;
pub(crate) use service::refused_record;
