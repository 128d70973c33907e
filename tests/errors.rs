//! Every error row of the contract: status, OpenAI-style body, and no panic on bad input.

use std::time::Duration;

use http::Method;
use loom_e2e::{TestGateway, closed_port, next_frame, openai_config, sse_data};
use loom_test_support::{MockUpstream, Reply, SseStep, fixtures};
use serde_json::{Value, json};

const HELLO: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;

fn assert_error(body: &Value, kind: &str, code: Option<&str>) {
    let error = &body["error"];
    assert!(error["message"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
    assert_eq!(error["type"], kind, "{body}");
    assert_eq!(error["code"], code.map_or(Value::Null, |code| Value::String(code.into())), "{body}");
    assert!(error.as_object().unwrap().contains_key("param"), "{body}");
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response = gateway.post("/v1/chat/completions", r#"{"model": "gpt-4o", "messages": ["#).await;
    assert_eq!(response.status, 400);
    let body = response.json();
    assert_error(&body, "invalid_request_error", None);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("The request body is not valid JSON"));
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn wrong_field_type_is_a_400_naming_the_field() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let cases = [
        (r#"{"model":"gpt-4o","messages":[{"role":"user","content":42}]}"#, "messages[0].content"),
        (r#"{"model":"gpt-4o","messages":[{"role":"wizard","content":"x"}]}"#, "messages[0].role"),
        (
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"temperature":"warm"}"#,
            "temperature",
        ),
        (r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#, "max_tokens"),
        (r#"{"model":"gpt-4o","messages":[]}"#, "messages"),
        (r#"{"model":7,"messages":[]}"#, "model"),
    ];
    for (body, param) in cases {
        let response = gateway.post("/v1/chat/completions", body).await;
        assert_eq!(response.status, 400, "{body}");
        let json = response.json();
        assert_error(&json, "invalid_request_error", None);
        assert_eq!(json["error"]["param"], param, "{body}");
        assert!(json["error"]["message"].as_str().unwrap().contains(param), "{json}");
    }
    let response = gateway.post("/v1/embeddings", r#"{"model":"e","input":{"text":"x"}}"#).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"]["param"], "input");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn a_missing_field_is_a_400_naming_it() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let cases = [
        ("/v1/chat/completions", r#"{"messages":[{"role":"user","content":"Hi"}]}"#, "model"),
        ("/v1/chat/completions", r#"{"model":"gpt-4o"}"#, "messages"),
        ("/v1/chat/completions", r#"{"model":"gpt-4o","messages":[{"content":"Hi"}]}"#, "messages[0].role"),
        ("/v1/embeddings", r#"{"input":"Hi"}"#, "model"),
        ("/v1/embeddings", r#"{"model":"text-embedding-3-small"}"#, "input"),
    ];
    for (path, body, param) in cases {
        let response = gateway.post(path, body).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(
            response.json(),
            json!({"error": {"message": format!("`{param}` is required"), "type": "invalid_request_error",
                "param": param, "code": null}}),
            "{path} {body}"
        );
    }
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn unknown_model_is_a_404_listing_what_is_served() {
    let mock = MockUpstream::start().await;
    let yaml = openai_config(&mock.base_url(), "      models: [gpt-4o, gpt-4o-mini]\n", "");
    let gateway = TestGateway::start(&yaml).await;
    let response = gateway
        .post("/v1/chat/completions", r#"{"model":"gpt-9","messages":[{"role":"user","content":"Hi"}]}"#)
        .await;
    assert_eq!(response.status, 404);
    let body = response.json();
    assert_error(&body, "invalid_request_error", Some("model_not_found"));
    assert_eq!(body["error"]["param"], "model");
    assert_eq!(
        body["error"]["message"],
        "The model `gpt-9` does not exist; models served here: gpt-4o, gpt-4o-mini"
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn body_over_the_limit_is_a_413() {
    let mock = MockUpstream::start().await;
    let yaml = format!("server:\n  max_body_bytes: 1024\n{}", openai_config(&mock.base_url(), "", ""));
    let gateway = TestGateway::start(&yaml).await;
    let big =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(2000)}]}).to_string();
    let response = gateway.post("/v1/chat/completions", &big).await;
    assert_eq!(response.status, 413);
    assert_error(&response.json(), "invalid_request_error", Some("request_too_large"));
    // Also when the client streams the body without a declared length.
    let chunked = gateway
        .send(Method::POST, &gateway.url("/v1/chat/completions"), &[("transfer-encoding", "chunked")], big)
        .await;
    assert_eq!(chunked.status(), 413);
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn upstream_429_is_a_429_with_retry_after() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::rate_limited(7));
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response = gateway.post("/v1/chat/completions", HELLO).await;
    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after").as_deref(), Some("7"));
    let body = response.json();
    assert_error(&body, "rate_limit_error", Some("rate_limit_exceeded"));
    assert!(
        body["error"]["message"].as_str().unwrap().contains("provider `openai` returned HTTP 429"),
        "{body}"
    );
}

#[tokio::test]
async fn an_upstream_400_names_the_field_the_upstream_named() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::json_status(
        400,
        serde_json::json!({"error": {"message": "Invalid type for 'messages[0].content'.",
            "type": "invalid_request_error", "param": "messages[0].content", "code": "invalid_type"}}),
    ));
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response = gateway.post("/v1/chat/completions", HELLO).await;
    assert_eq!(response.status, 400);
    let body = response.json();
    assert_error(&body, "invalid_request_error", Some("invalid_type"));
    assert_eq!(body["error"]["param"], "messages[0].content", "{body}");
}

#[tokio::test]
async fn upstream_5xx_is_a_502() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::server_error());
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response = gateway.post("/v1/chat/completions", HELLO).await;
    assert_eq!(response.status, 502);
    assert_error(&response.json(), "upstream_error", response.json()["error"]["code"].as_str());
    assert!(response.text().contains("returned HTTP 500"), "{}", response.text());
}

#[tokio::test]
async fn upstream_refused_is_a_502() {
    let port = closed_port().await;
    let gateway = TestGateway::start(&openai_config(&format!("http://{port}/v1"), "", "")).await;
    let response = gateway.post("/v1/chat/completions", HELLO).await;
    assert_eq!(response.status, 502);
    let body = response.json();
    assert_error(&body, "upstream_error", Some("upstream_unavailable"));
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("could not reach provider `openai`"),
        "{body}"
    );
}

#[tokio::test]
async fn upstream_timeout_is_a_504() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::Hang);
    let yaml = openai_config(&mock.base_url(), "      timeouts:\n        first_byte: 200ms\n", "");
    let gateway = TestGateway::start(&yaml).await;
    let response = gateway.post("/v1/chat/completions", HELLO).await;
    assert_eq!(response.status, 504);
    let body = response.json();
    assert_error(&body, "timeout_error", Some("upstream_timeout"));
    assert_eq!(
        body["error"]["message"],
        "provider `openai` timed out waiting for the response to start after 200ms"
    );
}

/// The error event a stream ends with when the upstream sends its first chunk and then
/// `after`, with `provider_extra` in the provider's config.
async fn stream_error_after_first_chunk(after: Vec<SseStep>, provider_extra: &str) -> Value {
    let mock = MockUpstream::start().await;
    let chunks = fixtures::chat_stream_chunks("gpt-4o", false);
    let mut steps = vec![SseStep::json(&chunks[0])];
    steps.extend(after);
    mock.push_reply(Reply::sse(steps));
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), provider_extra, "")).await;
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
    let response = gateway.post("/v1/chat/completions", body).await;
    assert_eq!(response.status, 200);
    let events = sse_data(&response.text());
    assert_eq!(events.len(), 2, "the first chunk, then the error: {events:?}");
    serde_json::from_str(&events[1]).unwrap()
}

