//! # loom-guard
//!
//! Virtual keys, rate limits and budgets for an AI gateway, decided the same way in memory
//! or shared on Redis by many gateway instances.
//!
//! - [`KeyStore`]: keys from configuration (plaintext or SHA-256) and keys created at run
//!   time; looked up by hash, compared in constant time; only hashes are stored.
//! - [`Limits`]: which GCRA buckets a request touches (requests per second/minute, tokens
//!   per minute, at the scopes key, user, team, model, provider, route and global).
//! - [`Budgets`]: which budget periods (cost in nano-USD, tokens; calendar day/week/month
//!   in UTC, or rolling) a request touches.
//! - [`GuardState`]: takes all of a request's limits and budgets at once or none
//!   ([`GuardState::acquire`]), then settles the reservation with the real usage.
//!
//! The tower layers, in the order a gateway stacks them: [`auth::AuthLayer`] (virtual key
//! to identity), then [`rate_limit::RateLimitLayer`] (limits and budgets: reserve before
//! the call, settle with the recorded usage after it), then [`check::CheckLayer`] (security
//! checks on what the model reads and answers: prompt injection, content filters, personal
//! data and credentials).
//!
//! Feature `embed` (off by default): the prompt-injection check's embedding stage, on
//! `loom_tokens::embed`'s local MiniLM ([`check::CheckLayer::with_embedder`]).
//!
//! ```
//! use std::time::Duration;
//! use loom_guard::{Decision, GuardState, LimitConfig, Limits, Refusal, Scope, Subject};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let limits = Limits::new(&[LimitConfig {
//!     scope: Scope::User,
//!     matches: None,
//!     requests_per_second: None,
//!     requests_per_minute: Some(2),
//!     tokens_per_minute: Some(1000),
//!     burst: None,
//! }]);
//! let state = GuardState::memory(1_000_000);
//! let ann = Subject { user: Some("ann"), model: "gpt-4o", ..Subject::default() };
//!
//! // Reserve one request and an estimate of 600 tokens.
//! let checks = limits.checks(&ann, &[], 600);
//! let Decision::Allowed { reservation, limits: status } =
//!     state.acquire(&checks, &[], Duration::from_secs(300)).await.unwrap()
//! else {
//!     panic!("the first request fits");
//! };
//! assert_eq!((status[0].remaining, status[1].remaining), (1, 400));
//!
//! // 600 more tokens do not fit now; after the call used only 150, they do.
//! let checks = limits.checks(&ann, &[], 600);
//! assert!(matches!(
//!     state.acquire(&checks, &[], Duration::from_secs(300)).await.unwrap(),
//!     Decision::Refused(Refusal::RateLimited { check_index: 1, .. })
//! ));
//! state.settle(&reservation, 150, 0).await.unwrap();
//! assert!(matches!(
//!     state.acquire(&checks, &[], Duration::from_secs(300)).await.unwrap(),
//!     Decision::Allowed { .. }
//! ));
//! # });
//! ```
//!
//! A complete configuration (the `ai_gateway` keys `auth`, `rate_limits`, `budgets` and
//! `state`) loads like this:
//!
//! ```
//! use figment::{Figment, providers::{Format, Yaml}};
//! use loom_guard::{AuthConfig, BudgetsConfig, RateLimitsConfig, StateConfig};
//!
//! #[derive(serde::Deserialize)]
//! struct Guard { auth: AuthConfig, rate_limits: RateLimitsConfig, budgets: BudgetsConfig, state: StateConfig }
//!
//! let yaml = r#"
//! auth:
//!   enabled: true
//!   admin_key: admin-secret            # usually ${ADMIN_KEY}
//!   keys:
//!     - id: backend
//!       name: Backend service
//!       key: lk-backend-secret          # usually ${BACKEND_KEY}
//!       team: platform
//!       models: ["gpt-4o*", "claude-*"]
//!       limits:
//!         - {scope: key, requests_per_minute: 600}
//!       budgets:
//!         - {scope: key, period: day, max_cost_usd: 50}
//!     - id: notebook
//!       key_sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
//!       user: ann
//!       team: research
//!       allow_identity_headers: false
//!       expires_at: 2027-06-30T00:00:00Z
//!       metadata: {owner: ann@example.com}
//! rate_limits:
//!   - {scope: team, requests_per_minute: 1000, tokens_per_minute: 2000000}
//!   - {scope: model, match: "gpt-4o*", tokens_per_minute: 500000, burst: 100000}
//!   - {scope: user, requests_per_second: 5}
//!   - {scope: global, requests_per_second: 200}
//! budgets:
//!   - {scope: team, period: month, max_cost_usd: 1000}
//!   - {scope: user, period: 7d, max_tokens: 5000000}
//! state:
//!   backend: redis
//!   url: redis://:password@127.0.0.1:6379/0   # usually ${REDIS_URL}
//!   key_prefix: loom
//!   timeout: 250ms
//!   on_state_error: {rate_limits: fail_open, budgets: fail_closed}
//! "#;
//! let guard: Guard = Figment::from(Yaml::string(yaml)).extract().unwrap();
//! assert!(guard.auth.validate().is_empty());
//! assert!(guard.state.validate().is_empty());
//! assert!(loom_guard::validate_limits(&guard.rate_limits, "ai_gateway.rate_limits").is_empty());
//! assert!(loom_guard::validate_budgets(&guard.budgets, "ai_gateway.budgets").is_empty());
//! assert_eq!(guard.auth.keys.len(), 2);
//! ```

pub mod auth;
mod bucket;
pub mod budgets;
pub mod check;
pub mod config;
mod error;
mod gcra;
pub mod inspect;
pub mod keys;
pub mod limits;
mod observer;
pub mod pattern;
pub mod rate_limit;
pub mod state;
mod time;

pub use budgets::{
    BudgetCheck, BudgetUnit, BudgetWindow, Budgets, ROLLING_SLOTS, period_bounds, usd_to_nano,
};
pub use check::{Action, CheckLayer, ChecksConfig, ContentFilterConfig, InjectionConfig, PiiConfig, Policy};
pub use config::{
    AuthConfig, Backend, BudgetConfig, BudgetScope, BudgetsConfig, ConfigProblem, DEFAULT_MAX_ENTRIES,
    FailMode, KeyConfig, LimitConfig, OnStateError, Period, RateLimitsConfig, ReservationsConfig, Scope,
    StateConfig, validate_budgets, validate_limits,
};
pub use error::GuardError;
pub use keys::{
    DEFAULT_REFRESH_INTERVAL, KEY_PREFIX, KeyHash, KeyPatch, KeySource, KeyStore, Lookup, NewKey, VirtualKey,
    generate_key,
};
pub use limits::{LimitCheck, LimitKind, Limits, Subject};
pub use observer::{AuthFailure, GuardObserver, NoObserver};
pub use state::{
    BudgetStatus, Decision, GuardState, LimitStatus, MemoryState, RedisState, Refusal, Reservation,
};
pub use time::Timestamp;
