//! [`ProviderRateLimitLayer`]: the provider-scoped limits, checked once the router has
//! picked a provider (a layer around each router target).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::Either;
use loom_core::{LlmRequest, LlmResponse, LoomError, RequestPayload};
use loom_tokens::accounting::UsageReport;
use tower::{Layer, Service, ServiceExt};

use super::headers::{rate_limited, write_rate_limit_headers};
use super::layer::Settings;
use super::service::{estimated_tokens, refusal_reason, settle, state_failed, subject_of};
use crate::auth::AuthenticatedKey;
use crate::config::Scope;
use crate::limits::Subject;
use crate::{Decision, FailMode, LimitKind, Refusal};

/// Enforces the `scope: provider` limits of one provider: made by
/// [`RateLimitLayer::for_provider`](super::RateLimitLayer::for_provider) and put around
/// each of the router's targets.
///
/// A refused attempt is a 429 marked as Loom's own refusal
/// ([`LoomError::refusal`]): the router tries another provider without counting it
/// against the refused one's health. Token reservations are settled through the
/// [`UsageReport`] the request-level stage leaves in the request.
#[derive(Clone)]
pub struct ProviderRateLimitLayer {
    pub(super) settings: Arc<Settings>,
    pub(super) provider: Arc<str>,
}

impl<S> Layer<S> for ProviderRateLimitLayer {
    type Service = ProviderRateLimit<S>;

    fn layer(&self, inner: S) -> ProviderRateLimit<S> {
        ProviderRateLimit { inner, settings: self.settings.clone(), provider: self.provider.clone() }
    }
}

/// The service [`ProviderRateLimitLayer`] produces.
#[derive(Clone)]
pub struct ProviderRateLimit<S> {
    inner: S,
    settings: Arc<Settings>,
    provider: Arc<str>,
}

type Guarded = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

impl<S> Service<LlmRequest> for ProviderRateLimit<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Either<Guarded, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        if !provider_limits_apply(&self.settings, &request) {
            return Either::Right(self.inner.call(request));
        }
        // The service that was polled ready serves this request; a clone waits for the next.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        Either::Left(Box::pin(guarded(self.settings.clone(), self.provider.clone(), ready, request)))
    }
}

/// Whether a provider-scoped limit (global, or the request's key's) may apply to `request`.
pub(super) fn provider_limits_apply(settings: &Settings, request: &LlmRequest) -> bool {
    if matches!(request.payload, RequestPayload::CountTokens(_)) {
        return false;
    }
    settings.limits.has_provider_limits()
        || request
            .context
            .extensions
            .get::<AuthenticatedKey>()
            .is_some_and(|key| key.0.limits.iter().any(|limit| limit.scope == Scope::Provider))
}

async fn guarded<S>(
    settings: Arc<Settings>,
    provider: Arc<str>,
    inner: S,
    request: LlmRequest,
) -> Result<LlmResponse, LoomError>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError>,
{
    let key_limits = request.context.extensions.get::<AuthenticatedKey>().map(|key| key.0.limits.as_slice());
    let subject = Subject { provider: Some(&provider), ..subject_of(&request) };
    let limits = settings.limits.provider_checks(
        &subject,
        key_limits.unwrap_or(&[]),
        estimated_tokens(&settings, &request),
    );
    if limits.is_empty() {
        return inner.oneshot(request).await;
    }
    let (reservation, statuses) = match settings.state.acquire(&limits, &[], settings.reservation_ttl).await {
        Ok(Decision::Allowed { reservation, limits: statuses }) => (reservation, statuses),
        Ok(Decision::Refused(Refusal::RateLimited {
            check_index,
            retry_after,
            too_large,
            limits: statuses,
        })) => {
            let check = limits.get(check_index);
            if let Some(check) = check {
                settings.observer.rate_limit_decision(check.scope, false);
            }
            let subject = Subject { provider: Some(&provider), ..subject_of(&request) };
            return Err(rate_limited(check, &subject, retry_after, too_large, &statuses)
                .with_refusal(refusal_reason(check)));
        }
        Ok(Decision::Refused(Refusal::OverBudget { .. })) => {
            return Err(LoomError::internal("a provider limit was refused as a budget"));
        }
        Err(error) => {
            let fail_open = settings.on_state_error.rate_limits == FailMode::FailOpen;
            return match state_failed(&settings, &error, fail_open, "Rate limits") {
                None => inner.oneshot(request).await,
                Some(refused) => Err(refused),
            };
        }
    };
    for check in &limits {
        settings.observer.rate_limit_decision(check.scope, true);
    }
    // Token reservations are settled with the recorded usage; without a report (no
    // request-level stage above), the estimate stands.
    if limits.iter().any(|check| check.kind == LimitKind::Tokens)
        && let Some(report) = request.context.extensions.get::<UsageReport>()
    {
        let settings = settings.clone();
        report.on_usage(move |usage| settle(&settings, reservation, usage, &[]));
    }
    match inner.oneshot(request).await {
        Ok(mut response) => {
            write_rate_limit_headers(&mut response.headers, &statuses, false);
            Ok(response)
        }
        Err(mut error) => {
            write_rate_limit_headers(error.headers.get_or_insert_default(), &statuses, false);
            Err(error)
        }
    }
}
