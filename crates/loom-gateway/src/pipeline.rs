//! The pipeline every AI request goes through behind the front door, composed in one place.

use loom_cache::CacheLayer;
use loom_core::{LlmRequest, LlmResponse, LoomError};
use loom_guard::auth::AuthLayer;
use loom_guard::check::CheckLayer;
use loom_guard::rate_limit::RateLimitLayer;
use loom_routing::Router;
use loom_tokens::accounting::{CountTokensLayer, TokenAccountingLayer};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

use crate::provider_metrics::MetricsLayer;
use crate::scrub::ScrubErrorsLayer;

/// The stages behind a front door, boxed so that adding a stage changes no type.
pub type Pipeline = BoxCloneSyncService<LlmRequest, LlmResponse, LoomError>;

/// The stages every route's pipeline shares (each route has a router of its own).
#[derive(Clone)]
pub struct Stages {
    /// Removes configured secrets from every error that leaves.
    pub scrub_errors: ScrubErrorsLayer,
    /// Turns a virtual key into the request's identity (when authentication is on).
    pub auth: Option<AuthLayer>,
    /// Rate limits and budgets (when any can apply).
    pub rate_limits: Option<RateLimitLayer>,
    /// Security checks on the request's input (when any are configured).
    pub checks: Option<CheckLayer>,
    /// Counts usage and cost of every request.
    pub accounting: TokenAccountingLayer,
    /// Answers from the response cache, and stores good answers (when caching is on).
    pub cache: Option<CacheLayer>,
    /// Counts and times the requests that reach a provider.
    pub metrics: MetricsLayer,
    /// Counts a request's tokens when the provider cannot.
    pub count_tokens: CountTokensLayer,
}

/// The stack a request goes through, top to bottom:
///
/// 1. the front door ([`FrontDoor`](crate::front_door::FrontDoor), the HTTP edge): request id,
///    route, body size and time limits, the request's deadline, parsing into an
///    [`LlmRequest`]; the answer is written back in the client's format;
/// 2. error scrubbing ([`ScrubErrorsLayer`]): no configured secret leaves in an error;
/// 3. authentication ([`AuthLayer`]): the virtual key becomes the request's identity, or
///    the request gets 401/403;
/// 4. rate limits and budgets ([`RateLimitLayer`]): reserve before the call, settle with
///    the recorded usage after it, or 429;
/// 5. security checks ([`CheckLayer`]), when configured: prompt injection and content
///    filters on what the model will read; a blocked request gets 400 and goes no further
///    (it is recorded in usage at zero cost), a flagged one an `x-loom-guard` header;
/// 6. token accounting ([`TokenAccountingLayer`]): the input estimate on the way in; usage,
///    cost and one record per request on the way out, streams included;
/// 7. the response cache ([`CacheLayer`]), when on: a stored answer to the same request
///    (whole or replayed as a stream) goes back at once with `x-loom-cache: hit`, and is
///    accounted at zero cost with its savings; a good answer from a provider is stored;
/// 8. provider metrics ([`MetricsLayer`]): requests and durations per provider and model;
/// 9. the router ([`Router`]): model mapping, strategy, failover, health;
/// 10. around each of its targets, the provider-scoped limits
///     ([`RateLimitLayer::for_provider`]): a provider at its limit is skipped;
/// 11. the provider adapters: canonical to wire format and back.
pub fn pipeline<S>(stages: &Stages, router: Router<S>) -> Pipeline
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    let stack = ServiceBuilder::new()
        .layer(stages.scrub_errors.clone())
        .option_layer(stages.auth.clone())
        .option_layer(stages.rate_limits.clone())
        .option_layer(stages.checks.clone())
        .layer(stages.accounting.clone())
        .option_layer(stages.cache.clone())
        .layer(stages.metrics.clone())
        .service(router);
    BoxCloneSyncService::new(stack)
}

/// The stack of token counts (`/v1/messages/count_tokens`): counting generates nothing, so
/// it is neither accounted nor a provider request in the metrics.
///
/// 1. error scrubbing ([`ScrubErrorsLayer`]);
/// 2. authentication ([`AuthLayer`]), when on: counting needs a key like any call;
/// 3. the count ([`CountTokensLayer`]): the provider's, or Loom's tokenizers' when it has none;
/// 4. the router, which asks the provider a request for the model would go to.
pub fn token_counter<S>(stages: &Stages, router: Router<S>) -> Pipeline
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    let stack = ServiceBuilder::new()
        .layer(stages.scrub_errors.clone())
        .option_layer(stages.auth.clone())
        .layer(stages.count_tokens.clone())
        .service(router);
    BoxCloneSyncService::new(stack)
}
