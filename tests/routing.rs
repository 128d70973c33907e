//! Routing end to end: every strategy of the spec, failover, health, and /ai/providers.

use std::time::{Duration, Instant};

use loom_e2e::{TestGateway, closed_port, sse_data};
use loom_test_support::{MockUpstream, Reply, SseStep, fixtures};
use serde_json::{Value, json};

const HELLO: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;

/// An `openai` provider entry named `name` at `mock`.
fn provider(name: &str, mock: &MockUpstream, extra: &str) -> String {
    format!(
        "    - name: {name}\n      type: openai\n      api_key: sk-{name}\n      base_url: {}\n{extra}",
        mock.base_url()
    )
}

fn config(providers: &[String], routing: &str) -> String {
    format!("ai_gateway:\n  providers:\n{}  routing:\n{routing}", providers.concat())
}

async fn ask(gateway: &TestGateway) -> (u16, String) {
    let response = gateway.post("/v1/chat/completions", HELLO).await;
    (response.status.as_u16(), response.header("x-loom-provider").unwrap_or_default())
}

async fn providers(gateway: &TestGateway) -> Vec<Value> {
    gateway.admin_get("/ai/providers").await.json()["providers"].as_array().unwrap().clone()
}

/// The `loom_ai_breaker_state` lines of `/metrics` for `provider`.
async fn breaker_metrics(gateway: &TestGateway, provider: &str) -> Vec<String> {
    let prefix = format!("loom_ai_breaker_state{{provider=\"{provider}\",");
    let metrics = gateway.admin_get("/metrics").await.text();
    let mut lines: Vec<String> =
        metrics.lines().filter(|line| line.starts_with(&prefix)).map(str::to_owned).collect();
    lines.sort();
    lines
}

/// What `breaker_metrics` reads for a breaker in `state` (sorted, as it sorts).
fn breaker_lines(provider: &str, state: &str) -> Vec<String> {
    ["closed", "half_open", "open"]
        .iter()
        .map(|each| {
            format!(
                "loom_ai_breaker_state{{provider=\"{provider}\",state=\"{each}\"}} {}",
                u8::from(*each == state)
            )
        })
        .collect()
}

#[tokio::test]
async fn weighted_70_30_is_exact_over_every_window() {
    let (a, b) = (MockUpstream::start_unrecorded().await, MockUpstream::start_unrecorded().await);
    let yaml = config(
        &[provider("openai", &a, ""), provider("anthropic", &b, "")],
        "    strategy: weighted\n    providers:\n      - name: openai\n        weight: 70\n      - name: anthropic\n        weight: 30\n",
    );
    let gateway = TestGateway::start(&yaml).await;
    let mut picks = Vec::new();
    for _ in 0..1000 {
        picks.push(ask(&gateway).await.1);
    }
    let openai = picks.iter().filter(|name| *name == "openai").count();
    assert_eq!((openai, 1000 - openai), (700, 300));
    for window in picks.chunks(100) {
        assert_eq!(
            window.iter().filter(|name| *name == "openai").count(),
            70,
            "every 100 requests split 70/30"
        );
    }
    assert_eq!((a.request_count(), b.request_count()), (700, 300));
}

#[tokio::test]
async fn round_robin_takes_exact_turns() {
    let mocks = [MockUpstream::start().await, MockUpstream::start().await, MockUpstream::start().await];
    let yaml = config(
        &[provider("p1", &mocks[0], ""), provider("p2", &mocks[1], ""), provider("p3", &mocks[2], "")],
        "    strategy: round_robin\n    providers:\n      - name: p1\n      - name: p2\n      - name: p3\n",
    );
    let gateway = TestGateway::start(&yaml).await;
    let mut picks = Vec::new();
    for _ in 0..9 {
        picks.push(ask(&gateway).await.1);
    }
    assert_eq!(picks, ["p1", "p2", "p3", "p1", "p2", "p3", "p1", "p2", "p3"]);
}

