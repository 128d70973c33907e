use std::sync::Mutex;

use bytes::Bytes;
use futures_util::StreamExt;
use loom_core::{ChatRequest, EmbeddingsRequest, Message, RequestContext, Role};
use tower::ServiceExt;

use super::stream::{MAX_UNREAD_BYTES, push_chunk_text};
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
    let (layer, records) = layer_and_records(None);
    let count = chunks.len();
    let upstream = tower::service_fn(move |_: LlmRequest| {
        let stream: ChunkStream = Box::pin(futures_util::stream::iter(chunks.clone().into_iter().map(Ok)));
        std::future::ready(Ok::<_, LoomError>(LlmResponse::new(
            Arc::from("p"),
            ResponsePayload::Stream(stream),
        )))
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
    let layer = TokenAccountingLayer::new(Arc::new(recorder), PriceTable::new(), Arc::new(registry), false);
    let layer = match timeout {
        Some(timeout) => layer.with_request_timeout(timeout),
        None => layer,
    };
    (layer, records)
}

fn hi() -> LlmRequest {
    LlmRequest::chat(RequestContext::new("r"), ChatRequest::new("m", vec![Message::text(Role::User, "Hi")]))
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
        std::future::ready(Ok::<_, LoomError>(LlmResponse::new(
            Arc::from("p"),
            ResponsePayload::Stream(stream),
        )))
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
        std::future::ready(Ok::<_, LoomError>(LlmResponse::new(
            Arc::from("p"),
            ResponsePayload::Stream(stream),
        )))
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
    let layer = TokenAccountingLayer::new(Arc::new(recorder), PriceTable::new(), Arc::new(fallback()), true);
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
    let exact = fallback().counter("offload-large-embeddings", None).unwrap().count_text(&text).tokens as u64;
    let sent =
        estimate_sent_upstream(&layer, LlmRequest::embeddings(RequestContext::new("r"), embeddings)).await;
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
        std::future::ready(Ok::<_, LoomError>(LlmResponse::new(
            Arc::from("p"),
            ResponsePayload::Stream(stream),
        )))
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

#[tokio::test]
async fn a_usage_report_gets_the_recorded_usage_and_cost_once_the_stream_ends() {
    let recorder =
        UsageRecorder::new(None, Duration::from_millis(10), DEFAULT_MAX_AGGREGATE_BYTES, Vec::new()).unwrap();
    let mut prices = PriceTable::new();
    prices.set_model_price("m", crate::accounting::Price::new(0.002, 0.01));
    let registry = TokenizerRegistry::new().with_fallback(TokenizerSpec::from(Encoding::O200kBase));
    let layer = TokenAccountingLayer::new(Arc::new(recorder), prices, Arc::new(registry), false);
    let answer = wire("Hello", r#"{"prompt_tokens":300,"completion_tokens":100,"total_tokens":400}"#);
    let upstream = tower::service_fn(move |_: LlmRequest| {
        let stream: ChunkStream = Box::pin(futures_util::stream::iter([Ok(answer.clone())]));
        std::future::ready(Ok::<_, LoomError>(LlmResponse::new("p", ResponsePayload::Stream(stream))))
    });
    let (report, mut receiver) = UsageReport::channel();
    let mut request = hi();
    request.context.extensions.insert(report);
    let response = layer.layer(upstream).oneshot(request).await.unwrap();
    let ResponsePayload::Stream(stream) = response.payload else { panic!("expected a stream") };
    assert!(receiver.try_recv().is_err(), "nothing is reported before the stream ends");
    assert_eq!(stream.count().await, 1);
    let usage = receiver.await.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (300, 100));
    // 300 input tokens at $0.002 and 100 output tokens at $0.01 per thousand.
    assert!((usage.cost - 0.0016).abs() < 1e-12, "{usage:?}");
}

#[test]
fn a_usage_report_whose_request_never_reaches_accounting_reports_an_error() {
    let (report, receiver) = UsageReport::channel();
    let mut request = hi();
    request.context.extensions.insert(report);
    drop(request);
    assert!(receiver.blocking_recv().is_err());
}
