//! [`RateLimit`], the service of [`RateLimitLayer`](super::RateLimitLayer).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use loom_core::{ErrorKind, LlmRequest, LlmResponse, LoomError, RequestPayload};
use loom_tokens::accounting::{
    Outcome, RecordedUsage, UsageRecord, UsageReport, UsageSource, rough_input_tokens,
};
use tower::{Service, ServiceExt};
use tracing::warn;

use super::headers::{over_budget, rate_limited, write_rate_limit_headers};
use super::layer::Settings;
use super::provider::provider_limits_apply;
use crate::auth::AuthenticatedKey;
use crate::limits::{LimitKind, Subject};
use crate::{
    BudgetCheck, BudgetScope, BudgetUnit, Decision, FailMode, GuardError, LimitCheck, Refusal, Reservation,
    usd_to_nano,
};

/// The service [`RateLimitLayer`](super::RateLimitLayer) produces.
#[derive(Clone)]
pub struct RateLimit<S> {
    pub(super) inner: S,
    pub(super) settings: Arc<Settings>,
}

impl<S> Service<LlmRequest> for RateLimit<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        // The service that was polled ready serves this request; a clone waits for the next.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(guarded(self.settings.clone(), ready, request))
    }
}

/// What a request reserves: every limit and budget check that applies to it.
struct Checks {
    limits: Vec<LimitCheck>,
    budgets: Vec<BudgetCheck>,
}

fn checks(settings: &Settings, request: &LlmRequest, subject: &Subject) -> Checks {
    let key = request.context.extensions.get::<AuthenticatedKey>();
    let (key_limits, key_budgets) =
        key.map_or((&[][..], &[][..]), |key| (key.0.limits.as_slice(), key.0.budgets.as_slice()));
    let (input, output) = estimate(settings, request);
    let tokens = input.saturating_add(output);
    let limits = settings.limits.checks(subject, key_limits, tokens);
    let budgets = if settings.budgets.is_empty() && key_budgets.is_empty() {
        Vec::new()
    } else {
        let cost =
            settings.prices.price(None, subject.model).map_or(0.0, |price| price.cost(input, 0, output));
        settings.budgets.checks(subject, key_budgets, SystemTime::now(), usd_to_nano(cost), tokens)
    };
    Checks { limits, budgets }
}

/// The request's estimated input and output tokens: its rough input size, and its
/// `max_tokens` or the configured default.
fn estimate(settings: &Settings, request: &LlmRequest) -> (u64, u64) {
    let input = rough_input_tokens(&request.payload);
    let output = match &request.payload {
        RequestPayload::Chat(chat) => chat.output_limit().map_or(settings.default_output_tokens, u64::from),
        RequestPayload::Embeddings(_) | RequestPayload::CountTokens(_) => 0,
    };
    (input, output)
}

/// The tokens a request reserves from token limits.
pub(super) fn estimated_tokens(settings: &Settings, request: &LlmRequest) -> u64 {
    let (input, output) = estimate(settings, request);
    input.saturating_add(output)
}

pub(super) fn subject_of(request: &LlmRequest) -> Subject<'_> {
    let context = &request.context;
    Subject {
        key: context.identity.key_id.as_deref(),
        user: context.identity.user.as_deref(),
        team: context.identity.team.as_deref(),
        model: request.payload.model(),
        // Unknown until the router picks one: provider-scoped limits wait for it.
        provider: None,
        route: context.route.as_deref(),
    }
}

async fn guarded<S>(
    settings: Arc<Settings>,
    inner: S,
    mut request: LlmRequest,
) -> Result<LlmResponse, LoomError>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError>,
{
    let Checks { limits, budgets } = checks(&settings, &request, &subject_of(&request));
    // Provider-scoped limits, checked inside the router, settle through the same report.
    let report = provider_limits_apply(&settings, &request).then(UsageReport::new);
    if limits.is_empty() && budgets.is_empty() {
        if let Some(report) = report {
            request.context.extensions.insert(report);
        }
        return inner.oneshot(request).await;
    }
    let decision = settings.state.acquire(&limits, &budgets, settings.reservation_ttl).await;
    let (reservation, statuses) = match decision {
        Ok(Decision::Allowed { reservation, limits: statuses }) => (reservation, statuses),
        Ok(Decision::Refused(refusal)) => {
            return Err(refuse(&settings, &request, &limits, &budgets, refusal));
        }
        Err(error) => {
            let fail_open = (limits.is_empty() || settings.on_state_error.rate_limits == FailMode::FailOpen)
                && (budgets.is_empty() || settings.on_state_error.budgets == FailMode::FailOpen);
            return match state_failed(&settings, &error, fail_open, "Rate limits and budgets") {
                None => inner.oneshot(request).await,
                Some(refused) => Err(refused),
            };
        }
    };
    for check in &limits {
        settings.observer.rate_limit_decision(check.scope, true);
    }
    let below = report.is_some();
    if !reservation.is_empty() || below {
        let report = report.unwrap_or_default();
        if !reservation.is_empty() {
            let (settings, scopes) = (settings.clone(), budget_scopes(&budgets));
            report.on_usage(move |usage| settle(&settings, reservation, usage, &scopes));
        }
        request.context.extensions.insert(report);
    }
    // Provider limits below may have written tighter headers of their own.
    match inner.oneshot(request).await {
        Ok(mut response) => {
            write_rate_limit_headers(&mut response.headers, &statuses, below);
            Ok(response)
        }
        Err(mut error) => {
            write_rate_limit_headers(error.headers.get_or_insert_default(), &statuses, below);
            Err(error)
        }
    }
}

