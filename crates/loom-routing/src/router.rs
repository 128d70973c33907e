//! `Router`: a `tower::Service<LlmRequest>` over the providers: model eligibility and
//! mapping, the strategy's pick, failover with jittered backoff, and health.

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use loom_core::{
    ChunkStream, ErrorKind, InputTokenEstimate, LlmRequest, LlmResponse, LoomError, RequestPayload,
    ResponsePayload, StreamChunk, TokenCount, on_stream_end,
};
use loom_tokens::accounting::PriceTable;
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use crate::config::{FailoverConfig, RoutingConfig};
use crate::health::ProviderState;
use crate::strategy::{Candidate, DEFAULT_OUTPUT_ESTIMATE, Picker};

/// A target behind a type-erased service: any `Service<LlmRequest>`, e.g. a provider
/// wrapped in layers of your own.
pub type BoxedTarget = BoxCloneSyncService<LlmRequest, LlmResponse, LoomError>;

/// One backend the router may use: a provider adapter (`loom_providers::Provider`), or any
/// `Service<LlmRequest>` of your own (by default boxed, [`BoxedTarget`]).
pub struct RouteTarget<S = BoxedTarget> {
    /// The service that answers.
    pub provider: S,
    /// Its shared health and statistics.
    pub state: Arc<ProviderState>,
    /// Models it serves; empty means any.
    pub models: Vec<String>,
    /// Weight for the `weighted` strategy.
    pub weight: u32,
}

/// Routes each request to a provider, failing over when one fails.
pub struct Router<S = BoxedTarget> {
    inner: Arc<RouterInner<S>>,
    /// What the `cost` strategy compares: the table billing reads too.
    prices: PriceTable,
}

impl<S> Clone for Router<S> {
    fn clone(&self) -> Self {
        Router { inner: self.inner.clone(), prices: self.prices.clone() }
    }
}

struct RouterInner<S> {
    /// In priority order.
    targets: Vec<RouteTarget<S>>,
    picker: Picker,
    failover: FailoverConfig,
    model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    served_models: Vec<String>,
}

impl<S> Router<S> {
    /// A router over `targets`, given in priority order (first = preferred).
    pub fn new(
        targets: Vec<RouteTarget<S>>,
        routing: &RoutingConfig,
        model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Self {
        let mut served_models: Vec<String> = targets
            .iter()
            .flat_map(|target| target.models.iter().cloned())
            .chain(model_mapping.keys().cloned())
            .collect();
        served_models.sort();
        served_models.dedup();
        Self {
            inner: Arc::new(RouterInner {
                picker: Picker::new(routing.strategy, targets.len()),
                targets,
                failover: routing.failover.clone(),
                model_mapping,
                served_models,
            }),
            prices: PriceTable::new(),
        }
    }

    /// The prices the `cost` strategy compares, per target (by its [`ProviderState`]
    /// name) and the model it would be sent: pass the table billing reads, so a request
    /// is routed and billed by one price. Without it, only the built-in model prices
    /// are known. A target with no price is picked last.
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Models named in config, for `/v1/models` and 404 messages.
    pub fn served_models(&self) -> &[String] {
        &self.inner.served_models
    }
}

impl<S> RouterInner<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    /// The targets that serve `model`, each with the model name `model_mapping` gives it there.
    fn eligible(&self, model: &str) -> Vec<(usize, Option<&str>)> {
        let mapping = self.model_mapping.get(model);
        self.targets
            .iter()
            .enumerate()
            .filter_map(|(index, target)| {
                if let Some(mapped) = mapping.and_then(|mapping| mapping.get(target.state.name())) {
                    return Some((index, Some(mapped.as_str())));
                }
                let serves = target.models.is_empty() || target.models.iter().any(|served| served == model);
                serves.then_some((index, None))
            })
            .collect()
    }

    /// Whether the target's breaker lets requests through (closed or half-open).
    fn healthy(&self, index: usize) -> bool {
        self.targets[index].state.breaker_state() != crate::BreakerState::Open
    }

