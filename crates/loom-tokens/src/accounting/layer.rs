//! `TokenAccountingLayer`: estimates each request's input tokens for later stages,
//! asks streaming upstreams for usage, and records a [`UsageRecord`] for every
//! request — whole, streamed, failed, or cut off by a client that went away.
//!
//! Texts of at least [`BLOCKING_COUNT_BYTES`](super::BLOCKING_COUNT_BYTES) are tokenized on tokio's blocking pool
//! (inputs, token counts, unreported output), never on the thread polling the request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::Stream;
use loom_core::{
    ChatAnswer, ChatChunk, ChunkStream, Content, InputTokenEstimate, LlmRequest, LlmResponse, LoomError,
    RequestPayload, ResponsePayload, StreamChunk, Usage, WireChunk,
};
use tokio::time::Instant;
use tower::{Layer, Service};

use super::estimate::{self, ChatSize};
use super::offload;
use super::prices::PriceTable;
use super::record::{Outcome, UsageRecord, UsageSource};
use super::recorder::UsageRecorder;
use crate::registry::TokenizerRegistry;

/// Status recorded for a request whose client disconnected (nginx's convention).
pub const CLIENT_CLOSED_STATUS: u16 = 499;
/// Status recorded for a request dropped at the gateway's request timeout before it
/// was answered (what the client is sent then).
pub const TIMEOUT_STATUS: u16 = 504;

#[derive(Clone)]
struct Accounting {
    recorder: Arc<UsageRecorder>,
    prices: PriceTable,
    tokenizers: Arc<TokenizerRegistry>,
    /// Count every request's input exactly before sending it (the `cost` strategy needs
    /// it); otherwise a rough size estimate stands in until the provider reports usage.
    count_input: bool,
    /// The gateway's request timeout: a request dropped after it was timed out, not
    /// abandoned by its client.
    request_timeout: Option<Duration>,
}

impl Accounting {
    /// How a request that is dropped before it ended did end: timed out when it is
    /// past the request timeout, else its client went away. `answered`: the client has
    /// seen the answer's status (200) and part of a stream.
    fn ended_early(&self, pending: &Pending, answered: bool) -> (Outcome, u16) {
        match self.request_timeout {
            Some(limit) if pending.received_at.elapsed() >= limit => {
                (Outcome::Error, if answered { 200 } else { TIMEOUT_STATUS })
            }
            _ => (Outcome::Cancelled, CLIENT_CLOSED_STATUS),
        }
    }
}

/// Records token usage and cost of every request passing through.
///
/// Over any `Service<LlmRequest>` (needs the `accounting` feature):
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use loom_core::{
///     ChatRequest, ChatResponse, LlmRequest, LlmResponse, LoomError, Message, RequestContext, ResponsePayload,
///     Role,
/// };
/// use loom_tokens::TokenizerRegistry;
/// use loom_tokens::accounting::{
///     DEFAULT_MAX_AGGREGATE_BYTES, Dimension, PriceTable, TokenAccountingLayer, UsageRecorder,
/// };
/// use tower::{Layer, ServiceExt};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // Usage kept in memory (no ledger), within the default memory budget.
/// let recorder =
///     Arc::new(UsageRecorder::new(None, Duration::from_secs(1), DEFAULT_MAX_AGGREGATE_BYTES, Vec::new())?);
/// let tokenizers = Arc::new(TokenizerRegistry::new());
/// let layer = TokenAccountingLayer::new(recorder.clone(), PriceTable::new(), tokenizers, false);
///
/// // Your backend: here one that answers every chat with its usage.
/// let backend = tower::service_fn(|_request: LlmRequest| async {
///     let answer: ChatResponse = serde_json::from_value(serde_json::json!({
///         "id": "c1", "model": "gpt-4o", "choices": [],
///         "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
///     }))
///     .map_err(|error| LoomError::internal(error.to_string()))?;
///     Ok::<_, LoomError>(LlmResponse { provider: "my-backend".into(), payload: ResponsePayload::Chat(answer.into()) })
/// });
///
/// let chat = ChatRequest::new("gpt-4o", vec![Message::text(Role::User, "Hi")]);
/// layer.layer(backend).oneshot(LlmRequest::chat(RequestContext::new("req-1"), chat)).await?;
/// let per_model = recorder.report(Dimension::Model, 0, i64::MAX)?;
/// assert_eq!(per_model[0].group, "gpt-4o");
/// assert_eq!((per_model[0].totals.input_tokens, per_model[0].totals.output_tokens), (12, 5));
/// # Ok(())
/// # }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run())
/// # .map_err(|error| error.to_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TokenAccountingLayer {
    accounting: Arc<Accounting>,
}

