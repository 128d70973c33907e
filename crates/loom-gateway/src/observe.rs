//! `MetricsLayer`: counts requests per provider and model and times them, streams
//! included; and the observer that feeds token counts to provider statistics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use loom_core::{LlmRequest, LlmResponse, LoomError, ResponsePayload, on_stream_end};
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::metrics::Metrics;
use loom_routing::ProviderState;
use loom_tokens::accounting::{UsageObserver, UsageRecord};
use std::collections::HashMap;

/// Adds each request's tokens to its provider's statistics (for `/ai/providers`).
pub struct ProviderTokens {
    by_name: HashMap<String, Arc<ProviderState>>,
}

impl ProviderTokens {
    /// Tracks these providers.
    pub fn new(states: &[Arc<ProviderState>]) -> Self {
        ProviderTokens {
            by_name: states.iter().map(|state| (state.name().to_owned(), state.clone())).collect(),
        }
    }
}

impl UsageObserver for ProviderTokens {
    fn observe(&self, record: &UsageRecord) {
        if let Some(state) = record.provider.as_deref().and_then(|name| self.by_name.get(name)) {
            state.add_tokens(record.input_tokens, record.output_tokens);
        }
    }
}

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
        MetricsService { inner, metrics: self.metrics.clone() }
    }
}

/// The service `MetricsLayer` produces.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<LlmRequest> for MetricsService<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError>,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        let started = Instant::now();
        let model = self.metrics.model_label(request.payload.model());
        let metrics = self.metrics.clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            match call.await {
                Ok(mut response) => {
                    metrics.record_request(&response.provider, &model);
                    match response.payload {
                        ResponsePayload::Stream(stream) => {
                            let provider = response.provider.clone();
                            response.payload = ResponsePayload::Stream(on_stream_end(stream, move || {
                                metrics.record_duration(&provider, started.elapsed())
                            }));
                        }
                        _ => metrics.record_duration(&response.provider, started.elapsed()),
                    }
                    Ok(response)
                }
                Err(error) => {
                    if let Some(upstream) = &error.upstream {
                        let provider = Arc::from(upstream.provider.as_str());
                        metrics.record_request(&provider, &model);
                        metrics.record_duration(&provider, started.elapsed());
                    }
                    Err(error)
                }
            }
        })
    }
}
