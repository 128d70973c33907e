//! `MetricsLayer`: counts requests per provider and model and times them, streams
//! included; and the observer that feeds token counts to provider statistics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use loom_core::{ChatChunk, ChunkStream, LlmRequest, LlmResponse, LoomError, ResponsePayload};
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
        let model = request.payload.model().to_owned();
        let metrics = self.metrics.clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            match call.await {
                Ok(mut response) => {
                    metrics.record_request(&response.provider, &model);
                    match response.payload {
                        ResponsePayload::Stream(stream) => {
                            let provider = response.provider.clone();
                            response.payload = ResponsePayload::Stream(Box::pin(TimedStream {
                                inner: stream,
                                finish: Some(Box::new(move || {
                                    metrics.record_duration(&provider, started.elapsed())
                                })),
                            }));
                        }
                        _ => metrics.record_duration(&response.provider, started.elapsed()),
                    }
                    Ok(response)
                }
                Err(error) => {
                    if let Some(upstream) = &error.upstream {
                        metrics.record_request(&upstream.provider, &model);
                        metrics.record_duration(&upstream.provider, started.elapsed());
                    }
                    Err(error)
                }
            }
        })
    }
}

/// A chunk stream that runs `finish` once, when it ends or is dropped.
struct TimedStream {
    inner: ChunkStream,
    finish: Option<Box<dyn FnOnce() + Send>>,
}

impl Stream for TimedStream {
    type Item = Result<ChatChunk, LoomError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = polled
            && let Some(finish) = self.finish.take()
        {
            finish();
        }
        polled
    }
}

impl Drop for TimedStream {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish();
        }
    }
}