impl TokenAccountingLayer {
    /// A layer recording into `recorder`, pricing with `prices` and counting with
    /// `tokenizers`; with `count_input`, every request's input is counted exactly up
    /// front (memory for the tokenizer tables, CPU per request), else only when the
    /// provider reports no usage.
    pub fn new(
        recorder: Arc<UsageRecorder>,
        prices: PriceTable,
        tokenizers: Arc<TokenizerRegistry>,
        count_input: bool,
    ) -> Self {
        TokenAccountingLayer {
            accounting: Arc::new(Accounting {
                recorder,
                prices,
                tokenizers,
                count_input,
                request_timeout: None,
            }),
        }
    }

    /// Tells the layer the gateway drops requests after `timeout`: a request dropped
    /// past it is recorded as timed out (`error`, 504 before its answer, 200 mid-stream),
    /// not as cancelled by its client (499).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.accounting).request_timeout = Some(timeout);
        self
    }
}

impl<S> Layer<S> for TokenAccountingLayer {
    type Service = TokenAccounting<S>;

    fn layer(&self, inner: S) -> TokenAccounting<S> {
        TokenAccounting { inner, accounting: self.accounting.clone() }
    }
}

/// The service [`TokenAccountingLayer`] produces.
#[derive(Clone)]
pub struct TokenAccounting<S> {
    inner: S,
    accounting: Arc<Accounting>,
}

/// What is known about a request before its answer.
struct Pending {
    record: UsageRecord,
    input_estimate: u64,
    input_exact: bool,
    started: Instant,
    /// When the gateway received the request (its timeout counts from there).
    received_at: std::time::Instant,
}

impl Pending {
    /// Records the request; an unreported output large enough to count off the worker
    /// ([`offload::is_large`]) is counted and recorded on the blocking pool.
    fn finish(
        self,
        accounting: &Arc<Accounting>,
        usage: Option<&Usage>,
        output_text: Option<String>,
        outcome: Outcome,
        status: u16,
    ) {
        let large_output = output_text.as_ref().is_some_and(|text| offload::is_large(text.len() as u64));
        if usage.is_none() && large_output {
            let accounting = accounting.clone();
            offload::detach(move || self.record(&accounting, None, output_text.as_deref(), outcome, status));
            return;
        }
        self.record(accounting, usage, output_text.as_deref(), outcome, status);
    }

    fn record(
        mut self,
        accounting: &Accounting,
        usage: Option<&Usage>,
        output_text: Option<&str>,
        outcome: Outcome,
        status: u16,
    ) {
        let record = &mut self.record;
        record.latency = self.started.elapsed();
        record.outcome = outcome;
        record.status = status;
        match usage {
            Some(usage) => {
                record.input_tokens = usage.prompt_tokens;
                record.output_tokens = usage.completion_tokens;
                record.cached_tokens = usage.cached_tokens();
                record.reasoning_tokens = usage.reasoning_tokens();
                record.source = UsageSource::Reported;
            }
            None => {
                let model = record.model_served.as_deref().unwrap_or(&record.model_requested);
                let (output, output_exact) = match output_text {
                    Some(text) if !text.is_empty() => estimate::text(&accounting.tokenizers, model, text),
                    _ => (0, true),
                };
                // A failed request before any output is billed nothing.
                record.input_tokens =
                    if outcome == Outcome::Error && output_text.is_none() { 0 } else { self.input_estimate };
                record.output_tokens = output;
                record.source = if self.input_exact && output_exact {
                    UsageSource::Counted
                } else {
                    UsageSource::Estimated
                };
            }
        }
        record.clamp_to_bounds();
        let model = record.model_served.as_deref().unwrap_or(&record.model_requested);
        record.cost = accounting
            .prices
            .price(record.provider.as_deref(), model)
            .map(|price| price.cost(record.input_tokens, record.cached_tokens, record.output_tokens))
            .unwrap_or(0.0);
        accounting.recorder.record(self.record);
    }
}

