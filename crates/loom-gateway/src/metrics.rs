//! Prometheus metrics with the names the spec fixes.
//!
//! Label values are shared `Arc<str>`s, so recording a request allocates nothing, and
//! each provider's per-provider metrics are looked up once per record, not once per family.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use loom_routing::{BreakerState, ProviderState};
use loom_tokens::accounting::{UsageObserver, UsageRecord};

/// Upper bounds (seconds) of the request-duration buckets; LLM calls run long.
const DURATION_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Upper bounds (seconds) of the overhead buckets: Loom's own share of a request is
/// counted in microseconds.
const OVERHEAD_BUCKETS: [f64; 14] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Labels of `loom_ai_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    provider: Arc<str>,
    model: Arc<str>,
}

/// Labels of `loom_ai_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: Arc<str>,
}

type DurationFamily = Family<ProviderLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn overhead_histogram() -> Histogram {
    Histogram::new(OVERHEAD_BUCKETS)
}

/// Labels of `loom_ai_tokens_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: Arc<str>,
    #[prometheus(flatten)]
    kind: TokenKind,
}

/// `type="input"` or `type="output"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenKind {
    r#type: &'static str,
}

/// Labels of `loom_ai_breaker_state`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    provider: Arc<str>,
    state: &'static str,
}

/// The gateway's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: DurationFamily,
    overhead: DurationFamily,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<ProviderLabels, Counter<f64, AtomicU64>>,
    breakers: Family<BreakerLabels, Gauge>,
    /// Handles to the per-provider series, made on a provider's first record.
    providers: RwLock<HashMap<Arc<str>, Arc<ProviderSeries>, foldhash::fast::RandomState>>,
    /// The model names that may be label values; any other model is [`OTHER_MODEL`].
    models: HashSet<Arc<str>, foldhash::fast::RandomState>,
    other_model: Arc<str>,
}

/// The `model` label of requests for a model the configuration does not name: clients
/// choose model names, and each distinct label value is a series kept forever.
pub const OTHER_MODEL: &str = "other";

/// One provider's series of the per-provider families.
struct ProviderSeries {
    duration: Histogram,
    overhead: Histogram,
    input_tokens: Counter,
    output_tokens: Counter,
    cost: Counter<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric; every model is labelled [`OTHER_MODEL`].
    pub fn new() -> Self {
        Metrics::with_models(std::iter::empty::<String>())
    }

    /// Registers every metric; `models` (the configured names) label requests by model.
    pub fn with_models(models: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("loom_ai_requests", "AI requests sent to a provider", requests.clone());
        let duration = DurationFamily::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "loom_ai_duration_seconds",
            "Time from request to the provider's last byte",
            duration.clone(),
        );
        let overhead = DurationFamily::new_with_constructor(overhead_histogram as fn() -> Histogram);
        registry.register(
            "loom_ai_overhead_seconds",
            "Loom's own time in a request (to the answer, or a stream's first chunk) less the time spent waiting for upstreams",
            overhead.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "loom_ai_tokens",
            "Tokens processed, by provider and type (input or output)",
            tokens.clone(),
        );
        let cost = Family::<ProviderLabels, Counter<f64, AtomicU64>>::default();
        registry.register("loom_ai_cost", "Cost in USD, by provider", cost.clone());
        let breakers = Family::<BreakerLabels, Gauge>::default();
        registry.register(
            "loom_ai_breaker_state",
            "1 for the state each provider's circuit breaker is in (closed, open, half_open), 0 for the others",
            breakers.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            overhead,
            tokens,
            cost,
            breakers,
            providers: RwLock::default(),
            models: models.into_iter().map(|model| Arc::from(model.as_ref())).collect(),
            other_model: Arc::from(OTHER_MODEL),
        }
    }

    /// The `model` label value of a request for `model`.
    pub fn model_label(&self, model: &str) -> Arc<str> {
        self.models.get(model).unwrap_or(&self.other_model).clone()
    }

    /// The series of `provider`, made (and registered in their families) on first use.
    fn provider(&self, provider: &Arc<str>) -> Arc<ProviderSeries> {
        if let Some(series) = self.providers.read().unwrap_or_else(PoisonError::into_inner).get(provider) {
            return series.clone();
        }
        let labels = ProviderLabels { provider: provider.clone() };
        let tokens = |kind| {
            self.tokens
                .get_or_create(&TokenLabels { provider: provider.clone(), kind: TokenKind { r#type: kind } })
                .clone()
        };
        let series = Arc::new(ProviderSeries {
            duration: self.duration.get_or_create(&labels).clone(),
            overhead: self.overhead.get_or_create(&labels).clone(),
            input_tokens: tokens("input"),
            output_tokens: tokens("output"),
            cost: self.cost.get_or_create(&labels).clone(),
        });
        let mut providers = self.providers.write().unwrap_or_else(PoisonError::into_inner);
        providers.entry(provider.clone()).or_insert(series).clone()
    }

    /// Counts one request to `provider` for `model` (a label from [`Metrics::model_label`]).
    pub fn record_request(&self, provider: &Arc<str>, model: &Arc<str>) {
        self.requests
            .get_or_create(&RequestLabels { provider: provider.clone(), model: model.clone() })
            .inc();
    }

    /// Records how long a provider call took.
    pub fn record_duration(&self, provider: &Arc<str>, elapsed: Duration) {
        self.provider(provider).duration.observe(elapsed.as_secs_f64());
    }

    /// Records Loom's own time in a request `provider` answered.
    pub fn record_overhead(&self, provider: &Arc<str>, overhead: Duration) {
        self.provider(provider).overhead.observe(overhead.as_secs_f64());
    }

    /// Adds one request's tokens and cost.
    pub fn record_usage(&self, provider: &Arc<str>, input_tokens: u64, output_tokens: u64, cost: f64) {
        let series = self.provider(provider);
        series.input_tokens.inc_by(input_tokens);
        series.output_tokens.inc_by(output_tokens);
        // A counter must never go down, nor turn NaN.
        if cost.is_finite() && cost > 0.0 {
            series.cost.inc_by(cost);
        }
    }

    /// The Prometheus text exposition of every metric, with the breaker state of
    /// `providers` as it is now (a breaker's cooldown ends with no request to tell it, so
    /// it is read here).
    pub fn encode(&self, providers: &[Arc<ProviderState>]) -> String {
        for provider in providers {
            let name: Arc<str> = Arc::from(provider.name());
            let current = provider.breaker_state();
            for state in BreakerState::ALL {
                let labels = BreakerLabels { provider: name.clone(), state: state.as_str() };
                self.breakers.get_or_create(&labels).set(i64::from(state == current));
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl UsageObserver for Metrics {
    fn observe(&self, record: &UsageRecord) {
        if let Some(provider) = &record.provider {
            self.record_usage(provider, record.input_tokens, record.output_tokens, record.cost);
        }
    }
}
