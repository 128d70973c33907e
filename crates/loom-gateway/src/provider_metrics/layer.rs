//! The layer of [`MetricsService`].

use std::sync::Arc;

use tower::Layer;

use super::MetricsService;
use crate::metrics::Metrics;

/// Records `loom_ai_requests_total` and `loom_ai_duration_seconds` around a provider call.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        MetricsLayer { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> MetricsService<S> {
        MetricsService::new(inner, self.metrics.clone())
    }
}
