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

/// Labels of `loom_ai_auth_failures_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Labels of `loom_ai_ratelimit_decisions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    scope: &'static str,
    decision: &'static str,
}

/// Labels of `loom_ai_budget_spend`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: &'static str,
}

/// Labels of `loom_ai_state_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateErrorLabels {
    outcome: &'static str,
}

/// Labels of `loom_ai_guard_decisions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuardDecisionLabels {
    check: String,
    action: String,
}

/// Labels of `loom_ai_guard_embeddings_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EmbeddingLabels {
    outcome: &'static str,
}

/// Labels of `loom_ai_cache_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    status: &'static str,
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
    /// Usage records the recorder dropped (its queue was full).
    usage_dropped: Counter,
    /// Usage records whose group the aggregates folded into `(other)` (their memory bound).
    usage_folded: Counter,
    /// The model names that may be label values; any other model is [`OTHER_MODEL`].
    models: HashSet<Arc<str>, foldhash::fast::RandomState>,
    other_model: Arc<str>,
    auth_failures: Family<ReasonLabels, Counter>,
    ratelimit_decisions: Family<DecisionLabels, Counter>,
    budget_spend: Family<ScopeLabels, Gauge<f64, AtomicU64>>,
    state_errors: Family<StateErrorLabels, Counter>,
    guard_decisions: Family<GuardDecisionLabels, Counter>,
    guard_embeddings: Family<EmbeddingLabels, Counter>,
    cache_requests: Family<CacheLabels, Counter>,
    cache_saved_tokens: Counter,
    cache_saved_cost: Counter<f64, AtomicU64>,
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
        let usage_dropped = Counter::default();
        registry.register(
            "loom_ai_usage_dropped",
            "Usage records dropped because the recorder's queue was full",
            usage_dropped.clone(),
        );
        let usage_folded = Counter::default();
        registry.register(
            "loom_ai_usage_folded",
            "Usage records counted under (other) in the in-memory aggregates, past their memory bound",
            usage_folded.clone(),
        );
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "loom_ai_auth_failures",
            "Requests refused by authentication, by reason",
            auth_failures.clone(),
        );
        let ratelimit_decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "loom_ai_ratelimit_decisions",
            "Rate-limit decisions, by the limit's scope and the decision (allowed or refused)",
            ratelimit_decisions.clone(),
        );
        let budget_spend = Family::<ScopeLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "loom_ai_budget_spend",
            "USD this instance has debited to budgets since it started, by the budget's scope",
            budget_spend.clone(),
        );
        let state_errors = Family::<StateErrorLabels, Counter>::default();
        registry.register(
            "loom_ai_state_errors",
            "Requests whose limits and budgets could not be checked (state backend down), by what happened to them",
            state_errors.clone(),
        );
        let guard_decisions = Family::<GuardDecisionLabels, Counter>::default();
        registry.register(
            "loom_ai_guard_decisions",
            "Security-check decisions, by check and action (block, flag or log when it fired, allow when it did not)",
            guard_decisions.clone(),
        );
        let guard_embeddings = Family::<EmbeddingLabels, Counter>::default();
        registry.register(
            "loom_ai_guard_embeddings",
            "Embeddings the injection check's embedding stage asked for, by outcome (ok, saturated, timeout, error)",
            guard_embeddings.clone(),
        );
        let cache_requests = Family::<CacheLabels, Counter>::default();
        registry.register(
            "loom_ai_cache_requests",
            "Chat requests on routes with caching on, by how the cache treated them (hit, semantic_hit, miss, bypass, error)",
            cache_requests.clone(),
        );
        let cache_saved_tokens = Counter::default();
        registry.register(
            "loom_ai_cache_saved_tokens",
            "Tokens (input and output) of answers served from the cache instead of a provider",
            cache_saved_tokens.clone(),
        );
        let cache_saved_cost = Counter::<f64, AtomicU64>::default();
        registry.register(
            "loom_ai_cache_saved_cost",
            "What answers served from the cache would have cost from their provider, in USD",
            cache_saved_cost.clone(),
        );
        Metrics {
            registry,
            cache_requests,
            cache_saved_tokens,
            cache_saved_cost,
            guard_decisions,
            guard_embeddings,
            auth_failures,
            ratelimit_decisions,
            budget_spend,
            state_errors,
            usage_dropped,
            usage_folded,
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

    /// Brings the usage-loss counters up to the recorder's totals (`dropped`, `folded`).
    pub fn record_usage_losses(&self, dropped: u64, folded: u64) {
        // The recorder's totals only grow; counters take the difference.
        self.usage_dropped.inc_by(dropped.saturating_sub(self.usage_dropped.get()));
        self.usage_folded.inc_by(folded.saturating_sub(self.usage_folded.get()));
    }

    /// Every metric in `format`, with the breaker state of `providers` as it is now (a
    /// breaker's cooldown ends with no request to tell it, so it is read here).
    pub fn encode(&self, providers: &[Arc<ProviderState>], format: ExpositionFormat) -> String {
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
        let _ = match format {
            ExpositionFormat::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            ExpositionFormat::PrometheusText => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        out
    }
}

/// The text formats `/metrics` is served in, chosen by the scraper's `Accept` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpositionFormat {
    /// OpenMetrics 1.0.0: counter samples end in `_total` but their `# TYPE` line does
    /// not, and the exposition ends with `# EOF`.
    OpenMetrics,
    /// The Prometheus text format 0.0.4: every line names the sample (`_total` included).
    PrometheusText,
}