const FAILOVER: &str = "    strategy: priority\n    failover:\n      enabled: true\n      retry_codes: [429, 500, 502, 503]\n      max_retries: 2\n      backoff: 1ms\n    providers:\n      - name: openai\n        priority: 1\n      - name: anthropic\n        priority: 2\n";

#[tokio::test]
async fn priority_falls_to_the_second_provider_on_each_retry_code_and_on_refused_connections() {
    let (first, second) = (MockUpstream::start().await, MockUpstream::start().await);
    let yaml = config(&[provider("openai", &first, ""), provider("anthropic", &second, "")], FAILOVER);
    let gateway = TestGateway::start(&yaml).await;
    assert_eq!(ask(&gateway).await, (200, "openai".to_owned()), "priority 1 first");
    for status in [429u16, 500, 502, 503] {
        first.push_reply(Reply::openai_error(status, "server_error", None, "nope"));
        assert_eq!(ask(&gateway).await, (200, "anthropic".to_owned()), "failover on {status}");
    }
    // A 400 is the client's fault: no failover.
    first.push_reply(Reply::openai_error(400, "invalid_request_error", None, "bad"));
    assert_eq!(ask(&gateway).await.0, 400);
    assert_eq!(second.request_count(), 4);

    let refused = closed_port().await;
    let yaml = format!(
        "ai_gateway:\n  providers:\n    - name: openai\n      type: openai\n      api_key: k\n      base_url: http://{refused}/v1\n{}  routing:\n{FAILOVER}",
        provider("anthropic", &second, "")
    );
    let gateway = TestGateway::start(&yaml).await;
    assert_eq!(ask(&gateway).await, (200, "anthropic".to_owned()), "failover on a refused connection");
}

#[tokio::test]
async fn max_retries_is_honoured_and_the_last_error_is_returned() {
    let mocks = [MockUpstream::start().await, MockUpstream::start().await, MockUpstream::start().await];
    for mock in &mocks {
        mock.set_default_reply(Reply::server_error());
    }
    let routing = "    failover:\n      enabled: true\n      max_retries: 1\n      backoff: 1ms\n    providers:\n      - {name: a, priority: 1}\n      - {name: b, priority: 2}\n      - {name: c, priority: 3}\n";
    let yaml = config(
        &[provider("a", &mocks[0], ""), provider("b", &mocks[1], ""), provider("c", &mocks[2], "")],
        routing,
    );
    let gateway = TestGateway::start(&yaml).await;
    let response = gateway.post("/v1/chat/completions", HELLO).await;
    assert_eq!(response.status, 502);
    assert!(response.text().contains("provider `b` returned HTTP 500"), "{}", response.text());
    assert_eq!(
        mocks.iter().map(MockUpstream::request_count).collect::<Vec<_>>(),
        [1, 1, 0],
        "1 try + 1 retry"
    );
}

#[tokio::test]
async fn the_only_provider_is_retried_after_its_retry_after() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::rate_limited(1));
    let routing = "    failover:\n      enabled: true\n      max_retries: 1\n      backoff: 1ms\n";
    let gateway = TestGateway::start(&config(&[provider("solo", &mock, "")], routing)).await;
    let started = Instant::now();
    assert_eq!(ask(&gateway).await, (200, "solo".to_owned()));
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After: {:?}", started.elapsed());
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn cost_picks_the_cheaper_provider_and_follows_price_changes() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let prices = |openai: (f64, f64), anthropic: (f64, f64)| {
        format!(
            "    strategy: cost\n    providers:\n      - name: openai\n        cost_per_1k_input: {}\n        cost_per_1k_output: {}\n      - name: anthropic\n        cost_per_1k_input: {}\n        cost_per_1k_output: {}\n",
            openai.0, openai.1, anthropic.0, anthropic.1
        )
    };
    let providers = [provider("openai", &a, ""), provider("anthropic", &b, "")];
    // The spec's own prices: anthropic is cheaper.
    let gateway = TestGateway::start(&config(&providers, &prices((0.01, 0.03), (0.008, 0.024)))).await;
    for _ in 0..3 {
        assert_eq!(ask(&gateway).await.1, "anthropic");
    }
    let gateway = TestGateway::start(&config(&providers, &prices((0.001, 0.002), (0.008, 0.024)))).await;
    assert_eq!(ask(&gateway).await.1, "openai", "the pick follows the prices");
    // Cheap input, dear output vs the reverse: the request's own limits decide.
    let gateway = TestGateway::start(&config(&providers, &prices((0.001, 0.1), (0.1, 0.001)))).await;
    let short = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","max_tokens":1,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(short.header("x-loom-provider").as_deref(), Some("openai"));
    let long = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","max_tokens":4000,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(long.header("x-loom-provider").as_deref(), Some("anthropic"));
}