#[tokio::test]
async fn stalled_stream_ends_with_an_error_event() {
    let after = vec![SseStep::Delay(Duration::from_secs(5))];
    let error = stream_error_after_first_chunk(after, "      timeouts:\n        idle: 200ms\n").await;
    assert_error(&error, "timeout_error", Some("upstream_timeout"));
    assert_eq!(
        error["error"]["message"],
        "provider `openai` timed out waiting for the next stream chunk after 200ms"
    );
}

#[tokio::test]
async fn an_oversized_stream_event_ends_the_stream_with_an_error() {
    // One event larger than Loom reads (16 MiB): the stream fails instead of memory growing.
    let oversized = format!("data: {}\n\n", "x".repeat(17 * 1024 * 1024));
    let error = stream_error_after_first_chunk(vec![SseStep::Raw(oversized), SseStep::done()], "").await;
    assert_error(&error, "upstream_error", None);
    assert_eq!(
        error["error"]["message"],
        "provider `openai` sent an invalid response: a stream event exceeds 16777216 bytes"
    );
}

#[tokio::test]
async fn upstream_errors_never_leak_the_api_key() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::openai_error(
        401,
        "invalid_request_error",
        Some("invalid_api_key"),
        "Incorrect API key provided: sk-test-key-0123456789. Also sk-proj-****abcd1234.",
    ));
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response = gateway.post("/v1/chat/completions", HELLO).await;
    assert_eq!(response.status, 502);
    let text = response.text();
    assert!(!text.contains("sk-test-key-0123456789") && !text.contains("abcd1234"), "{text}");
    assert!(text.contains("Incorrect API key provided: [redacted]. Also [redacted]."), "{text}");
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let yaml = "ai_gateway:\n  providers:\n    - name: mock\n      type: mock\n";
    let gateway = TestGateway::start(yaml).await;
    let response = gateway.post("/v1/completions-typo", HELLO).await;
    assert_eq!(response.status, 404);
    assert_error(&response.json(), "invalid_request_error", Some("unknown_url"));
    let response = gateway.get("/v1/chat/completions").await;
    assert_eq!(response.status, 405);
    assert_error(&response.json(), "invalid_request_error", Some("method_not_allowed"));
    let response = gateway.get("/elsewhere").await;
    assert_eq!(response.status, 404);
}