/// What is known about a request before it is sent, and whether its input is still to
/// be counted off the worker ([`count_input`]); until then its estimate is a rough one.
fn start(request: &mut LlmRequest, accounting: &Accounting) -> (Pending, bool) {
    let context = &request.context;
    let mut deferred = false;
    let (input_estimate, input_exact, model, streamed) = match &mut request.payload {
        RequestPayload::Chat(chat) | RequestPayload::CountTokens(chat) => {
            let (tokens, exact) = if accounting.count_input {
                let size = ChatSize::of(chat);
                deferred = offload::is_large(size.text_bytes);
                if deferred {
                    (estimate::rough_chat(chat), false)
                } else {
                    estimate::chat_of_size(&accounting.tokenizers, chat, &size)
                }
            } else {
                (estimate::rough_chat(chat), false)
            };
            if chat.is_stream() {
                // Usage comes from upstream even when the client did not ask; the edge
                // shows the client a usage chunk only if it asked.
                chat.stream_options.get_or_insert_with(Default::default).include_usage = Some(true);
            }
            (tokens, exact, chat.model.clone(), chat.is_stream())
        }
        RequestPayload::Embeddings(embeddings) => {
            let bytes = estimate::embeddings_text_bytes(embeddings);
            deferred = offload::is_large(bytes);
            let (tokens, exact) = if deferred {
                (bytes.div_ceil(4), false)
            } else {
                estimate::embeddings(&accounting.tokenizers, embeddings)
            };
            (tokens, exact, embeddings.model.clone(), false)
        }
    };
    let record = UsageRecord {
        request_id: context.request_id.clone(),
        time: SystemTime::now(),
        key_id: context.identity.key_id.clone(),
        user: context.identity.user.clone(),
        team: context.identity.team.clone(),
        route: context.route.clone(),
        provider: None,
        model_requested: model,
        model_served: None,
        input_tokens: 0,
        output_tokens: 0,
        cached_tokens: 0,
        reasoning_tokens: 0,
        source: UsageSource::Estimated,
        cost: 0.0,
        latency: Duration::ZERO,
        time_to_first_byte: None,
        status: 200,
        outcome: Outcome::Ok,
        cache_hit: false,
        streamed,
    };
    let received_at = context.received_at;
    request.context.extensions.insert(InputTokenEstimate(input_estimate));
    (Pending { record, input_estimate, input_exact, started: Instant::now(), received_at }, deferred)
}

/// Counts a request's input exactly (on the blocking pool: the request is large).
fn count_input(accounting: &Accounting, request: &LlmRequest) -> (u64, bool) {
    match &request.payload {
        RequestPayload::Chat(chat) | RequestPayload::CountTokens(chat) => {
            estimate::chat(&accounting.tokenizers, chat)
        }
        RequestPayload::Embeddings(embeddings) => estimate::embeddings(&accounting.tokenizers, embeddings),
    }
}

/// The inner call: made at once, or after the input is counted off the worker (with the
/// inner service that was readied for it).
enum Call<S, F> {
    Started(F),
    Deferred { inner: S, request: Box<LlmRequest> },
}

/// A request's record until its answer is in hand. The server drops a request's future
/// when its client leaves before the first byte; dropped with the record still here,
/// it records the request as ended early ([`Accounting::ended_early`]), so every
/// request leaves exactly one record.
struct Unanswered {
    pending: Option<Pending>,
    accounting: Arc<Accounting>,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            let (outcome, status) = self.accounting.ended_early(&pending, false);
            pending.finish(&self.accounting, None, None, outcome, status);
        }
    }
}

/// The text of a whole answer, for counting when the provider reports no usage.
fn answer_text(answer: &ChatAnswer) -> String {
    // Answers without usage are rare (OpenAI-format upstreams report it): decoding is fine here.
    let decoded;
    let response = match answer {
        ChatAnswer::Typed(response) => response,
        ChatAnswer::Wire(_) => match answer.clone().into_typed() {
            Ok(response) => {
                decoded = response;
                &decoded
            }
            Err(_) => return String::new(),
        },
    };
    let mut text = String::new();
    for choice in &response.choices {
        if let Some(content) = &choice.message.content {
            match content {
                Content::Text(value) => text.push_str(value),
                Content::Parts(_) => text.push_str(&content.joined_text()),
            }
        }
        if let Some(reasoning) = &choice.message.reasoning_content {
            text.push_str(reasoning);
        }
        for call in choice.message.tool_calls.iter().flatten() {
            text.push_str(&call.function.name);
            text.push_str(&call.function.arguments);
        }
    }
    text
}

