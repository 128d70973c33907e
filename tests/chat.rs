//! Chat completions, embeddings and models through the real HTTP surface.

use std::time::Duration;

use http::Method;
use loom_e2e::{TestGateway, next_frame, openai_config, read_whole, sse_data};
use loom_test_support::{Gate, MockUpstream, Reply, SseStep, fixtures};
use serde_json::{Value, json};

async fn gateway_for(mock: &MockUpstream) -> TestGateway {
    TestGateway::start(&openai_config(&mock.base_url(), "", "")).await
}

#[tokio::test]
async fn whole_chat_reaches_upstream_unchanged_and_answers_exactly() {
    let mock = MockUpstream::start().await;
    let gateway = gateway_for(&mock).await;
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}]}
        ],
        "temperature": 0.2,
        "max_completion_tokens": 64,
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "store": false,
        "prediction": {"type": "content", "content": "Hello"}
    });
    let response = gateway
        .post_with(
            "/v1/chat/completions",
            &[("content-type", "application/json"), ("x-request-id", "trace-42")],
            &body.to_string(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(response.header("x-request-id").as_deref(), Some("trace-42"));
    assert_eq!(response.header("x-loom-provider").as_deref(), Some("openai"));
    // OpenAI upstream to OpenAI client: the answer arrives exactly as upstream sent it.
    assert_eq!(response.text(), fixtures::chat_completion("gpt-4o").to_string());

    let upstream = mock.requests();
    assert_eq!(upstream.len(), 1);
    assert_eq!(upstream[0].method, "POST");
    assert_eq!(upstream[0].path, "/v1/chat/completions");
    assert_eq!(upstream[0].header("authorization").as_deref(), Some("Bearer sk-test-key-0123456789"));
    assert_eq!(upstream[0].header("content-type").as_deref(), Some("application/json"));
    assert_eq!(upstream[0].json(), body, "every field the client sent reaches upstream");
}

#[tokio::test]
async fn streamed_chat_reaches_the_client_before_upstream_finishes() {
    let mock = MockUpstream::start().await;
    let gateway = gateway_for(&mock).await;
    let gate = Gate::new();
    let chunks = fixtures::chat_stream_chunks("gpt-4o", true);
    let mut steps: Vec<SseStep> = vec![SseStep::json(&chunks[0]), SseStep::Gate(gate.clone())];
    steps.extend(chunks[1..].iter().map(SseStep::json));
    steps.push(SseStep::done());
    mock.push_reply(Reply::sse(steps));

    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}],
        "stream": true, "stream_options": {"include_usage": true}});
    let response = gateway
        .send(
            Method::POST,
            &gateway.url("/v1/chat/completions"),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.into_body();
    let first = next_frame(&mut stream, Duration::from_secs(5)).await.expect("first frame");
    assert!(!gate.is_open(), "the first chunk arrived while upstream was still paused");
    let first_events = sse_data(&String::from_utf8_lossy(&first));
    assert_eq!(first_events.len(), 1);
    // OpenAI upstream to OpenAI client: each chunk arrives exactly as upstream sent it.
    assert_eq!(first_events[0], chunks[0].to_string());

    gate.open();
    let mut rest = String::new();
    while let Some(frame) = next_frame(&mut stream, Duration::from_secs(5)).await {
        rest.push_str(&String::from_utf8_lossy(&frame));
    }
    let mut expected: Vec<String> = chunks[1..].iter().map(Value::to_string).collect();
    expected.push("[DONE]".to_owned());
    assert_eq!(sse_data(&rest), expected);
    assert_eq!(mock.requests()[0].json(), body);
}

#[tokio::test]
async fn client_disconnect_mid_stream_cancels_the_upstream_stream() {
    let mock = MockUpstream::start().await;
    let gateway = gateway_for(&mock).await;
    let gate = Gate::new();
    let chunks = fixtures::chat_stream_chunks("gpt-4o", false);
    mock.push_reply(Reply::sse(vec![
        SseStep::json(&chunks[0]),
        SseStep::Gate(gate.clone()),
        SseStep::json(&chunks[1]),
    ]));
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "stream": true});
    let response = gateway
        .send(
            Method::POST,
            &gateway.url("/v1/chat/completions"),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await;
    let mut stream = response.into_body();
    assert!(next_frame(&mut stream, Duration::from_secs(5)).await.is_some());
    drop(stream);
    assert!(
        mock.wait_for_dropped_stream(Duration::from_secs(5)).await,
        "upstream saw its stream dropped after the client went away"
    );
}

#[tokio::test]
async fn client_disconnect_during_a_whole_request_cancels_upstream() {
    let mock = MockUpstream::start().await;
    let gateway = gateway_for(&mock).await;
    mock.push_reply(Reply::Hang);
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let mut tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut tcp, request.as_bytes()).await.unwrap();
    assert!(mock.wait_for_requests(1, Duration::from_secs(5)).await);
    let open_before = mock.open_connections();
    drop(tcp);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while mock.open_connections() >= open_before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(mock.open_connections() < open_before, "the upstream connection was closed");
}