    /// The next target: a healthy one not tried yet; else a tried one (when no other is
    /// eligible); else, when every breaker is open, any eligible one.
    fn choose(
        &self,
        eligible: &[(usize, Option<&str>)],
        tried: &[usize],
        request: &PickBasis<'_>,
    ) -> Option<usize> {
        // The pools in order: untried healthy targets, healthy ones, all of them.
        let in_pool = |pool: usize, index: usize| match pool {
            0 => self.healthy(index) && !tried.contains(&index),
            1 => self.healthy(index),
            _ => true,
        };
        let priced = self.picker.compares_prices();
        let mut candidates: Vec<Candidate<'_>> = Vec::with_capacity(eligible.len());
        for pool in 0..3 {
            candidates.clear();
            candidates.extend(eligible.iter().filter(|(index, _)| in_pool(pool, *index)).map(
                |&(index, upstream_model)| {
                    let target = &self.targets[index];
                    let price = priced.then(|| {
                        let model = upstream_model.unwrap_or(request.model);
                        request.prices.price(Some(target.state.name()), model)
                    });
                    Candidate { index, state: &target.state, weight: target.weight, price: price.flatten() }
                },
            ));
            while !candidates.is_empty() {
                let pick = self.picker.pick(&candidates, request.input_tokens, request.output_tokens);
                // Half-open breakers let one probe through at a time.
                if self.targets[pick].state.admits() || candidates.len() == 1 && !self.healthy(pick) {
                    return Some(pick);
                }
                candidates.retain(|candidate| candidate.index != pick);
            }
        }
        None
    }

    /// Whether a failed attempt may go to another provider: nothing of it has reached the
    /// client (a stream's failure after its first chunk is never seen here).
    fn retryable(&self, error: &LoomError) -> bool {
        matches!(error.kind, ErrorKind::UpstreamUnavailable | ErrorKind::Timeout | ErrorKind::Overloaded)
            || broken_answer(error)
            || error
                .upstream
                .as_ref()
                .and_then(|upstream| upstream.status)
                .is_some_and(|status| self.failover.retry_codes.contains(&status))
    }

    /// Jittered exponential backoff; `Retry-After` is honoured when the same provider
    /// is tried again.
    fn backoff(&self, attempt: u32, error: &LoomError, same_provider: bool) -> Duration {
        let exponential = self.failover.backoff.saturating_mul(1 << attempt.min(10));
        let jitter = 0.5 + (random_u64() % 1000) as f64 / 1000.0;
        let mut wait = exponential.mul_f64(jitter);
        if same_provider && let Some(retry_after) = error.retry_after() {
            wait = wait.max(retry_after);
        }
        wait.min(self.failover.max_backoff)
    }

    /// Asks the provider a request for the model would go to how many input tokens it
    /// takes. Nothing about that provider's health changes (no turn taken, no probe used,
    /// no latency noted), and a provider that cannot count, or fails to, answers `None`
    /// for the accounting stage to count with Loom's tokenizers.
    async fn count_tokens(self: Arc<Self>, request: LlmRequest) -> Result<LlmResponse, LoomError> {
        let LlmRequest { context, payload: RequestPayload::CountTokens(mut chat) } = request else {
            return Err(LoomError::internal("a token count was expected"));
        };
        let eligible = self.eligible(&chat.model);
        let Some(&(index, upstream_model)) =
            eligible.iter().find(|(index, _)| self.healthy(*index)).or(eligible.first())
        else {
            return Err(LoomError::model_not_found(&chat.model, &self.served_models));
        };
        if let Some(upstream_model) = upstream_model {
            upstream_model.clone_into(&mut chat.model);
        }
        let target = &self.targets[index];
        let fallback = chat.clone();
        let request = LlmRequest { context, payload: RequestPayload::CountTokens(chat) };
        match target.provider.clone().oneshot(request).await {
            Ok(response) => Ok(response),
            Err(error) => {
                tracing::info!(provider = %target.state.name(), error = %error.message, "counting tokens locally");
                let payload = ResponsePayload::TokenCount(TokenCount::uncounted(fallback));
                Ok(LlmResponse::new(Arc::from(target.state.name()), payload))
            }
        }
    }