impl<S> Service<LlmRequest> for TokenAccounting<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: LlmRequest) -> Self::Future {
        let (pending, deferred) = start(&mut request, &self.accounting);
        let unanswered = Unanswered { pending: Some(pending), accounting: self.accounting.clone() };
        let call = if deferred {
            // The readied service makes the call; this one keeps a fresh clone.
            let fresh = self.inner.clone();
            Call::Deferred { inner: std::mem::replace(&mut self.inner, fresh), request: Box::new(request) }
        } else {
            Call::Started(self.inner.call(request))
        };
        Box::pin(async move {
            let mut unanswered = unanswered;
            let call = match call {
                Call::Started(call) => call,
                Call::Deferred { mut inner, request } => {
                    let accounting = unanswered.accounting.clone();
                    let counted = offload::off_worker(move || {
                        let count = count_input(&accounting, &request);
                        (request, count)
                    })
                    .await;
                    let Some((request, (tokens, exact))) = counted else {
                        let error = LoomError::internal("counting the request's input tokens failed");
                        if let Some(pending) = unanswered.pending.take() {
                            pending.finish(
                                &unanswered.accounting,
                                None,
                                None,
                                Outcome::Error,
                                error.http_status(),
                            );
                        }
                        return Err(error);
                    };
                    if let Some(pending) = unanswered.pending.as_mut() {
                        (pending.input_estimate, pending.input_exact) = (tokens, exact);
                    }
                    let mut request = *request;
                    request.context.extensions.insert(InputTokenEstimate(tokens));
                    inner.call(request)
                }
            };
            let result = call.await;
            // From here on the request ends in this block, which records it.
            let Some(mut pending) = unanswered.pending.take() else { return result };
            let accounting = &unanswered.accounting;
            let mut response = match result {
                Ok(response) => response,
                Err(error) => {
                    pending.record.provider =
                        error.upstream.as_ref().map(|upstream| Arc::from(upstream.provider.as_str()));
                    pending.finish(accounting, None, None, Outcome::Error, error.http_status());
                    return Err(error);
                }
            };
            pending.record.provider = Some(response.provider.clone());
            pending.record.time_to_first_byte = Some(pending.started.elapsed());
            match &mut response.payload {
                ResponsePayload::Chat(answer) => {
                    pending.record.model_served = Some(answer.model().to_owned());
                    let text = answer.usage().is_none().then(|| answer_text(answer));
                    pending.finish(accounting, answer.usage(), text, Outcome::Ok, 200);
                }
                ResponsePayload::Embeddings(embeddings) => {
                    pending.record.model_served = Some(embeddings.model.clone());
                    let usage = embeddings.usage.as_ref().map(|usage| Usage::new(usage.prompt_tokens, 0));
                    pending.finish(accounting, usage.as_ref(), None, Outcome::Ok, 200);
                }
                ResponsePayload::TokenCount(_) => {
                    pending.finish(accounting, None, None, Outcome::Error, 500);
                    return Err(LoomError::internal("a token count answered a chat or embeddings request"));
                }
                ResponsePayload::Stream(stream) => {
                    pending.record.time_to_first_byte = None;
                    let inner = std::mem::replace(stream, Box::pin(futures_util::stream::empty()));
                    *stream = Box::pin(MeteredStream {
                        inner,
                        meter: Some(Meter {
                            pending,
                            accounting: accounting.clone(),
                            usage: None,
                            text: String::new(),
                            unread: Vec::new(),
                            unread_bytes: 0,
                        }),
                    });
                }
            }
            Ok(response)
        })
    }
}

/// How many bytes of wire chunks a stream keeps unread, in case no usage comes.
const MAX_UNREAD_BYTES: usize = 64 * 1024;

/// What a stream has produced so far.
struct Meter {
    pending: Pending,
    accounting: Arc<Accounting>,
    usage: Option<Usage>,
    /// Generated text, for counting output tokens if the stream reports no usage.
    text: String,
    /// Wire chunks whose text is read only if the stream ends without usage (OpenAI-format
    /// upstreams send it last), or once they pass `MAX_UNREAD_BYTES`.
    unread: Vec<WireChunk>,
    unread_bytes: usize,
}

impl Meter {
    fn observe(&mut self, chunk: &StreamChunk) {
        match chunk {
            StreamChunk::Typed(chunk) => self.observe_typed(chunk),
            StreamChunk::Wire(wire) => {
                if self.pending.record.time_to_first_byte.is_none() {
                    self.pending.record.time_to_first_byte = Some(self.pending.started.elapsed());
                    self.pending.record.model_served = wire.model();
                }
                if let Some(usage) = wire.usage() {
                    self.usage = Some(usage.clone());
                    self.unread = Vec::new();
                } else if self.usage.is_none() {
                    self.unread_bytes += wire.json().len();
                    self.unread.push(wire.clone());
                    if self.unread_bytes > MAX_UNREAD_BYTES {
                        self.read_unread();
                    }
                }
            }
        }
    }

