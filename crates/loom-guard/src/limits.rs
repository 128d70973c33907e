//! Which rate-limit buckets a request touches.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::bucket::{push_pattern, push_value};
use crate::config::{LimitConfig, Scope};
use crate::pattern;

/// Who and what a request is, as far as limits and budgets care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The virtual key's id.
    pub key: Option<&'a str>,
    /// The user.
    pub user: Option<&'a str>,
    /// The team.
    pub team: Option<&'a str>,
    /// The requested model.
    pub model: &'a str,
    /// The provider, when known.
    pub provider: Option<&'a str>,
    /// The route id.
    pub route: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// The subject's value for a scope (`None`: the request has none, or `Global`).
    pub fn value(&self, scope: Scope) -> Option<&'a str> {
        match scope {
            Scope::Key => self.key,
            Scope::User => self.user,
            Scope::Team => self.team,
            Scope::Model => Some(self.model),
            Scope::Provider => self.provider,
            Scope::Route => self.route,
            Scope::Global => None,
        }
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Requests.
    Requests,
    /// Tokens.
    Tokens,
}

/// One bucket a request must fit in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCheck {
    /// State key, e.g. `rl:team:eng:rpm:100` (values escaped; the rate is part of the name,
    /// so a changed rate starts a fresh bucket and equal limits share one).
    pub bucket: String,
    /// The scope of the limit.
    pub scope: Scope,
    /// Requests or tokens.
    pub kind: LimitKind,
    /// Amount per period, for the `x-ratelimit-limit-*` headers.
    pub limit: u64,
    /// The period `limit` is per.
    pub period: Duration,
    /// How much may be spent at once.
    pub burst: u64,
    /// What this request spends: 1 request, or its estimated tokens.
    pub cost: u64,
}

/// The globally configured limits (`ai_gateway.rate_limits`).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    limits: Vec<LimitConfig>,
}

impl Limits {
    /// Limits from their configuration.
    pub fn new(limits: &[LimitConfig]) -> Self {
        Limits { limits: limits.to_vec() }
    }

    /// Whether no limit is configured globally.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// The buckets a request of `subject` spending `tokens` touches before routing: every
    /// global limit whose scope value the request has (and matches), then the key's own
    /// limits, kept inside the key (`rl:key:<id>:...`). A bucket reached twice is checked
    /// once, with the smaller burst. Provider-scoped limits wait for the router's pick
    /// ([`provider_checks`](Self::provider_checks)).
    pub fn checks(&self, subject: &Subject, key_limits: &[LimitConfig], tokens: u64) -> Vec<LimitCheck> {
        self.checks_where(subject, key_limits, tokens, |scope| scope != Scope::Provider)
    }

    /// The provider-scoped buckets a request of `subject` (with its provider) spending
    /// `tokens` touches: checked per attempt, once the router has picked a provider.
    pub fn provider_checks(
        &self,
        subject: &Subject,
        key_limits: &[LimitConfig],
        tokens: u64,
    ) -> Vec<LimitCheck> {
        self.checks_where(subject, key_limits, tokens, |scope| scope == Scope::Provider)
    }

    /// Whether any global limit is provider-scoped.
    pub fn has_provider_limits(&self) -> bool {
        self.limits.iter().any(|limit| limit.scope == Scope::Provider)
    }

    fn checks_where(
        &self,
        subject: &Subject,
        key_limits: &[LimitConfig],
        tokens: u64,
        wanted: impl Fn(Scope) -> bool,
    ) -> Vec<LimitCheck> {
        let mut checks = Vec::new();
        for limit in self.limits.iter().filter(|limit| wanted(limit.scope)) {
            if let Some(base) = global_base(limit, subject) {
                push_rates(&mut checks, &base, limit, tokens);
            }
        }
        if let Some(key) = subject.key {
            for limit in key_limits.iter().filter(|limit| wanted(limit.scope)) {
                if let Some(base) = key_base(limit, subject, key) {
                    push_rates(&mut checks, &base, limit, tokens);
                }
            }
        }
        checks
    }
}

/// `rl:<scope>[:<value or match>]`, or `None` when the limit does not apply.
fn global_base(limit: &LimitConfig, subject: &Subject) -> Option<String> {
    let mut base = format!("rl:{}", limit.scope.as_str());
    if limit.scope != Scope::Global {
        let value = subject.value(limit.scope)?;
        push_segment(&mut base, limit.matches.as_deref(), value)?;
    }
    Some(base)
}

/// `rl:key:<id>[:<scope>:<value or match>]`, or `None` when the limit does not apply.
fn key_base(limit: &LimitConfig, subject: &Subject, key: &str) -> Option<String> {
    let mut base = "rl:key".to_owned();
    match limit.scope {
        Scope::Key => push_segment(&mut base, limit.matches.as_deref(), key)?,
        Scope::Global => push_value(&mut base, key),
        scope => {
            push_value(&mut base, key);
            base.push(':');
            base.push_str(scope.as_str());
            push_segment(&mut base, limit.matches.as_deref(), subject.value(scope)?)?;
        }
    }
    Some(base)
}

/// Appends the value, or the `match` pattern when there is one and the value matches it.
fn push_segment(base: &mut String, matches: Option<&str>, value: &str) -> Option<()> {
    match matches {
        Some(wanted) if pattern::matches(wanted, value) => push_pattern(base, wanted),
        Some(_) => return None,
        None => push_value(base, value),
    }
    Some(())
}