#[tokio::test]
async fn latency_converges_on_the_fast_provider_and_finds_a_recovered_one() {
    let (slow, fast) = (MockUpstream::start().await, MockUpstream::start().await);
    slow.set_default_reply(Reply::delayed(Duration::from_millis(40), Reply::chat_completion("gpt-4o")));
    let routing = "    strategy: latency\n    health:\n      probe_interval: 1s\n    providers:\n      - name: slow\n      - name: fast\n";
    let gateway =
        TestGateway::start(&config(&[provider("slow", &slow, ""), provider("fast", &fast, "")], routing))
            .await;
    let mut picks = Vec::new();
    for _ in 0..12 {
        picks.push(ask(&gateway).await.1);
    }
    assert_eq!(&picks[..2], ["slow", "fast"], "each is measured once");
    assert!(picks[2..].iter().all(|name| name == "fast"), "{picks:?}");

    // The fast one slows down, the slow one recovers: a probe finds it again.
    fast.set_default_reply(Reply::delayed(Duration::from_millis(40), Reply::chat_completion("gpt-4o")));
    slow.clear_default_reply();
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let mut later = Vec::new();
    for _ in 0..10 {
        later.push(ask(&gateway).await.1);
    }
    // Both were idle for longer than the probe interval: each gets one probe.
    assert_eq!(&later[..2], ["slow", "fast"], "{later:?}");
    assert!(later[2..].iter().all(|name| name == "slow"), "converges on the recovered one: {later:?}");
}

#[tokio::test]
async fn the_breaker_opens_skips_the_provider_and_recovers() {
    let (first, second) = (MockUpstream::start().await, MockUpstream::start().await);
    let routing = "    health:\n      failure_threshold: 2\n      cooldown: 300ms\n    providers:\n      - {name: first, priority: 1}\n      - {name: second, priority: 2}\n";
    let gateway = TestGateway::start(&config(
        &[provider("first", &first, ""), provider("second", &second, "")],
        routing,
    ))
    .await;
    first.set_default_reply(Reply::server_error());
    assert_eq!(ask(&gateway).await, (502, String::new()));
    assert_eq!(providers(&gateway).await[0]["status"], "degraded");
    assert_eq!(ask(&gateway).await.0, 502);
    let open = providers(&gateway).await;
    assert_eq!(open[0]["status"], "unhealthy");
    assert_eq!(open[0]["breaker"]["state"], "open");
    assert_eq!(open[0]["breaker"]["consecutive_failures"], 2);
    assert_eq!(breaker_metrics(&gateway, "first").await, breaker_lines("first", "open"));
    assert_eq!(breaker_metrics(&gateway, "second").await, breaker_lines("second", "closed"));
    // Open: the first provider is skipped while the second can serve.
    for _ in 0..3 {
        assert_eq!(ask(&gateway).await, (200, "second".to_owned()));
    }
    assert_eq!(first.request_count(), 2);
    first.clear_default_reply();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(providers(&gateway).await[0]["breaker"]["state"], "half_open");
    assert_eq!(breaker_metrics(&gateway, "first").await, breaker_lines("first", "half_open"));
    assert_eq!(ask(&gateway).await, (200, "first".to_owned()), "the half-open probe succeeds");
    assert_eq!(breaker_metrics(&gateway, "first").await, breaker_lines("first", "closed"));
    let recovered = providers(&gateway).await;
    assert_eq!(recovered[0]["status"], "healthy");
    assert_eq!(
        recovered[0]["breaker"],
        json!({"state": "closed", "consecutive_failures": 0, "retry_in_ms": null})
    );
}

