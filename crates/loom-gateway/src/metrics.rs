//! Prometheus metrics with the names the spec fixes.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the request-duration buckets; LLM calls run long.
const DURATION_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Labels of `loom_ai_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    provider: String,
    model: String,
}

/// Labels of `loom_ai_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

type DurationFamily = Family<ProviderLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The gateway's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: DurationFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("loom_ai_requests", "AI requests sent to a provider", requests.clone());
        let duration = DurationFamily::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "loom_ai_duration_seconds",
            "Time from request to the provider's last byte",
            duration.clone(),
        );
        Metrics { registry, requests, duration }
    }

    /// Counts one request to `provider` for `model`.
    pub fn record_request(&self, provider: &str, model: &str) {
        self.requests
            .get_or_create(&RequestLabels { provider: provider.to_owned(), model: model.to_owned() })
            .inc();
    }

    /// Records how long a provider call took.
    pub fn record_duration(&self, provider: &str, elapsed: Duration) {
        self.duration
            .get_or_create(&ProviderLabels { provider: provider.to_owned() })
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