#[tokio::test]
async fn embeddings_pass_through_exactly() {
    let mock = MockUpstream::start().await;
    let gateway = gateway_for(&mock).await;
    let body = json!({"model": "text-embedding-3-small", "input": ["alpha", "beta"], "dimensions": 4, "encoding_format": "float"});
    let response = gateway.post("/v1/embeddings", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), fixtures::embeddings("text-embedding-3-small", 2));
    let upstream = mock.requests();
    assert_eq!(upstream[0].path, "/v1/embeddings");
    assert_eq!(upstream[0].json(), body);
}

#[tokio::test]
async fn models_lists_what_config_serves() {
    let mock = MockUpstream::start().await;
    let yaml = openai_config(&mock.base_url(), "      models: [gpt-4o, text-embedding-3-small]\n", "");
    let gateway = TestGateway::start(&yaml).await;
    let response = gateway.get("/v1/models").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json(),
        json!({"object": "list", "data": [
            {"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "openai"},
            {"id": "text-embedding-3-small", "object": "model", "created": 0, "owned_by": "openai"}
        ]})
    );
    assert_eq!(mock.request_count(), 0, "models are answered from config");
}

#[tokio::test]
async fn model_mapping_sends_the_provider_its_own_model() {
    let mock = MockUpstream::start().await;
    let yaml =
        openai_config(&mock.base_url(), "", "  model_mapping:\n    gpt-4:\n      openai: gpt-4-turbo\n");
    let gateway = TestGateway::start(&yaml).await;
    let response = gateway
        .post("/v1/chat/completions", r#"{"model":"gpt-4","messages":[{"role":"user","content":"Hi"}]}"#)
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(mock.requests()[0].json()["model"], "gpt-4-turbo");
    assert_eq!(response.json()["model"], "gpt-4-turbo", "the answer names the model that really answered");
}

#[tokio::test]
async fn h2c_clients_are_served() {
    let mock = MockUpstream::start().await;
    let gateway = gateway_for(&mock).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = http::Request::post(gateway.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#,
        )))
        .unwrap();
    let response = read_whole(client.request(request).await.unwrap()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["choices"][0]["message"]["content"], fixtures::CONTENT);
}

#[tokio::test]
async fn mock_provider_answers_whole_and_streamed_without_network() {
    let yaml = "ai_gateway:\n  providers:\n    - name: mock\n      type: mock\n";
    let gateway = TestGateway::start(yaml).await;
    let response = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"demo","messages":[{"role":"user","content":"ping pong"}]}"#,
        )
        .await;
    assert_eq!(response.status, 200);
    let answer = response.json();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Hello from Loom's mock provider! You said: ping pong"
    );
    assert_eq!(answer["usage"], json!({"prompt_tokens": 2, "completion_tokens": 9, "total_tokens": 11}));

    let streamed = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"demo","messages":[{"role":"user","content":"ping"}],"stream":true}"#,
        )
        .await;
    let events = sse_data(&streamed.text());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let text: String = events[..events.len() - 1]
        .iter()
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Hello from Loom's mock provider! You said: ping");
}

#[tokio::test]
async fn azure_gets_its_deployment_url_api_version_and_api_key_header() {
    let mock = MockUpstream::start().await;
    let yaml = format!(
        "ai_gateway:\n  providers:\n    - name: azure\n      type: azure\n      api_key: azure-key-123\n      base_url: http://{}\n      api_version: \"2024-02-15-preview\"\n      deployments:\n        gpt-4: my-gpt4-deployment\n",
        mock.addr()
    );
    let gateway = TestGateway::start(&yaml).await;
    mock.push_reply(Reply::chat_completion("gpt-4"));
    let body = json!({"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]});
    let response = gateway.post("/v1/chat/completions", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), fixtures::chat_completion("gpt-4").to_string());
    let upstream = mock.requests();
    assert_eq!(upstream[0].path, "/openai/deployments/my-gpt4-deployment/chat/completions");
    assert_eq!(upstream[0].query.as_deref(), Some("api-version=2024-02-15-preview"));
    assert_eq!(upstream[0].header("api-key").as_deref(), Some("azure-key-123"));
    assert_eq!(upstream[0].header("authorization"), None);
    assert_eq!(upstream[0].json(), body);

    mock.push_reply(Reply::embeddings("text-embedding-3-small", 1));
    let embeddings =
        gateway.post("/v1/embeddings", r#"{"model":"text-embedding-3-small","input":"x"}"#).await;
    assert_eq!(embeddings.status, 200);
    let upstream = mock.requests();
    assert_eq!(upstream[1].path, "/openai/deployments/text-embedding-3-small/embeddings");

    mock.push_reply(Reply::chat_stream("gpt-4", false));
    let streamed = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    assert!(streamed.text().ends_with("data: [DONE]\n\n"), "{}", streamed.text());
    assert_eq!(mock.requests()[2].path, "/openai/deployments/my-gpt4-deployment/chat/completions");
}
