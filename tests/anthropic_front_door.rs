//! Anthropic-format clients (`POST /v1/messages`) reaching OpenAI and Anthropic providers.

use loom_e2e::{TestGateway, openai_config};
use loom_test_support::{MockUpstream, Reply, SseStep, anthropic_fixtures, fixtures};
use serde_json::{Value, json};

/// (event name, data) pairs of an Anthropic SSE body.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let mut name = String::new();
            let mut data = String::new();
            for line in event.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = value.to_owned();
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            (name, serde_json::from_str(&data).unwrap_or_else(|error| panic!("{error}: {data}")))
        })
        .collect()
}

fn anthropic_config(mock: &MockUpstream) -> String {
    format!(
        "ai_gateway:\n  providers:\n    - name: claude\n      type: anthropic\n      api_key: sk-ant-test-0123456789\n      base_url: http://{}\n",
        mock.addr()
    )
}

#[tokio::test]
async fn messages_to_an_openai_provider_whole() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let body = json!({
        "model": "gpt-4o",
        "max_tokens": 256,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "png"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "an image"},
                {"type": "text", "text": "So?"}
            ]}
        ],
        "tools": [{"name": "lookup", "description": "Search", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "metadata": {"user_id": "u-1"}
    });
    let response = gateway
        .post_with(
            "/v1/messages",
            &[
                ("content-type", "application/json"),
                ("x-api-key", "client-key"),
                ("anthropic-version", "2023-06-01"),
            ],
            &body.to_string(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        mock.requests()[0].json(),
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "toolu_1", "type": "function",
                    "function": {"name": "lookup", "arguments": "{\"q\":\"png\"}"}}]},
                {"role": "tool", "content": "an image", "tool_call_id": "toolu_1"},
                {"role": "user", "content": [{"type": "text", "text": "So?"}]}
            ],
            "max_tokens": 256,
            "stop": ["END"],
            "temperature": 0.3,
            "user": "u-1",
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "Search", "parameters": {"type": "object"}}}],
            "tool_choice": "auto",
            "parallel_tool_calls": false
        })
    );
    assert_eq!(
        response.json(),
        json!({
            "id": fixtures::CHAT_ID,
            "type": "message",
            "role": "assistant",
            "model": "gpt-4o",
            "content": [{"type": "text", "text": fixtures::CONTENT}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 9, "output_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        })
    );
}

#[tokio::test]
async fn max_tokens_reaches_an_openai_reasoning_model_as_max_completion_tokens() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response = gateway
        .post(
            "/v1/messages",
            r#"{"model":"o3-mini","max_tokens":300,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let response = gateway
        .post(
            "/v1/messages",
            r#"{"model":"gpt-4.1","max_tokens":20,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let requests = mock.requests();
    assert_eq!(
        requests[0].json(),
        json!({"model": "o3-mini", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 300})
    );
    assert_eq!(
        requests[1].json(),
        json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20}),
        "other models keep max_tokens, which OpenAI-compatible servers know"
    );
}

#[tokio::test]
async fn messages_to_an_openai_provider_streamed() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response = gateway
        .post(
            "/v1/messages",
            r#"{"model":"gpt-4o","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type").as_deref(), Some("text/event-stream"));
    assert_eq!(
        mock.requests()[0].json()["stream_options"],
        json!({"include_usage": true}),
        "Loom asks upstream for usage so the Anthropic client gets it"
    );
    let mut expected = vec![
        (
            "message_start".to_owned(),
            json!({"type": "message_start", "message": {"id": fixtures::CHAT_ID, "type": "message",
            "role": "assistant", "model": "gpt-4o", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ),
        (
            "content_block_start".to_owned(),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for piece in fixtures::STREAM_PIECES {
        expected.push(("content_block_delta".to_owned(),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})));
    }
    expected.push(("content_block_stop".to_owned(), json!({"type": "content_block_stop", "index": 0})));
    expected.push(("message_delta".to_owned(), json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"input_tokens": 9, "output_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})));
    expected.push(("message_stop".to_owned(), json!({"type": "message_stop"})));
    assert_eq!(events(&response.text()), expected);
}

#[tokio::test]
async fn messages_to_an_anthropic_provider_keep_thinking_signatures_and_cache_control() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&anthropic_config(&mock)).await;
    mock.push_reply(Reply::json(anthropic_fixtures::tool_use_message("claude-sonnet-4-5")));
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 4000,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "system": [{"type": "text", "text": "Long shared prompt", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Earlier thought", "signature": "c2lnLTE="},
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                {"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny", "is_error": false}]}
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "cache_control": {"type": "ephemeral"}}]
    });
    let response = gateway.post("/v1/messages", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let mut expected_upstream = body.clone();
    expected_upstream["messages"][2]["content"][0] =
        json!({"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny", "is_error": false});
    assert_eq!(mock.requests()[0].json(), expected_upstream, "Anthropic to Anthropic is lossless");
    let mut expected = anthropic_fixtures::tool_use_message("claude-sonnet-4-5");
    expected["usage"] = json!({"input_tokens": 40, "output_tokens": 30});
    assert_eq!(response.json(), expected);
}

#[tokio::test]
async fn messages_streamed_from_an_anthropic_provider_rebuild_the_same_blocks() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&anthropic_config(&mock)).await;
    mock.push_reply(Reply::sse(anthropic_fixtures::tool_use_stream("claude-sonnet-4-5")));
    let response = gateway
        .post(
            "/v1/messages",
            r#"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Weather?"}]}"#,
        )
        .await;
    let got = events(&response.text());
    let names: Vec<&str> = got.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        got[0].1["message"]["usage"],
        json!({"input_tokens": 40, "output_tokens": 1}),
        "message_start reports the input tokens the upstream's message_start did"
    );
    assert_eq!(got[1].1["content_block"], json!({"type": "thinking", "thinking": "", "signature": ""}));
    assert_eq!(
        got[3].1["delta"],
        json!({"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="})
    );
    assert_eq!(
        got[5].1["content_block"],
        json!({"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {}})
    );
    let arguments: String = got[6..8]
        .iter()
        .map(|(_, data)| data["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(arguments, "{\"city\": \"Paris\"}");
    assert_eq!(got[9].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(got[9].1["usage"], json!({"input_tokens": 40, "output_tokens": 30}));
}

#[tokio::test]
async fn messages_errors_use_anthropic_shape() {
    let mock = MockUpstream::start().await;
    let yaml = openai_config(&mock.base_url(), "      models: [gpt-4o]\n", "");
    let gateway = TestGateway::start(&yaml).await;
    let unknown = gateway
        .post(
            "/v1/messages",
            r#"{"model":"claude-9","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json(),
        json!({"type": "error", "error": {"type": "not_found_error",
            "message": "The model `claude-9` does not exist; models served here: gpt-4o"}})
    );
    let missing = gateway
        .post("/v1/messages", r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#)
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"]["type"], "invalid_request_error");
    assert!(
        missing.json()["error"]["message"].as_str().unwrap().contains("max_tokens"),
        "{}",
        missing.text()
    );

    mock.push_reply(Reply::rate_limited(9));
    let limited = gateway
        .post(
            "/v1/messages",
            r#"{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after").as_deref(), Some("9"));
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");

    mock.push_reply(Reply::sse(vec![
        SseStep::json(&fixtures::chat_stream_chunks("gpt-4o", false)[0]),
        SseStep::Data(fixtures::error("server_error", None, "boom").to_string()),
    ]));
    let broken = gateway
        .post(
            "/v1/messages",
            r#"{"model":"gpt-4o","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    let got = events(&broken.text());
    let last = got.last().unwrap();
    assert_eq!(last.0, "error");
    assert_eq!(last.1["type"], "error");
    assert_eq!(last.1["error"]["type"], "api_error");
}

/// A `count_tokens` body: a system prompt, one turn and a tool, and no `max_tokens`.
const COUNT_BODY: &str = r#"{"model":"MODEL","system":"Be brief.","messages":[{"role":"user","content":"What is the weather in Paris?"}],"tools":[{"name":"get_weather","description":"Weather by city","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]}"#;

/// The canonical request Loom makes of [`COUNT_BODY`], to count what Loom counts.
fn count_request(model: &str) -> loom_core::ChatRequest {
    serde_json::from_value(json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the weather in Paris?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    }))
    .unwrap()
}

#[tokio::test]
async fn count_tokens_for_an_openai_model_is_counted_by_loom() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response =
        gateway.post("/v1/messages/count_tokens?beta=true", &COUNT_BODY.replace("MODEL", "gpt-4o")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let expected = loom_tokens::count_chat("gpt-4o", &count_request("gpt-4o")).unwrap();
    assert_eq!(response.json(), json!({"input_tokens": expected.tokens}));
    assert_eq!(response.header("x-loom-provider").as_deref(), Some("openai"));
    assert!(mock.requests().is_empty(), "OpenAI has no count API: nothing goes upstream");
    let metrics = gateway.admin_get("/metrics").await.text();
    assert!(!metrics.contains("loom_ai_requests_total{"), "a count is no AI request: {metrics}");
}

#[tokio::test]
async fn count_tokens_for_an_anthropic_provider_asks_anthropic() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&anthropic_config(&mock)).await;
    mock.push_reply(Reply::json(json!({"input_tokens": 421})));
    let response = gateway
        .post_with(
            "/v1/messages/count_tokens",
            &[("content-type", "application/json"), ("anthropic-version", "2023-06-01")],
            &COUNT_BODY.replace("MODEL", "claude-sonnet-4-5"),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"input_tokens": 421}));
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/messages/count_tokens");
    assert_eq!(
        requests[0].json(),
        json!({
            "model": "claude-sonnet-4-5",
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [{"name": "get_weather", "description": "Weather by city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
        }),
        "the prompt only: no max_tokens, no sampling settings"
    );
}

#[tokio::test]
async fn count_tokens_falls_back_to_loom_when_the_upstream_cannot_count() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&anthropic_config(&mock)).await;
    mock.push_reply(Reply::json_status(
        404,
        json!({"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}),
    ));
    let response =
        gateway.post("/v1/messages/count_tokens", &COUNT_BODY.replace("MODEL", "claude-sonnet-4-5")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let registry = loom_tokens::TokenizerRegistry::new()
        .with_fallback(loom_tokens::TokenizerSpec::from(loom_tokens::Encoding::O200kBase));
    let counter = registry.counter("claude-sonnet-4-5", None).unwrap();
    let expected = counter.count_chat(&count_request("claude-sonnet-4-5")).estimate();
    assert!(expected.tokens > 20, "system, turn and tool all count: {expected:?}");
    assert_eq!(response.json(), json!({"input_tokens": expected.tokens}));
    assert_eq!(mock.requests().len(), 1, "asked once, not retried");
}

#[tokio::test]
async fn count_tokens_errors_use_anthropic_shape() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "      models: [gpt-4o]\n", "")).await;
    let empty = gateway.post("/v1/messages/count_tokens", r#"{"model":"gpt-4o","messages":[]}"#).await;
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.json(),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "`messages` must not be empty"}})
    );
    let unknown = gateway
        .post(
            "/v1/messages/count_tokens",
            r#"{"model":"claude-9","messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["type"], "not_found_error");
    let wrong = gateway.get("/v1/messages/count_tokens").await;
    assert_eq!(wrong.status, 405);
    let missing_limit = gateway
        .post("/v1/messages", r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#)
        .await;
    assert_eq!(missing_limit.status, 400);
    assert_eq!(missing_limit.json()["error"]["message"], "`max_tokens` is required");
    // Anthropic's error body has no `param`: the message names the missing field.
    for (path, body, field) in [
        ("/v1/messages", r#"{"max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}"#, "model"),
        ("/v1/messages", r#"{"model":"gpt-4o","max_tokens":5}"#, "messages"),
        (
            "/v1/messages",
            r#"{"model":"gpt-4o","max_tokens":5,"messages":[{"content":"Hi"}]}"#,
            "messages[0].role",
        ),
        ("/v1/messages/count_tokens", r#"{"messages":[{"role":"user","content":"Hi"}]}"#, "model"),
        ("/v1/messages/count_tokens", r#"{"model":"gpt-4o"}"#, "messages"),
    ] {
        let response = gateway.post(path, body).await;
        assert_eq!(response.status, 400, "{path} {body}");
        assert_eq!(
            response.json(),
            json!({"type": "error", "error": {"type": "invalid_request_error",
                "message": format!("`{field}` is required")}}),
            "{path} {body}"
        );
    }
}
