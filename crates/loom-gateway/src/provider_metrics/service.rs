//! The service of [`MetricsLayer`](super::MetricsLayer).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use loom_core::{LlmRequest, LlmResponse, LoomError, ResponsePayload, on_stream_end};
use tokio::time::Instant;
use tower::Service;

use crate::metrics::Metrics;

/// The service [`MetricsLayer`](super::MetricsLayer) produces.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> MetricsService<S> {
    /// `inner`, its calls recorded into `metrics`.
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Self {
        MetricsService { inner, metrics }
    }
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