#[tokio::test]
async fn hostile_bodies_get_clear_errors_and_the_gateway_keeps_serving() {
    let yaml = "ai_gateway:\n  providers:\n    - name: mock\n      type: mock\n";
    let gateway = TestGateway::start(yaml).await;
    let deep = "[".repeat(100_000);
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"text\"".to_vec(),
        deep.into_bytes(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        br#"{"model":"m","messages":[{"role":"user","content":[{"type":7}]}]}"#.to_vec(),
        br#"{"model":"m","messages":[{"role":"user","content":[{}]}]}"#.to_vec(),
        br#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}"#.to_vec(),
        br#"{"model":"m","messages":[{"role":"user","content":"\ud800"}]}"#.to_vec(),
        br#"{"model":"m","messages":[{"role":"user","content":"x"}],"seed":1e400}"#.to_vec(),
    ];
    for body in bodies {
        for path in ["/v1/chat/completions", "/v1/embeddings"] {
            let response = loom_e2e::read_whole(
                gateway
                    .send(
                        Method::POST,
                        &gateway.url(path),
                        &[("content-type", "application/json")],
                        body.clone(),
                    )
                    .await,
            )
            .await;
            assert_eq!(
                response.status,
                400,
                "{path} {:?}: {}",
                String::from_utf8_lossy(&body),
                response.text()
            );
            assert_error(&response.json(), "invalid_request_error", None);
        }
    }
    let response = gateway.post("/v1/chat/completions", HELLO).await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn streamed_upstream_error_status_is_reported_before_the_stream_starts() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::rate_limited(2));
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
    let response = gateway
        .send(
            Method::POST,
            &gateway.url("/v1/chat/completions"),
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let mut stream = response.into_body();
    let frame = next_frame(&mut stream, Duration::from_secs(5)).await.unwrap();
    let json: Value = serde_json::from_slice(&frame).unwrap();
    assert_error(&json, "rate_limit_error", Some("rate_limit_exceeded"));
}

#[tokio::test]
async fn server_request_timeout_bounds_whole_and_streamed_requests() {
    let yaml = "server:\n  request_timeout: 300ms\nai_gateway:\n  providers:\n    - name: slow\n      type: mock\n      mock:\n        latency: 0ms\n        chunk_delay: 10s\n    - name: late\n      type: mock\n      models: [late-model]\n      mock:\n        latency: 10s\n  routing:\n    providers:\n      - name: late\n      - name: slow\n";
    let gateway = TestGateway::start(yaml).await;
    let whole = gateway
        .post("/v1/chat/completions", r#"{"model":"late-model","messages":[{"role":"user","content":"Hi"}]}"#)
        .await;
    assert_eq!(whole.status, 504);
    let body = whole.json();
    assert_error(&body, "timeout_error", Some("request_timeout"));
    assert_eq!(body["error"]["message"], "The request took longer than server.request_timeout (300ms)");

    let streamed = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"any","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    assert_eq!(streamed.status, 200);
    let events = sse_data(&streamed.text());
    assert_eq!(events.len(), 2, "the first chunk, then the timeout: {events:?}");
    let error: Value = serde_json::from_str(&events[1]).unwrap();
    assert_error(&error, "timeout_error", Some("request_timeout"));
}