    async fn route(
        self: Arc<Self>,
        request: LlmRequest,
        prices: PriceTable,
    ) -> Result<LlmResponse, LoomError> {
        if let RequestPayload::CountTokens(_) = request.payload {
            return self.count_tokens(request).await;
        }
        let model = request.payload.model().to_owned();
        let eligible = self.eligible(&model);
        if eligible.is_empty() {
            return Err(LoomError::model_not_found(&model, &self.served_models));
        }
        let input = request.context.extensions.get::<InputTokenEstimate>().map_or(0, |estimate| estimate.0);
        let output = match &request.payload {
            RequestPayload::Chat(chat) => chat.output_limit().map_or(DEFAULT_OUTPUT_ESTIMATE, u64::from),
            RequestPayload::Embeddings(_) | RequestPayload::CountTokens(_) => 0,
        };
        let basis = PickBasis { model: &model, input_tokens: input, output_tokens: output, prices: &prices };
        let attempts = if self.failover.enabled { self.failover.max_retries + 1 } else { 1 };
        let upstream_time = request.context.upstream_time.clone();
        let mut tried: Vec<usize> = Vec::new();
        let mut request = Some(request);
        let mut attempt = 0;
        loop {
            let Some(index) = self.choose(&eligible, &tried, &basis) else {
                return Err(LoomError::new(
                    ErrorKind::UpstreamUnavailable,
                    format!("no provider can serve `{model}`"),
                ));
            };
            let last = attempt + 1 >= attempts;
            let mut this_request = if last { request.take() } else { request.clone() }
                .ok_or_else(|| LoomError::internal("the request was already sent"))?;
            let upstream_model =
                eligible.iter().find(|(candidate, _)| *candidate == index).and_then(|(_, model)| *model);
            if let Some(upstream_model) = upstream_model {
                match &mut this_request.payload {
                    RequestPayload::Chat(chat) | RequestPayload::CountTokens(chat) => {
                        upstream_model.clone_into(&mut chat.model)
                    }
                    RequestPayload::Embeddings(embeddings) => {
                        upstream_model.clone_into(&mut embeddings.model)
                    }
                }
            }
            let target = &self.targets[index];
            target.state.on_attempt();
            tried.push(index);
            let started = Instant::now();
            let outcome = match target.provider.clone().oneshot(this_request).await {
                Ok(response) => first_chunk(response).await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(mut response) => {
                    target.state.on_success(started.elapsed());
                    let state = target.state.clone();
                    match &mut response.payload {
                        ResponsePayload::Stream(stream) => {
                            let inner = std::mem::replace(stream, Box::pin(futures_util::stream::empty()));
                            *stream = on_stream_end(inner, move || state.on_complete(started.elapsed()));
                        }
                        _ => state.on_complete(started.elapsed()),
                    }
                    return Ok(response);
                }
                Err(error) => {
                    if provider_fault(&error) {
                        target.state.on_failure();
                    }
                    let others_left = eligible.iter().any(|(candidate, _)| !tried.contains(candidate));
                    // Loom's own refusal of this provider (its rate limit): another may take
                    // the request at once; this one would refuse again.
                    let declined = error.refusal.is_some();
                    if last || !(self.retryable(&error) || declined) || (declined && !others_left) {
                        return Err(error);
                    }
                    let wait =
                        if declined { Duration::ZERO } else { self.backoff(attempt, &error, !others_left) };
                    tracing::info!(
                        provider = %target.state.name(),
                        error = %error.message,
                        wait_ms = wait.as_millis() as u64,
                        "failing over"
                    );
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                        // Backing off is waiting for upstreams to recover, not Loom's work.
                        upstream_time.add(wait);
                    }
                    attempt += 1;
                }
            }
        }
    }
}

/// What the strategy weighs about one request: its model, token estimates and prices.
struct PickBasis<'a> {
    /// The model the client asked for (a target's `model_mapping` name replaces it).
    model: &'a str,
    input_tokens: u64,
    output_tokens: u64,
    prices: &'a PriceTable,
}

/// Whether `error` is an answer the provider started with a 2xx but that could not be
/// read: not its format (HTML, malformed or wrong-shaped JSON, an invalid first stream
/// event) or cut off mid-body. Such errors carry the provider but no HTTP status.
fn broken_answer(error: &LoomError) -> bool {
    error.kind == ErrorKind::UpstreamError
        && error.upstream.as_ref().is_some_and(|upstream| upstream.status.is_none())
}

/// Whether an error says something about the provider (and counts against its health).
fn provider_fault(error: &LoomError) -> bool {
    error.upstream.is_some() && !matches!(error.kind, ErrorKind::UpstreamRejected | ErrorKind::InvalidRequest)
}

/// For streams, waits for the first chunk so a failure before the client has seen any
/// byte can still fail over; the chunk is put back in front.
async fn first_chunk(mut response: LlmResponse) -> Result<LlmResponse, LoomError> {
    let ResponsePayload::Stream(stream) = &mut response.payload else { return Ok(response) };
    match stream.next().await {
        Some(Err(error)) => Err(error),
        Some(Ok(chunk)) => {
            let rest = std::mem::replace(stream, Box::pin(futures_util::stream::empty()));
            *stream = Box::pin(Prepended { first: Some(chunk), rest });
            Ok(response)
        }
        None => Ok(response),
    }
}

/// A chunk stream with its first chunk put back in front.
struct Prepended {
    first: Option<StreamChunk>,
    rest: ChunkStream,
}

impl futures_util::Stream for Prepended {
    type Item = Result<StreamChunk, LoomError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.first.take() {
            Some(first) => Poll::Ready(Some(Ok(first))),
            None => this.rest.as_mut().poll_next(cx),
        }
    }
}

/// A fresh random number for jitter (std's per-process random keys; not for secrets).
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
    );
    hasher.finish()
}