fn push_rates(checks: &mut Vec<LimitCheck>, base: &str, limit: &LimitConfig, tokens: u64) {
    let rates = [
        (limit.requests_per_second, LimitKind::Requests, "rps", Duration::from_secs(1)),
        (limit.requests_per_minute, LimitKind::Requests, "rpm", Duration::from_secs(60)),
        (limit.tokens_per_minute, LimitKind::Tokens, "tpm", Duration::from_secs(60)),
    ];
    for (rate, kind, unit, period) in rates {
        let Some(rate) = rate.filter(|rate| *rate > 0) else { continue };
        let burst = limit.burst.unwrap_or(rate).max(1);
        let mut bucket = String::with_capacity(base.len() + 24);
        let _ = write!(bucket, "{base}:{unit}:{rate}");
        if let Some(existing) = checks.iter_mut().find(|check| check.bucket == bucket) {
            existing.burst = existing.burst.min(burst);
            continue;
        }
        let cost = match kind {
            LimitKind::Requests => 1,
            LimitKind::Tokens => tokens,
        };
        checks.push(LimitCheck { bucket, scope: limit.scope, kind, limit: rate, period, burst, cost });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(scope: Scope, matches: Option<&str>, rpm: Option<u64>, tpm: Option<u64>) -> LimitConfig {
        LimitConfig {
            scope,
            matches: matches.map(str::to_owned),
            requests_per_second: None,
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            burst: None,
        }
    }

    fn subject() -> Subject<'static> {
        Subject {
            key: Some("k1"),
            user: Some("ann"),
            team: Some("eng:ops"),
            model: "gpt-4o-mini",
            provider: None,
            route: Some("chat"),
        }
    }

    fn buckets(checks: &[LimitCheck]) -> Vec<&str> {
        checks.iter().map(|check| check.bucket.as_str()).collect()
    }

    #[test]
    fn every_applicable_scope_gets_a_bucket_with_escaped_values() {
        let limits = Limits::new(&[
            limit(Scope::Team, None, Some(100), None),
            limit(Scope::Model, Some("gpt-4o*"), Some(50), Some(1000)),
            limit(Scope::Model, Some("claude*"), Some(5), None),
            limit(Scope::Provider, None, Some(5), None),
            limit(Scope::Global, None, Some(1000), None),
        ]);
        let checks = limits.checks(&subject(), &[], 300);
        assert_eq!(
            buckets(&checks),
            [
                "rl:team:eng%3Aops:rpm:100",
                "rl:model:gpt-4o*:rpm:50",
                "rl:model:gpt-4o*:tpm:1000",
                "rl:global:rpm:1000"
            ]
        );
        let tokens = &checks[2];
        assert_eq!(
            (tokens.kind, tokens.cost, tokens.limit, tokens.burst),
            (LimitKind::Tokens, 300, 1000, 1000)
        );
        assert_eq!(tokens.period, Duration::from_secs(60));
        assert_eq!((checks[0].kind, checks[0].cost), (LimitKind::Requests, 1));
    }

    #[test]
    fn key_limits_stay_inside_the_key_and_duplicates_merge() {
        let limits = Limits::new(&[limit(Scope::Key, None, Some(10), None)]);
        let mut own = limit(Scope::Key, None, Some(10), None);
        own.burst = Some(2);
        let per_user = limit(Scope::User, None, Some(3), None);
        let checks = limits.checks(&subject(), &[own, per_user], 1);
        assert_eq!(buckets(&checks), ["rl:key:k1:rpm:10", "rl:key:k1:user:ann:rpm:3"]);
        assert_eq!(checks[0].burst, 2);
        let anonymous = Subject { key: None, ..subject() };
        assert!(limits.checks(&anonymous, &[limit(Scope::Key, None, Some(1), None)], 1).is_empty());
    }

    #[test]
    fn provider_limits_are_checked_only_once_the_provider_is_known() {
        let limits = Limits::new(&[
            limit(Scope::Provider, None, Some(5), None),
            limit(Scope::Provider, Some("azure-*"), None, Some(900)),
            limit(Scope::Team, None, Some(100), None),
        ]);
        assert!(limits.has_provider_limits());
        let own = limit(Scope::Provider, Some("openai*"), Some(2), None);
        let routed = Subject { provider: Some("openai-primary"), ..subject() };
        // Before routing, with or without a provider: never the provider's buckets.
        assert_eq!(
            buckets(&limits.checks(&routed, std::slice::from_ref(&own), 10)),
            ["rl:team:eng%3Aops:rpm:100"]
        );
        assert_eq!(
            buckets(&limits.provider_checks(&routed, std::slice::from_ref(&own), 10)),
            ["rl:provider:openai-primary:rpm:5", "rl:key:k1:provider:openai*:rpm:2"]
        );
        let azure = Subject { provider: Some("azure-east"), ..subject() };
        assert_eq!(
            buckets(&limits.provider_checks(&azure, &[own], 10)),
            ["rl:provider:azure-east:rpm:5", "rl:provider:azure-*:tpm:900"]
        );
        assert!(!Limits::new(&[limit(Scope::Team, None, Some(1), None)]).has_provider_limits());
    }

    #[test]
    fn rates_per_second_have_a_one_second_period() {
        let mut config = limit(Scope::User, None, None, None);
        config.requests_per_second = Some(5);
        let checks = Limits::new(&[config]).checks(&subject(), &[], 0);
        assert_eq!(buckets(&checks), ["rl:user:ann:rps:5"]);
        assert_eq!((checks[0].period, checks[0].burst), (Duration::from_secs(1), 5));
    }
}