#[tokio::test]
async fn streams_fail_over_only_before_their_first_byte() {
    let (first, second) = (MockUpstream::start().await, MockUpstream::start().await);
    let yaml = config(&[provider("openai", &first, ""), provider("anthropic", &second, "")], FAILOVER);
    let gateway = TestGateway::start(&yaml).await;
    let stream = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
    // Before the first byte: an error status, then an error as the first event.
    first.push_reply(Reply::server_error());
    let response = gateway.post("/v1/chat/completions", stream).await;
    assert_eq!(response.header("x-loom-provider").as_deref(), Some("anthropic"));
    assert!(response.text().ends_with("data: [DONE]\n\n"));
    first.push_reply(Reply::sse(vec![SseStep::Data(
        fixtures::error("server_error", None, "boom").to_string(),
    )]));
    let response = gateway.post("/v1/chat/completions", stream).await;
    assert_eq!(response.header("x-loom-provider").as_deref(), Some("anthropic"), "{}", response.text());

    // After the first chunk reached the client: the stream ends with an error event.
    let chunks = fixtures::chat_stream_chunks("gpt-4o", false);
    first.push_reply(Reply::sse(vec![SseStep::json(&chunks[0]), SseStep::json(&chunks[1])]));
    let response = gateway.post("/v1/chat/completions", stream).await;
    assert_eq!(response.header("x-loom-provider").as_deref(), Some("openai"));
    let events = sse_data(&response.text());
    assert_eq!(events.len(), 3, "{events:?}");
    let error: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(error["error"]["type"], "upstream_error");
    assert_eq!(second.request_count(), 2, "no failover once the client has bytes");
}

#[tokio::test]
async fn admin_providers_has_the_spec_shape_with_tokens() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let yaml =
        config(&[provider("openai", &a, ""), provider("anthropic", &b, "")], "    strategy: priority\n");
    let gateway = TestGateway::start(&yaml).await;
    for _ in 0..3 {
        assert_eq!(ask(&gateway).await.0, 200);
    }
    let list = providers(&gateway).await;
    assert_eq!(list.len(), 2);
    let openai = &list[0];
    let keys: Vec<&str> = openai.as_object().unwrap().keys().map(String::as_str).collect();
    for key in ["name", "status", "requests", "tokens_in", "tokens_out", "avg_latency_ms", "breaker"] {
        assert!(keys.contains(&key), "{key} missing from {openai}");
    }
    assert_eq!(
        (
            &openai["name"],
            &openai["status"],
            &openai["requests"],
            &openai["tokens_in"],
            &openai["tokens_out"]
        ),
        (&json!("openai"), &json!("healthy"), &json!(3), &json!(27), &json!(18))
    );
    assert!(openai["avg_latency_ms"].is_u64());
    assert_eq!((&list[1]["name"], &list[1]["requests"]), (&json!("anthropic"), &json!(0)));
}

#[tokio::test]
async fn routes_with_their_own_routing_block_use_it() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let yaml = format!(
        "{}routes:\n  - id: default\n    path: /v1/*\n    ai_gateway: true\n  - id: batch\n    path: /batch/v1/*\n    ai_gateway: true\n    routing:\n      strategy: priority\n      providers:\n        - name: b\n",
        config(
            &[provider("a", &a, ""), provider("b", &b, "")],
            "    providers:\n      - {name: a, priority: 1}\n      - {name: b, priority: 2}\n"
        )
    );
    let gateway = TestGateway::start(&yaml).await;
    assert_eq!(ask(&gateway).await.1, "a");
    let batch = gateway.post("/batch/v1/chat/completions", HELLO).await;
    assert_eq!(batch.header("x-loom-provider").as_deref(), Some("b"));
}