    fn observe_typed(&mut self, chunk: &ChatChunk) {
        if self.pending.record.time_to_first_byte.is_none() {
            self.pending.record.time_to_first_byte = Some(self.pending.started.elapsed());
            self.pending.record.model_served = Some(chunk.model.clone());
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        if self.usage.is_none() {
            push_chunk_text(chunk, &mut self.text);
        }
    }

    fn read_unread(&mut self) {
        // Decoded only now, and only when no usage came: a chunk that does not decode adds no text.
        for chunk in self.unread.drain(..).filter_map(|wire| wire.decode().ok()) {
            push_chunk_text(&chunk, &mut self.text);
        }
        self.unread_bytes = 0;
    }

    fn finish(mut self, outcome: Outcome, status: u16) {
        if self.usage.is_none() {
            self.read_unread();
        }
        let text = self.usage.is_none().then(|| std::mem::take(&mut self.text));
        self.pending.finish(&self.accounting, self.usage.as_ref(), text, outcome, status);
    }
}

/// Appends the text a chunk generates (content, reasoning, refusal, tool names and
/// arguments) to `text`, for counting output tokens when no usage is reported.
fn push_chunk_text(chunk: &ChatChunk, text: &mut String) {
    for choice in &chunk.choices {
        let delta = &choice.delta;
        for piece in [&delta.content, &delta.reasoning_content, &delta.refusal].into_iter().flatten() {
            text.push_str(piece);
        }
        for function in delta.tool_calls.iter().flatten().filter_map(|call| call.function.as_ref()) {
            for piece in [&function.name, &function.arguments].into_iter().flatten() {
                text.push_str(piece);
            }
        }
    }
}

/// A chunk stream that records its usage when it ends, fails, or is dropped.
struct MeteredStream {
    inner: ChunkStream,
    meter: Option<Meter>,
}

impl Stream for MeteredStream {
    type Item = Result<StreamChunk, LoomError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(meter) = self.meter.as_mut() {
                    meter.observe(chunk);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                // The client has seen a 200 and chunks; the error reaches it as an event.
                if let Some(meter) = self.meter.take() {
                    meter.finish(Outcome::Error, 200);
                }
            }
            Poll::Ready(None) => {
                if let Some(meter) = self.meter.take() {
                    meter.finish(Outcome::Ok, 200);
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        if let Some(meter) = self.meter.take() {
            let (outcome, status) = meter.accounting.ended_early(&meter.pending, true);
            meter.finish(outcome, status);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use loom_core::{ChatRequest, EmbeddingsRequest, Message, RequestContext, Role};
    use tower::ServiceExt;

    use super::*;
    use crate::accounting::DEFAULT_MAX_AGGREGATE_BYTES;
    use crate::accounting::estimate::counted_on;
    use crate::accounting::recorder::UsageObserver;
    use crate::{Encoding, TokenizerSpec};

    struct Records(Mutex<Vec<UsageRecord>>);

    impl UsageObserver for Records {
        fn observe(&self, record: &UsageRecord) {
            self.0.lock().unwrap().push(record.clone());
        }
    }

    fn wire(content: &str, usage: &str) -> StreamChunk {
        let json = format!(
            r#"{{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"content":{}}}}}],"usage":{usage}}}"#,
            serde_json::Value::from(content)
        );
        StreamChunk::Wire(WireChunk::parse(Bytes::from(json)).unwrap())
    }

    /// Streams `chunks` through the layer to the end and returns the usage record written.
    async fn record_of(chunks: Vec<StreamChunk>) -> UsageRecord {
        let records = Arc::new(Records(Mutex::new(Vec::new())));
        let recorder = UsageRecorder::new(
            None,
            Duration::from_millis(10),
            DEFAULT_MAX_AGGREGATE_BYTES,
            vec![records.clone()],
        )
        .unwrap();
        let registry = TokenizerRegistry::new().with_fallback(TokenizerSpec::from(Encoding::O200kBase));
        let layer =
            TokenAccountingLayer::new(Arc::new(recorder), PriceTable::new(), Arc::new(registry), false);
        let count = chunks.len();
        let upstream = tower::service_fn(move |_: LlmRequest| {
            let stream: ChunkStream =
                Box::pin(futures_util::stream::iter(chunks.clone().into_iter().map(Ok)));
            std::future::ready(Ok::<_, LoomError>(LlmResponse {
                provider: Arc::from("p"),
                payload: ResponsePayload::Stream(stream),
            }))
        });
        let chat = ChatRequest::new("m", vec![Message::text(Role::User, "Hi")]);
        let response =
            layer.layer(upstream).oneshot(LlmRequest::chat(RequestContext::new("r"), chat)).await.unwrap();
        let ResponsePayload::Stream(stream) = response.payload else { panic!("expected a stream") };
        assert_eq!(stream.count().await, count, "every chunk passes through");
        for _ in 0..500 {
            if let Some(record) = records.0.lock().unwrap().first() {
                return record.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no usage record");
    }

    /// A layer recording into a fresh observer (records reach it synchronously).
    fn layer_and_records(timeout: Option<Duration>) -> (TokenAccountingLayer, Arc<Records>) {
        let records = Arc::new(Records(Mutex::new(Vec::new())));
        let recorder = UsageRecorder::new(
            None,
            Duration::from_millis(10),
            DEFAULT_MAX_AGGREGATE_BYTES,
            vec![records.clone()],
        )
        .unwrap();
        let registry = TokenizerRegistry::new().with_fallback(TokenizerSpec::from(Encoding::O200kBase));
        let layer =
            TokenAccountingLayer::new(Arc::new(recorder), PriceTable::new(), Arc::new(registry), false);
        let layer = match timeout {
            Some(timeout) => layer.with_request_timeout(timeout),
            None => layer,
        };
        (layer, records)
    }

    fn hi() -> LlmRequest {
        LlmRequest::chat(
            RequestContext::new("r"),
            ChatRequest::new("m", vec![Message::text(Role::User, "Hi")]),
        )
    }

    fn outcomes(records: &Records) -> Vec<(Outcome, u16)> {
        records.0.lock().unwrap().iter().map(|record| (record.outcome, record.status)).collect()
    }

    /// Starts a request whose upstream never answers, polls it once and drops it.
    fn drop_before_the_answer(layer: &TokenAccountingLayer) {
        let upstream =
            tower::service_fn(|_: LlmRequest| std::future::pending::<Result<LlmResponse, LoomError>>());
        let mut call = layer.layer(upstream).oneshot(hi());
        assert!(futures_util::FutureExt::now_or_never(&mut call).is_none(), "no answer yet");
        drop(call);
    }

    #[test]
    fn a_request_dropped_before_its_answer_is_recorded_once_as_cancelled() {
        let (layer, records) = layer_and_records(Some(Duration::from_secs(600)));
        drop_before_the_answer(&layer);
        assert_eq!(outcomes(&records), vec![(Outcome::Cancelled, CLIENT_CLOSED_STATUS)]);
        let record = records.0.lock().unwrap()[0].clone();
        // No answer: no output, and the rough input estimate ("Hi": 1, framing 3 + 3).
        assert_eq!((record.input_tokens, record.output_tokens, record.provider), (7, 0, None));
    }

    #[test]
    fn a_request_dropped_past_the_request_timeout_is_recorded_as_timed_out() {
        let (layer, records) = layer_and_records(Some(Duration::ZERO));
        drop_before_the_answer(&layer);
        assert_eq!(outcomes(&records), vec![(Outcome::Error, TIMEOUT_STATUS)]);
    }

    #[tokio::test]
    async fn answered_and_failed_requests_are_recorded_once() {
        let (layer, records) = layer_and_records(None);
        let answer = wire("Hello", r#"{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}"#);
        let upstream = tower::service_fn(move |_: LlmRequest| {
            let stream: ChunkStream = Box::pin(futures_util::stream::iter([Ok(answer.clone())]));
            std::future::ready(Ok::<_, LoomError>(LlmResponse {
                provider: Arc::from("p"),
                payload: ResponsePayload::Stream(stream),
            }))
        });
        let response = layer.layer(upstream).oneshot(hi()).await.unwrap();
        let ResponsePayload::Stream(stream) = response.payload else { panic!("expected a stream") };
        assert_eq!(stream.count().await, 1);
        let failing = tower::service_fn(|_: LlmRequest| {
            std::future::ready(Err::<LlmResponse, _>(LoomError::new(
                loom_core::ErrorKind::RateLimited,
                "slow down",
            )))
        });
        assert!(layer.layer(failing).oneshot(hi()).await.is_err());
        assert_eq!(outcomes(&records), vec![(Outcome::Ok, 200), (Outcome::Error, 429)]);
    }

    /// The record of a stream whose upstream sends one chunk, then fails; `read_all`
    /// reads to the error, else the stream is dropped after the first chunk.
    async fn failing_stream_record(timeout: Option<Duration>, read_all: bool) -> Vec<(Outcome, u16)> {
        let (layer, records) = layer_and_records(timeout);
        let upstream = tower::service_fn(|_: LlmRequest| {
            let chunks =
                [Ok(wire("Hello", "null")), Err(LoomError::new(loom_core::ErrorKind::UpstreamError, "cut"))];
            let stream: ChunkStream = Box::pin(futures_util::stream::iter(chunks));
            std::future::ready(Ok::<_, LoomError>(LlmResponse {
                provider: Arc::from("p"),
                payload: ResponsePayload::Stream(stream),
            }))
        });
        let response = layer.layer(upstream).oneshot(hi()).await.unwrap();
        let ResponsePayload::Stream(mut stream) = response.payload else { panic!("expected a stream") };
        assert!(matches!(stream.next().await, Some(Ok(_))));
        if read_all {
            assert!(matches!(stream.next().await, Some(Err(_))));
            assert!(stream.next().await.is_none());
        }
        drop(stream);
        outcomes(&records)
    }

    #[tokio::test]
    async fn a_stream_failing_midway_is_recorded_with_the_200_its_client_saw() {
        assert_eq!(failing_stream_record(None, true).await, vec![(Outcome::Error, 200)]);
        assert_eq!(
            failing_stream_record(Some(Duration::from_secs(600)), false).await,
            vec![(Outcome::Cancelled, CLIENT_CLOSED_STATUS)]
        );
        // Dropped by the gateway's deadline after the first chunk: timed out, after a 200.
        assert_eq!(failing_stream_record(Some(Duration::ZERO), false).await, vec![(Outcome::Error, 200)]);
    }

    #[test]
    fn text_comes_from_content_reasoning_and_tool_calls() {
        const CONTENT: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi \"you\"","reasoning_content":"think"},"logprobs":null,"finish_reason":null}],"x_vendor":{"a":1}}"#;
        const TOOL: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]}"#;
        const USAGE: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
        let text_of = |json: &'static str| {
            let mut text = String::from("before:");
            push_chunk_text(&serde_json::from_str(json).unwrap(), &mut text);
            text
        };
        assert_eq!(text_of(CONTENT), "before:Hi \"you\"think");
        assert_eq!(text_of(TOOL), "before:get_weather{\"city\":");
        assert_eq!(text_of(USAGE), "before:");
    }

