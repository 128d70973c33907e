//! Admin server: health and the spec's Prometheus metrics.

use loom_e2e::{TestGateway, openai_config};
use loom_test_support::{MockUpstream, Reply};

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
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
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
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
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
    assert!(text.contains("# TYPE loom_ai_requests counter"), "{text}");
    assert!(!text.contains("sk-test"), "no secrets in metrics");
}
