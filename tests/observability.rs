//! Admin server: health and the spec's Prometheus metrics.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use loom_e2e::{TestGateway, openai_config, read_whole};
use loom_test_support::fixtures::chat_stream_steps;
use loom_test_support::{MockUpstream, Reply, SseStep};

#[tokio::test]
async fn health_answers_ok() {
    let gateway = TestGateway::start("ai_gateway:\n  providers:\n    - name: mock\n      type: mock\n").await;
    let response = gateway.admin_get("/health").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn metrics_count_requests_and_time_them_exactly() {
    let mock = MockUpstream::start().await;
    // Only configured models are label values (tests/hardening.rs shows the others).
    let models = "      models: [gpt-4o, gpt-4o-mini]\n";
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), models, "")).await;
    for _ in 0..3 {
        let response = gateway
            .post("/v1/chat/completions", r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#)
            .await;
        assert_eq!(response.status, 200);
    }
    let streamed = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    assert!(streamed.text().ends_with("data: [DONE]\n\n"));
    mock.push_reply(Reply::server_error());
    let failed = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(failed.status, 502);
    // Rejected before reaching a provider: not counted.
    let rejected = gateway.post("/v1/chat/completions", "{").await;
    assert_eq!(rejected.status, 400);

    let metrics = gateway.admin_get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.header("content-type").as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(metrics.header("vary").as_deref(), Some("accept"));
    let text = metrics.text();
    let line = |prefix: &str| {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"))
            .to_owned()
    };
    assert_eq!(
        line("loom_ai_requests_total{provider=\"openai\",model=\"gpt-4o\"}"),
        "loom_ai_requests_total{provider=\"openai\",model=\"gpt-4o\"} 3"
    );
    assert_eq!(
        line("loom_ai_requests_total{provider=\"openai\",model=\"gpt-4o-mini\"}"),
        "loom_ai_requests_total{provider=\"openai\",model=\"gpt-4o-mini\"} 2"
    );
    assert_eq!(
        line("loom_ai_duration_seconds_count{provider=\"openai\"}"),
        "loom_ai_duration_seconds_count{provider=\"openai\"} 5"
    );
    assert!(text.contains("# TYPE loom_ai_duration_seconds histogram"), "{text}");
    // Prometheus text 0.0.4: the TYPE line names the sample, `_total` included.
    assert!(text.lines().any(|line| line == "# TYPE loom_ai_requests_total counter"), "{text}");
    assert!(text.lines().any(|line| line == "# TYPE loom_ai_tokens_total counter"), "{text}");
    assert!(text.lines().any(|line| line == "# TYPE loom_ai_cost_total counter"), "{text}");
    assert!(!text.contains("# EOF") && !text.contains("# TYPE loom_ai_requests counter"), "{text}");
    assert!(!text.contains("sk-test"), "no secrets in metrics");
}

#[tokio::test]
async fn metrics_are_openmetrics_when_the_scraper_asks_for_it() {
    let gateway = TestGateway::start("ai_gateway:\n  providers:\n    - name: mock\n      type: mock\n").await;
    let chat = r#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#;
    assert_eq!(gateway.post("/v1/chat/completions", chat).await.status, 200);
    let url = format!("http://{}/metrics", gateway.admin_addr);
    // What Prometheus 2.x sends.
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let response =
        read_whole(gateway.send(Method::GET, &url, &[("accept", accept)], Bytes::new()).await).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = response.text();
    assert!(text.lines().any(|line| line == "# TYPE loom_ai_requests counter"), "{text}");
    assert!(
        text.lines().any(|line| line == "loom_ai_requests_total{provider=\"mock\",model=\"other\"} 1"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");

    for accept in ["text/plain;version=0.0.4", "*/*", "application/json"] {
        let response =
            read_whole(gateway.send(Method::GET, &url, &[("accept", accept)], Bytes::new()).await).await;
        assert_eq!(
            response.header("content-type").as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept}"
        );
        assert!(
            response.text().lines().any(|line| line == "# TYPE loom_ai_requests_total counter"),
            "{accept}"
        );
    }
}

/// The `_sum` of a histogram series in Prometheus text.
fn histogram_sum(text: &str, series: &str) -> f64 {
    let prefix = format!("{series}_sum{{provider=\"openai\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn overhead_leaves_out_upstream_waits_and_failover_backoff() {
    const WAIT: Duration = Duration::from_millis(400);
    let mock = MockUpstream::start().await;
    let routing = "  routing:\n    failover:\n      enabled: true\n      max_retries: 1\n      backoff: 800ms\n      max_backoff: 400ms\n";
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", routing)).await;
    let chat = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;

    // (The jittered backoff, 0.5x to 1.5x of 800 ms, is capped at exactly WAIT.)
    // A slow whole answer; a stream whose first event is slow; a retry after a backoff.
    mock.push_reply(Reply::delayed(WAIT, Reply::chat_completion("gpt-4o")));
    assert_eq!(gateway.post("/v1/chat/completions", chat).await.status, 200);
    let mut steps = vec![SseStep::Delay(WAIT)];
    steps.extend(chat_stream_steps("gpt-4o", false));
    mock.push_reply(Reply::sse(steps));
    let streamed = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    assert!(streamed.text().ends_with("data: [DONE]\n\n"));
    mock.push_reply(Reply::server_error());
    assert_eq!(gateway.post("/v1/chat/completions", chat).await.status, 200);
    // A failed request is not an answer: no overhead is recorded for it.
    mock.set_default_reply(Reply::server_error());
    assert_eq!(gateway.post("/v1/chat/completions", chat).await.status, 502);

    let text = gateway.admin_get("/metrics").await.text();
    assert!(text.contains("# TYPE loom_ai_overhead_seconds histogram"), "{text}");
    assert!(
        text.lines().any(|line| line == "loom_ai_overhead_seconds_count{provider=\"openai\"} 3"),
        "three answers: {text}"
    );
    // Each of the three answers waited at least WAIT; Loom's own time is a small part of
    // one WAIT, so a sum that still held any of the waits would be over it.
    let waited = 3.0 * WAIT.as_secs_f64();
    assert!(histogram_sum(&text, "loom_ai_duration_seconds") >= waited, "{text}");
    let overhead = histogram_sum(&text, "loom_ai_overhead_seconds");
    assert!(overhead > 0.0 && overhead < WAIT.as_secs_f64(), "overhead {overhead} s: {text}");
}
