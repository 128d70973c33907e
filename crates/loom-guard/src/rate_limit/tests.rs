//! The rate-limit stage over token accounting, in process: reservations settle with the
//! recorded usage, refusals are recorded, and a failing backend follows `on_state_error`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use loom_core::{
    ChatRequest, ChunkStream, LlmRequest, LlmResponse, LoomError, Message, RequestContext, ResponsePayload,
    Role, StreamChunk, WireChunk,
};
use loom_tokens::TokenizerRegistry;
use loom_tokens::accounting::{
    DEFAULT_MAX_AGGREGATE_BYTES, Outcome, PriceTable, TokenAccountingLayer, UsageObserver, UsageRecord,
    UsageRecorder,
};
use tower::{Layer, Service, ServiceExt};

use super::RateLimitLayer;
use crate::{
    BudgetConfig, BudgetScope, Budgets, FailMode, GuardState, LimitConfig, Limits, OnStateError, Period,
    Scope, StateConfig,
};

struct Records(Mutex<Vec<UsageRecord>>);

impl UsageObserver for Records {
    fn observe(&self, record: &UsageRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

fn recorder() -> (Arc<UsageRecorder>, Arc<Records>) {
    let records = Arc::new(Records(Mutex::new(Vec::new())));
    let recorder = UsageRecorder::new(
        None,
        Duration::from_millis(5),
        DEFAULT_MAX_AGGREGATE_BYTES,
        vec![records.clone()],
    )
    .unwrap();
    (Arc::new(recorder), records)
}

/// A streamed answer whose last chunk reports 10 input and 5 output tokens.
fn streaming_backend()
-> impl Service<LlmRequest, Response = LlmResponse, Error = LoomError, Future: Send> + Clone + Send {
    tower::service_fn(|_: LlmRequest| async {
        let json = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hello"}}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#;
        let chunk = StreamChunk::Wire(WireChunk::parse(Bytes::from(json)).unwrap());
        let stream: ChunkStream = Box::pin(futures_util::stream::iter([Ok(chunk)]));
        Ok::<_, LoomError>(LlmResponse::new("p", ResponsePayload::Stream(stream)))
    })
}

fn chat(max_tokens: u32) -> LlmRequest {
    let mut chat = ChatRequest::new("m", vec![Message::text(Role::User, "Hi")]);
    chat.max_tokens = Some(max_tokens);
    LlmRequest::chat(RequestContext::new("r"), chat)
}

fn tokens_per_minute(tokens: u64) -> Limits {
    Limits::new(&[LimitConfig {
        scope: Scope::Global,
        tokens_per_minute: Some(tokens),
        ..LimitConfig::default()
    }])
}

fn remaining_tokens(response: &LlmResponse) -> u64 {
    response.headers["x-ratelimit-remaining-tokens"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_stream_s_reservation_is_settled_with_its_recorded_usage_when_it_ends() {
    let (recorder, _) = recorder();
    let accounting =
        TokenAccountingLayer::new(recorder, PriceTable::new(), Arc::new(TokenizerRegistry::new()), false);
    let service = RateLimitLayer::new(tokens_per_minute(10_000), Budgets::new(&[]), GuardState::memory(100))
        .layer(accounting.layer(streaming_backend()));
    // Reserves the rough input (1 token of text + 6 of framing) and max_tokens.
    let first = service.clone().oneshot(chat(1000)).await.unwrap();
    assert_eq!(remaining_tokens(&first), 10_000 - 1007);
    let ResponsePayload::Stream(stream) = first.payload else { panic!("a stream") };
    assert_eq!(stream.count().await, 1);
    // The settle task runs once this task yields: then only the 15 recorded tokens stay
    // spent (a probe reserves 8 more, and the bucket refills by under 20 tokens meanwhile).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let probe = service.oneshot(chat(1)).await.unwrap();
    let remaining = remaining_tokens(&probe) + 8;
    assert!((10_000 - 15..=10_000).contains(&remaining), "the reservation came back: {remaining}");
}

#[tokio::test]
async fn a_request_that_never_reaches_accounting_releases_its_reservation() {
    let blocked = tower::service_fn(|_: LlmRequest| async {
        Err::<LlmResponse, _>(LoomError::new(
            loom_core::ErrorKind::InvalidRequest,
            "blocked by a later stage",
        ))
    });
    let service = RateLimitLayer::new(tokens_per_minute(2000), Budgets::new(&[]), GuardState::memory(100))
        .layer(blocked);
    for _ in 0..5 {
        // Each reserves 1007 of 2000: without the release the third would be refused.
        let error = service.clone().oneshot(chat(1000)).await.unwrap_err();
        assert_eq!(error.http_status(), 400, "{error:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_budget_refusal_is_recorded_at_zero_cost_with_its_reason() {
    let (recorder, records) = recorder();
    let budgets = Budgets::new(&[BudgetConfig {
        scope: BudgetScope::Team,
        matches: None,
        period: Period::Day,
        max_cost_usd: None,
        max_tokens: Some(0),
    }]);
    let service = RateLimitLayer::new(Limits::new(&[]), budgets, GuardState::memory(100))
        .with_recorder(recorder.clone())
        .layer(streaming_backend());
    let mut request = chat(10);
    request.context.identity.team = Some("web".into());
    let error = service.oneshot(request).await.unwrap_err();
    assert_eq!(error.http_status(), 429);
    assert_eq!(error.code.as_deref(), Some("insufficient_quota"));
    assert!(error.message.starts_with("Budget exceeded: team web daily tokens"), "{}", error.message);
    recorder.flush();
    let records = records.0.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].outcome, records[0].status, records[0].cost, records[0].refusal.as_deref()),
        (Outcome::Refused, 429, 0.0, Some("budget:team:tokens"))
    );
}

#[tokio::test]
async fn a_dead_backend_lets_rate_limits_through_and_refuses_budgets() {
    // Nothing listens on port 1.
    let config = StateConfig {
        url: Some(loom_core::Secret::new("redis://127.0.0.1:1/")),
        timeout: Duration::from_millis(200),
        ..StateConfig::default()
    };
    let state = GuardState::redis(&config).unwrap();
    let limits = tokens_per_minute(10_000);
    let open =
        RateLimitLayer::new(limits.clone(), Budgets::new(&[]), state.clone()).layer(streaming_backend());
    assert!(open.oneshot(chat(10)).await.is_ok());
    let budget = BudgetConfig {
        scope: BudgetScope::Team,
        matches: None,
        period: Period::Month,
        max_cost_usd: Some(10.0),
        max_tokens: None,
    };
    let closed =
        RateLimitLayer::new(limits.clone(), Budgets::new(std::slice::from_ref(&budget)), state.clone())
            .layer(streaming_backend());
    let mut request = chat(10);
    request.context.identity.team = Some("web".into());
    let error = closed.oneshot(request).await.unwrap_err();
    assert_eq!((error.http_status(), error.code.as_deref()), (503, Some("state_unavailable")));
    // Configured the other way round.
    let open_budgets = RateLimitLayer::new(limits, Budgets::new(&[budget]), state)
        .with_on_state_error(OnStateError { rate_limits: FailMode::FailClosed, budgets: FailMode::FailOpen })
        .layer(streaming_backend());
    let error = open_budgets.oneshot(chat(10)).await.unwrap_err();
    assert_eq!(error.http_status(), 503);
}