impl ExpositionFormat {
    /// The `Content-Type` of an exposition in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ExpositionFormat::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ExpositionFormat::PrometheusText => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }

    /// The format an `Accept` header asks for: OpenMetrics when it accepts
    /// `application/openmetrics-text` (version 1.0.0 or unversioned) at least as much as
    /// plain text, else the Prometheus text format, which every scraper reads (so also
    /// with no `Accept` header at all).
    pub fn from_accept(accept: Option<&str>) -> Self {
        let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let (mut quality, mut version) = (1.0_f32, None);
            for parameter in parts {
                let Some((name, value)) = parameter.split_once('=') else { continue };
                let value = value.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    // A q that does not parse refuses the range rather than guessing.
                    "q" => quality = value.parse::<f32>().ok().filter(|q| q.is_finite()).unwrap_or(0.0),
                    "version" => version = Some(value),
                    _ => {}
                }
            }
            let quality = quality.clamp(0.0, 1.0);
            match media.as_str() {
                "application/openmetrics-text" if version.is_none_or(|version| version == "1.0.0") => {
                    openmetrics = openmetrics.max(quality);
                }
                "text/plain" if version.is_none_or(|version| version == "0.0.4") => text = text.max(quality),
                "text/*" | "*/*" => text = text.max(quality),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            ExpositionFormat::OpenMetrics
        } else {
            ExpositionFormat::PrometheusText
        }
    }
}

impl UsageObserver for Metrics {
    fn observe(&self, record: &UsageRecord) {
        if record.cache_hit {
            self.cache_saved_tokens.inc_by(record.input_tokens.saturating_add(record.output_tokens));
            if record.saved_cost.is_finite() && record.saved_cost > 0.0 {
                self.cache_saved_cost.inc_by(record.saved_cost);
            }
            return;
        }
        if let Some(provider) = &record.provider {
            self.record_usage(provider, record.input_tokens, record.output_tokens, record.cost);
        }
    }
}

impl loom_cache::CacheObserver for Metrics {
    fn lookup(&self, status: loom_cache::CacheStatus) {
        self.cache_requests.get_or_create(&CacheLabels { status: status.label() }).inc();
    }
}

impl loom_guard::GuardObserver for Metrics {
    fn auth_failed(&self, failure: loom_guard::AuthFailure) {
        self.auth_failures.get_or_create(&ReasonLabels { reason: failure.as_str() }).inc();
    }

    fn rate_limit_decision(&self, scope: loom_guard::Scope, allowed: bool) {
        let decision = if allowed { "allowed" } else { "refused" };
        self.ratelimit_decisions.get_or_create(&DecisionLabels { scope: scope.as_str(), decision }).inc();
    }

    fn budget_spent(&self, scope: loom_guard::BudgetScope, usd: f64) {
        if usd.is_finite() && usd > 0.0 {
            self.budget_spend.get_or_create(&ScopeLabels { scope: scope.as_str() }).inc_by(usd);
        }
    }

    fn state_error(&self, failed_open: bool) {
        let outcome = if failed_open { "fail_open" } else { "fail_closed" };
        self.state_errors.get_or_create(&StateErrorLabels { outcome }).inc();
    }

    fn check_decision(&self, check: &str, action: &str) {
        // Check names come from config (validated, bounded), actions from a fixed set.
        self.guard_decisions
            .get_or_create(&GuardDecisionLabels { check: check.to_owned(), action: action.to_owned() })
            .inc();
    }