impl<S> Service<LlmRequest> for Router<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + Sync + 'static,
    S::Future: Send,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        Box::pin(self.inner.clone().route(request, self.prices.clone()))
    }
}

#[cfg(test)]
mod tests {
    use loom_core::UpstreamFailure;
    use loom_providers::{ErrorFields, ProviderError};

    use super::*;

    fn router() -> Router {
        Router::new(Vec::new(), &RoutingConfig::default(), BTreeMap::new())
    }

    fn invalid(reason: &str) -> LoomError {
        ProviderError::InvalidResponse { provider: "primary".into(), reason: reason.into() }.into()
    }

    fn status(status: u16) -> LoomError {
        ProviderError::Status {
            provider: "primary".into(),
            status,
            fields: Box::new(ErrorFields::default()),
            message: "nope".into(),
            retry_after: None,
            body: None,
        }
        .into()
    }

    /// Which of mocks `dear` and `unpriced` a `cost` router over `prices` picks for `model`.
    async fn cost_pick(prices: &PriceTable, model: &str) -> String {
        use loom_core::{ChatRequest, Message, RequestContext, Role};
        use loom_providers::{Provider, ProviderConfig, ProviderType};
        let routing = RoutingConfig { strategy: crate::Strategy::Cost, ..RoutingConfig::default() };
        let targets = ["dear", "unpriced"]
            .map(|name| RouteTarget {
                provider: Provider::from_config(&ProviderConfig::new(name, ProviderType::Mock)).unwrap(),
                state: Arc::new(ProviderState::new(name, routing.health.clone())),
                models: vec![],
                weight: 1,
            })
            .into();
        let router = Router::new(targets, &routing, BTreeMap::new()).with_prices(prices.clone());
        let chat = ChatRequest::new(model, vec![Message::text(Role::User, "hi")]);
        let request = LlmRequest::chat(RequestContext::new("req"), chat);
        router.oneshot(request).await.unwrap().provider.to_string()
    }

    #[tokio::test]
    async fn cost_prices_a_target_without_its_own_price_by_the_model_it_serves() {
        let mut prices = PriceTable::new();
        prices.set_provider_price("dear", loom_tokens::accounting::Price::new(0.01, 0.03));
        // gpt-4o-mini's built-in price is far below `dear`'s.
        assert_eq!(cost_pick(&prices, "gpt-4o-mini").await, "unpriced");
        // A model no table knows leaves `unpriced` without a price: it goes last.
        assert_eq!(cost_pick(&prices, "my-local-llama").await, "dear");
        prices.set_model_price("my-local", loom_tokens::accounting::Price::new(0.0, 0.0));
        assert_eq!(cost_pick(&prices, "my-local-llama").await, "unpriced", "the overrides count too");
    }

    #[test]
    fn broken_answers_are_retried_and_counted_against_the_provider() {
        let router = router();
        for reason in [
            "unexpected JSON: an answer must be a JSON object",
            "reading the body failed: error reading a body from connection",
            "unexpected stream chunk: EOF while parsing a list at line 1 column 13",
            "the stream ended before it was complete",
        ] {
            let error = invalid(reason);
            assert!(broken_answer(&error), "{reason}");
            assert!(router.inner.retryable(&error), "{reason}");
            assert!(provider_fault(&error), "{reason}");
        }
    }

    #[test]
    fn answers_with_a_status_are_retried_only_on_the_retry_codes() {
        let router = router();
        for code in [429, 500, 502, 503] {
            assert!(router.inner.retryable(&status(code)), "{code}");
        }
        // 401 is an `UpstreamError` too, but one with a status: not a broken answer.
        for code in [400, 401, 404, 422, 501] {
            assert!(!broken_answer(&status(code)), "{code}");
            assert!(!router.inner.retryable(&status(code)), "{code}");
        }
    }

    #[test]
    fn errors_not_about_a_broken_answer_are_not_retried() {
        let router = router();
        let unsupported: LoomError =
            ProviderError::Unsupported { provider: "primary".into(), what: "embeddings".into() }.into();
        let config: LoomError =
            ProviderError::Config { provider: "primary".into(), reason: "bad header".into() }.into();
        // A stream translator's own error names no upstream.
        let unattributed = LoomError::new(ErrorKind::UpstreamError, "tool input for a text block");
        let with_status =
            LoomError::new(ErrorKind::UpstreamError, "reported api_error").with_upstream(UpstreamFailure {
                provider: "primary".into(),
                status: Some(501),
                error_type: None,
                code: None,
                retry_after: None,
                body: None,
            });
        for error in [unsupported, config, unattributed, with_status] {
            assert!(!broken_answer(&error), "{}", error.message);
            assert!(!router.inner.retryable(&error), "{}", error.message);
        }
    }
}
