//! Routing configuration, deserialized straight from a `routing:` block.

use std::time::Duration;

use loom_providers::ProviderConfig;
use serde::Deserialize;

/// `routing:` strategy, failover, health and the provider list a request may go to.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// How a provider is picked among the eligible ones.
    pub strategy: Strategy,
    /// Retrying a failed request on another provider.
    pub failover: FailoverConfig,
    /// Circuit breaking and latency probing.
    pub health: HealthConfig,
    /// Eligible providers; empty means every provider, in listed order.
    pub providers: Vec<RoutingTarget>,
}

impl RoutingConfig {
    /// The routing targets in force: `providers`, or one target per provider (in listed order) when empty.
    pub fn targets_or_all(&self, providers: &[ProviderConfig]) -> Vec<RoutingTarget> {
        if self.providers.is_empty() {
            providers.iter().map(|provider| RoutingTarget::named(&provider.name)).collect()
        } else {
            self.providers.clone()
        }
    }

    /// The targets in priority order: lowest `priority` first, unset last, ties in listed order.
    pub fn targets_by_priority(&self, providers: &[ProviderConfig]) -> Vec<RoutingTarget> {
        let mut targets = self.targets_or_all(providers);
        targets.sort_by_key(|target| target.priority.map_or((1, 0), |priority| (0, priority)));
        targets
    }
}

/// A routing strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The first eligible provider by `priority` (lowest number first).
    #[default]
    Priority,
    /// Providers take turns.
    RoundRobin,
    /// Smooth weighted round robin by `weight`.
    Weighted,
    /// The cheapest provider for this request by `cost_per_1k_*`.
    Cost,
    /// The provider with the lowest recent latency.
    Latency,
}

impl Strategy {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::RoundRobin => "round_robin",
            Strategy::Weighted => "weighted",
            Strategy::Cost => "cost",
            Strategy::Latency => "latency",
        }
    }
}

/// `failover:` retrying a failed request on the next provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverConfig {
    /// Whether failover is on.
    pub enabled: bool,
    /// Upstream HTTP statuses that trigger a retry (connect errors and timeouts always do).
    pub retry_codes: Vec<u16>,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Base of the jittered exponential backoff between attempts.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// Longest wait between attempts, `Retry-After` included.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            enabled: false,
            retry_codes: vec![429, 500, 502, 503],
            max_retries: 2,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// `health:` passive circuit breaking and latency probes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Consecutive failures that open a provider's breaker.
    pub failure_threshold: u32,
    /// How long an open breaker skips the provider before one probe request.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// `latency` strategy: a provider not tried for this long gets the next request, so a
    /// recovered provider is found again.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
            probe_interval: Duration::from_secs(10),
        }
    }
}

/// One `routing.providers` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingTarget {
    /// Name of a provider in `ai_gateway.providers`.
    pub name: String,
    /// Rank for the `priority` strategy; lower goes first.
    #[serde(default)]
    pub priority: Option<u32>,
    /// Share for the `weighted` strategy; unset counts as 1.
    #[serde(default)]
    pub weight: Option<u32>,
    /// Price per 1,000 input tokens, for the `cost` strategy.
    #[serde(default)]
    pub cost_per_1k_input: Option<f64>,
    /// Price per 1,000 output tokens, for the `cost` strategy.
    #[serde(default)]
    pub cost_per_1k_output: Option<f64>,
}

impl RoutingTarget {
    /// A target for provider `name` with nothing else set.
    pub fn named(name: impl Into<String>) -> Self {
        RoutingTarget {
            name: name.into(),
            priority: None,
            weight: None,
            cost_per_1k_input: None,
            cost_per_1k_output: None,
        }
    }

    /// The weight used by the `weighted` strategy (unset counts as 1).
    pub fn effective_weight(&self) -> u32 {
        self.weight.unwrap_or(1)
    }
}