    fn embedding(&self, outcome: &'static str) {
        self.guard_embeddings.get_or_create(&EmbeddingLabels { outcome }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Prometheus 2.x sends when scraping.
    const PROMETHEUS_2: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// What Prometheus 3.x sends when scraping.
    const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";

    #[test]
    fn openmetrics_only_when_the_scraper_asks_for_it() {
        use ExpositionFormat::{OpenMetrics, PrometheusText};
        for (accept, expected) in [
            (Some(PROMETHEUS_2), OpenMetrics),
            (Some(PROMETHEUS_3), OpenMetrics),
            (Some("application/openmetrics-text"), OpenMetrics),
            (Some("Application/OpenMetrics-Text; Version=\"1.0.0\""), OpenMetrics),
            (Some("text/plain;q=0.5, application/openmetrics-text;q=0.6"), OpenMetrics),
            (None, PrometheusText),
            (Some(""), PrometheusText),
            (Some("*/*"), PrometheusText),
            (Some("text/plain"), PrometheusText),
            (Some("text/plain;version=0.0.4"), PrometheusText),
            (Some("application/json"), PrometheusText),
            // Only OpenMetrics 1.0.0 is written; an older version is not it.
            (Some("application/openmetrics-text;version=0.0.1"), PrometheusText),
            (Some("application/openmetrics-text;q=0"), PrometheusText),
            (Some("application/openmetrics-text;q=0.4,text/plain;q=0.5"), PrometheusText),
            (Some("application/openmetrics-text;q=nan"), PrometheusText),
            (Some(";;,=,q=1;"), PrometheusText),
        ] {
            assert_eq!(ExpositionFormat::from_accept(accept), expected, "{accept:?}");
        }
    }

    /// Metrics with one series in every family.
    fn recorded() -> Metrics {
        let metrics = Metrics::with_models(["gpt-4o"]);
        let provider: Arc<str> = Arc::from("openai");
        metrics.record_request(&provider, &metrics.model_label("gpt-4o"));
        metrics.record_duration(&provider, Duration::from_millis(20));
        metrics.record_overhead(&provider, Duration::from_micros(30));
        metrics.record_usage(&provider, 7, 3, 0.5);
        metrics
    }

    fn providers() -> Vec<Arc<ProviderState>> {
        vec![Arc::new(ProviderState::new("openai", loom_routing::HealthConfig::default()))]
    }

    fn type_lines(text: &str) -> Vec<&str> {
        text.lines().filter(|line| line.starts_with("# TYPE ")).collect()
    }

    #[test]
    fn prometheus_text_types_every_family_by_its_sample_names() {
        let text = recorded().encode(&providers(), ExpositionFormat::PrometheusText);
        assert_eq!(
            type_lines(&text),
            [
                "# TYPE loom_ai_requests_total counter",
                "# TYPE loom_ai_duration_seconds histogram",
                "# TYPE loom_ai_overhead_seconds histogram",
                "# TYPE loom_ai_tokens_total counter",
                "# TYPE loom_ai_cost_total counter",
                "# TYPE loom_ai_breaker_state gauge",
                "# TYPE loom_ai_usage_dropped_total counter",
                "# TYPE loom_ai_usage_folded_total counter",
                "# TYPE loom_ai_cache_saved_tokens_total counter",
                "# TYPE loom_ai_cache_saved_cost_total counter",
            ],
            "{text}"
        );
        // Read as Prometheus 0.0.4 does: every sample belongs to the family typed above
        // it, by its exact name (counters) or with a histogram's suffixes.
        let mut family: Option<(&str, &str)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                family = Some((name, kind));
                continue;
            }
            assert!(line.starts_with("# HELP ") || !line.starts_with('#'), "not 0.0.4: {line}");
            if line.starts_with('#') {
                continue;
            }
            let (name, kind) = family.unwrap_or_else(|| panic!("a sample before any TYPE: {line}"));
            let sample = line.split(['{', ' ']).next().unwrap();
            let matches = match kind {
                "histogram" => {
                    ["_bucket", "_sum", "_count"].iter().any(|end| sample == format!("{name}{end}"))
                }
                _ => sample == name,
            };
            assert!(matches, "`{sample}` is not a sample of {kind} `{name}`");
        }
        for line in [
            "loom_ai_requests_total{provider=\"openai\",model=\"gpt-4o\"} 1",
            "loom_ai_tokens_total{provider=\"openai\",type=\"input\"} 7",
            "loom_ai_tokens_total{provider=\"openai\",type=\"output\"} 3",
            "loom_ai_cost_total{provider=\"openai\"} 0.5",
            "loom_ai_duration_seconds_count{provider=\"openai\"} 1",
            "loom_ai_breaker_state{provider=\"openai\",state=\"closed\"} 1",
        ] {
            assert!(text.lines().any(|sample| sample == line), "no `{line}` in:\n{text}");
        }
        assert!(!text.contains("# EOF") && !text.contains("# UNIT") && !text.contains("_created"), "{text}");
    }

    #[test]
    fn openmetrics_types_counters_by_family_and_ends_with_eof() {
        let text = recorded().encode(&providers(), ExpositionFormat::OpenMetrics);
        assert_eq!(
            type_lines(&text),
            [
                "# TYPE loom_ai_requests counter",
                "# TYPE loom_ai_duration_seconds histogram",
                "# TYPE loom_ai_overhead_seconds histogram",
                "# TYPE loom_ai_tokens counter",
                "# TYPE loom_ai_cost counter",
                "# TYPE loom_ai_breaker_state gauge",
                "# TYPE loom_ai_usage_dropped counter",
                "# TYPE loom_ai_usage_folded counter",
                "# TYPE loom_ai_cache_saved_tokens counter",
                "# TYPE loom_ai_cache_saved_cost counter",
            ],
            "{text}"
        );
        assert!(
            text.lines().any(|line| line == "loom_ai_requests_total{provider=\"openai\",model=\"gpt-4o\"} 1")
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
