//! [`GuardObserver`]: what the guard layers decide, for metrics.

use crate::{BudgetScope, Scope};

/// Why authentication refused a request (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// No key was presented.
    MissingKey,
    /// The key is not known.
    UnknownKey,
    /// The key is past its expiry.
    ExpiredKey,
    /// The key was revoked.
    RevokedKey,
    /// The key may not use the requested model.
    ModelNotAllowed,
    /// The key may not use the route.
    RouteNotAllowed,
}

impl AuthFailure {
    /// The label value, also the error `code` the client gets.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::MissingKey => "missing_api_key",
            AuthFailure::UnknownKey => "invalid_api_key",
            AuthFailure::ExpiredKey => "expired_api_key",
            AuthFailure::RevokedKey => "revoked_api_key",
            AuthFailure::ModelNotAllowed => "model_not_allowed",
            AuthFailure::RouteNotAllowed => "route_not_allowed",
        }
    }
}

/// Receives the guard layers' decisions (the gateway turns them into Prometheus metrics).
/// Every method does nothing by default.
pub trait GuardObserver: Send + Sync {
    /// Authentication refused a request.
    fn auth_failed(&self, _failure: AuthFailure) {}
    /// A rate limit of `scope` let a request through (`allowed`) or refused it.
    fn rate_limit_decision(&self, _scope: Scope, _allowed: bool) {}
    /// A budget of `scope` was debited `usd` after a request.
    fn budget_spent(&self, _scope: BudgetScope, _usd: f64) {}
    /// The state backend failed; the request went through (`failed_open`) or was refused.
    fn state_error(&self, _failed_open: bool) {}
    /// A security check decided on a request: `action` is `block`, `flag` or `log` when it
    /// fired, `allow` when it did not.
    fn check_decision(&self, _check: &str, _action: &str) {}
    /// The injection check's embedding stage was asked for an embedding: `outcome` is
    /// `ok`, `saturated` (the pool's queue was full), `timeout` or `error`.
    fn embedding(&self, _outcome: &'static str) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl GuardObserver for NoObserver {}