/// The error of a refused request, recorded in usage with its reason.
fn refuse(
    settings: &Settings,
    request: &LlmRequest,
    limits: &[LimitCheck],
    budgets: &[BudgetCheck],
    refusal: Refusal,
) -> LoomError {
    let subject = subject_of(request);
    let (reason, error) = match refusal {
        Refusal::RateLimited { check_index, retry_after, too_large, limits: statuses } => {
            let check = limits.get(check_index);
            if let Some(check) = check {
                settings.observer.rate_limit_decision(check.scope, false);
            }
            (refusal_reason(check), rate_limited(check, &subject, retry_after, too_large, &statuses))
        }
        Refusal::OverBudget { check_index, spent, in_flight, limit, .. } => {
            let check = budgets.get(check_index);
            let reason = check.map_or_else(
                || "budget".to_owned(),
                |check| {
                    let unit = match check.unit {
                        BudgetUnit::NanoUsd => "cost",
                        BudgetUnit::Tokens => "tokens",
                    };
                    format!("budget:{}:{unit}", check.scope.as_str())
                },
            );
            (reason, over_budget(check, spent.saturating_add(in_flight), limit))
        }
    };
    if let Some(recorder) = &settings.recorder {
        recorder.record(refused_record(request, &reason, error.http_status()));
    }
    error
}

/// Why a rate limit refused a request, for its usage record: `rate_limit:<scope>:<kind>`.
pub(super) fn refusal_reason(check: Option<&LimitCheck>) -> String {
    check.map_or_else(
        || "rate_limit".to_owned(),
        |check| {
            let kind = match check.kind {
                LimitKind::Requests => "requests",
                LimitKind::Tokens => "tokens",
            };
            format!("rate_limit:{}:{kind}", check.scope.as_str())
        },
    )
}

/// The usage record of a refused request: nothing used, nothing spent.
pub(crate) fn refused_record(request: &LlmRequest, reason: &str, status: u16) -> UsageRecord {
    let context = &request.context;
    UsageRecord {
        request_id: context.request_id.clone(),
        time: SystemTime::now(),
        key_id: context.identity.key_id.clone(),
        user: context.identity.user.clone(),
        team: context.identity.team.clone(),
        route: context.route.clone(),
        provider: None,
        model_requested: request.payload.model().to_owned(),
        model_served: None,
        input_tokens: 0,
        output_tokens: 0,
        cached_tokens: 0,
        reasoning_tokens: 0,
        source: UsageSource::Counted,
        cost: 0.0,
        latency: Instant::now().saturating_duration_since(context.received_at),
        time_to_first_byte: None,
        status,
        outcome: Outcome::Refused,
        saved_cost: 0.0,
        cache_hit: false,
        streamed: matches!(&request.payload, RequestPayload::Chat(chat) if chat.is_stream()),
        refusal: Some(Arc::from(reason)),
        guard: None,
    }
}

fn budget_scopes(budgets: &[BudgetCheck]) -> Vec<BudgetScope> {
    let mut scopes: Vec<BudgetScope> = Vec::new();
    for check in budgets.iter().filter(|check| check.unit == BudgetUnit::NanoUsd) {
        if !scopes.contains(&check.scope) {
            scopes.push(check.scope);
        }
    }
    scopes
}

/// Settles the reservation with the usage accounting recorded (`None`: no record was
/// made, the request never reached accounting, so it is released), without waiting.
pub(super) fn settle(
    settings: &Settings,
    reservation: Reservation,
    usage: Option<RecordedUsage>,
    cost_scopes: &[BudgetScope],
) {
    let Some(usage) = usage else {
        settings.state.settle_soon(reservation, 0, 0);
        return;
    };
    let tokens = usage.input_tokens.saturating_add(usage.output_tokens);
    settings.state.settle_soon(reservation, tokens, usd_to_nano(usage.cost));
    for scope in cost_scopes {
        settings.observer.budget_spent(*scope, usage.cost);
    }
}

/// Reports a state-backend failure: `None` when the request goes on (`fail_open`), else
/// the 503 it gets, saying `what` cannot be checked.
pub(super) fn state_failed(
    settings: &Settings,
    error: &GuardError,
    fail_open: bool,
    what: &str,
) -> Option<LoomError> {
    settings.observer.state_error(fail_open);
    warn_state_error(&error.to_string(), fail_open);
    (!fail_open).then(|| {
        LoomError::new(
            ErrorKind::Overloaded,
            format!("{what} cannot be checked right now (their state backend is unavailable)"),
        )
        .with_code("state_unavailable")
    })
}

/// Logs a state-backend failure at most every 10 seconds, with how many there were.
fn warn_state_error(error: &str, failed_open: bool) {
    static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);
    static SINCE: AtomicU64 = AtomicU64::new(0);
    let failures = SINCE.fetch_add(1, Ordering::Relaxed) + 1;
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST_LOGGED.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        SINCE.store(0, Ordering::Relaxed);
        warn!(error, failures, failed_open, "rate-limit and budget state unavailable");
    }
}