    /// Sends every record it sees down a channel (records counted off the worker arrive late).
    struct RecordChannel(tokio::sync::mpsc::UnboundedSender<UsageRecord>);

    impl UsageObserver for RecordChannel {
        fn observe(&self, record: &UsageRecord) {
            let _ = self.0.send(record.clone());
        }
    }

    /// A layer counting every input exactly (`count_input`), with o200k_base as fallback.
    fn counting_layer() -> (TokenAccountingLayer, tokio::sync::mpsc::UnboundedReceiver<UsageRecord>) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let recorder = UsageRecorder::new(
            None,
            Duration::from_millis(10),
            DEFAULT_MAX_AGGREGATE_BYTES,
            vec![Arc::new(RecordChannel(sender))],
        )
        .unwrap();
        let layer =
            TokenAccountingLayer::new(Arc::new(recorder), PriceTable::new(), Arc::new(fallback()), true);
        (layer, receiver)
    }

    fn fallback() -> TokenizerRegistry {
        TokenizerRegistry::new().with_fallback(TokenizerSpec::from(Encoding::O200kBase))
    }

    /// A chat for `model` whose one message holds `bytes` bytes of words.
    fn chat_of(model: &str, bytes: usize) -> ChatRequest {
        ChatRequest::new(model, vec![Message::text(Role::User, "hello ".repeat(bytes / 6))])
    }

    const FOUR_MB: usize = 4 * 1024 * 1024;

    /// Sends `request` through `layer` to an upstream that fails; returns the input estimate
    /// the upstream was given.
    async fn estimate_sent_upstream(layer: &TokenAccountingLayer, request: LlmRequest) -> Option<u64> {
        let seen = Arc::new(Mutex::new(None));
        let upstream_seen = seen.clone();
        let upstream = tower::service_fn(move |request: LlmRequest| {
            *upstream_seen.lock().unwrap() =
                request.context.extensions.get::<InputTokenEstimate>().map(|estimate| estimate.0);
            std::future::ready(Err::<LlmResponse, _>(LoomError::new(loom_core::ErrorKind::RateLimited, "no")))
        });
        assert!(layer.layer(upstream).oneshot(request).await.is_err());
        *seen.lock().unwrap()
    }

    #[tokio::test]
    async fn large_inputs_are_counted_off_the_polling_thread_and_small_ones_on_it() {
        // A current-thread runtime: this thread polls the requests, as a front-door worker does.
        let here = std::thread::current().id();
        let (layer, _records) = counting_layer();
        for (model, bytes) in [("offload-small-chat", 600), ("offload-large-chat", FOUR_MB)] {
            let chat = chat_of(model, bytes);
            let exact = fallback().counter(model, None).unwrap().count_chat(&chat).estimate().tokens as u64;
            let sent = estimate_sent_upstream(&layer, LlmRequest::chat(RequestContext::new("r"), chat)).await;
            assert_eq!(sent, Some(exact), "{model}: the router gets the exact count, not a rough one");
        }
        assert_eq!(counted_on::threads("offload-small-chat"), vec![here], "a small input counts inline");
        let large = counted_on::threads("offload-large-chat");
        assert_eq!(large.len(), 1);
        assert_ne!(large[0], here, "a 4 MB input counts on the blocking pool");

        let text = "hello ".repeat(FOUR_MB / 6);
        let embeddings: EmbeddingsRequest =
            serde_json::from_value(serde_json::json!({"model": "offload-large-embeddings", "input": text}))
                .unwrap();
        let exact =
            fallback().counter("offload-large-embeddings", None).unwrap().count_text(&text).tokens as u64;
        let sent =
            estimate_sent_upstream(&layer, LlmRequest::embeddings(RequestContext::new("r"), embeddings))
                .await;
        assert_eq!(sent, Some(exact));
        let threads = counted_on::threads("offload-large-embeddings");
        assert!(threads.len() == 1 && threads[0] != here, "{threads:?}");
    }

    #[tokio::test]
    async fn a_large_unreported_output_is_counted_off_the_polling_thread() {
        let here = std::thread::current().id();
        let (layer, mut records) = counting_layer();
        let text = "hello ".repeat(64 * 1024 / 6);
        let json = serde_json::json!({
            "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "offload-large-output",
            "choices": [{"index": 0, "delta": {"content": text}}],
        });
        let chunk = StreamChunk::Wire(WireChunk::parse(Bytes::from(json.to_string())).unwrap());
        let upstream = tower::service_fn(move |_: LlmRequest| {
            let stream: ChunkStream = Box::pin(futures_util::stream::iter([Ok(chunk.clone())]));
            std::future::ready(Ok::<_, LoomError>(LlmResponse {
                provider: Arc::from("p"),
                payload: ResponsePayload::Stream(stream),
            }))
        });
        let chat = chat_of("offload-small-input", 60);
        let response =
            layer.layer(upstream).oneshot(LlmRequest::chat(RequestContext::new("r"), chat)).await.unwrap();
        let ResponsePayload::Stream(stream) = response.payload else { panic!("expected a stream") };
        assert_eq!(stream.count().await, 1);
        let record = records.recv().await.unwrap();
        let exact = fallback().counter("offload-large-output", None).unwrap().count_text(&text).tokens;
        assert_eq!((record.output_tokens, record.source), (exact as u64, UsageSource::Estimated));
        let threads = counted_on::threads("offload-large-output");
        assert!(threads.len() == 1 && threads[0] != here, "{threads:?}");
        assert_eq!(counted_on::threads("offload-small-input"), vec![here]);
    }

    #[tokio::test]
    async fn reported_stream_usage_wins() {
        let usage = r#"{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}"#;
        let record = record_of(vec![wire("Hello", "null"), wire(" world", "null"), wire("", usage)]).await;
        assert_eq!((record.input_tokens, record.output_tokens), (3, 9));
        assert_eq!(record.source, UsageSource::Reported);
        assert_eq!(record.model_served.as_deref(), Some("m"));
    }

    #[tokio::test]
    async fn without_usage_the_generated_text_is_counted() {
        // "Hello world" is two o200k tokens; a long answer passes the unread limit on the way.
        let record = record_of(vec![wire("Hello", "null"), wire(" world", "null")]).await;
        assert_eq!(record.output_tokens, 2);
        assert_ne!(record.source, UsageSource::Reported);

        let word_chunks = MAX_UNREAD_BYTES / 100 + 10;
        let long = record_of((0..word_chunks).map(|_| wire(" hello", "null")).collect()).await;
        assert_eq!(long.output_tokens, word_chunks as u64, "every chunk's text counted once");
    }
}
