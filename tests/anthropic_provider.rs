//! OpenAI-format clients reaching an `anthropic` provider: exact upstream requests and answers.

use loom_e2e::{TestGateway, sse_data, sse_json};
use loom_test_support::{MockUpstream, Reply, anthropic_fixtures as fixtures};
use serde_json::{Value, json};

fn config(mock: &MockUpstream) -> String {
    format!(
        "ai_gateway:\n  providers:\n    - name: claude\n      type: anthropic\n      api_key: sk-ant-test-0123456789\n      base_url: http://{}\n      default_max_tokens: 1000\n",
        mock.addr()
    )
}

#[tokio::test]
async fn whole_chat_with_system_image_and_tools_translates_exactly() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    mock.push_reply(Reply::json(fixtures::message("claude-sonnet-4-5", "Hello there")));
    let body = json!({
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "user", "content": "Thanks"}
        ],
        "temperature": 0.5,
        "stop": "END",
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Search",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "user": "user-7"
    });
    let response = gateway.post("/v1/chat/completions", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());

    let upstream = &mock.requests()[0];
    assert_eq!(upstream.path, "/v1/messages");
    assert_eq!(upstream.header("x-api-key").as_deref(), Some("sk-ant-test-0123456789"));
    assert_eq!(upstream.header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert_eq!(upstream.header("authorization"), None);
    assert_eq!(
        upstream.json(),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1000,
            "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in English."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "cat"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "a cat"},
                    {"type": "text", "text": "Thanks"}
                ]}
            ],
            "stop_sequences": ["END"],
            "temperature": 0.5,
            "tools": [{"name": "lookup", "description": "Search",
                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "metadata": {"user_id": "user-7"}
        })
    );
    let answer = response.json();
    assert_eq!(answer["id"], fixtures::MESSAGE_ID);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "claude-sonnet-4-5");
    assert_eq!(
        answer["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"}])
    );
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 16, "completion_tokens": 6, "total_tokens": 22,
            "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 0}})
    );
}

#[tokio::test]
async fn tool_call_with_thinking_comes_back_in_openai_shape_and_round_trips() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    mock.push_reply(Reply::json(fixtures::tool_use_message("claude-sonnet-4-5")));
    let first = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Weather in Paris?"}],"reasoning_effort":"low"}"#,
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let upstream = mock.requests()[0].json();
    assert_eq!(upstream["thinking"], json!({"type": "enabled", "budget_tokens": 2048}));
    assert_eq!(upstream["max_tokens"], 3072, "max_tokens must exceed the thinking budget");
    let message = first.json()["choices"][0]["message"].clone();
    assert_eq!(first.json()["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        message,
        json!({
            "role": "assistant",
            "content": "Let me check.",
            "reasoning_content": "The user wants the weather in Paris.",
            "thinking_blocks": [{"type": "thinking", "thinking": "The user wants the weather in Paris.",
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="}],
            "tool_calls": [{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
        })
    );

    // The client sends the assistant turn back as it got it: the signed thinking block survives.
    mock.push_reply(Reply::json(fixtures::message("claude-sonnet-4-5", "It is sunny.")));
    let second = json!({
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            message,
            {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "sunny"}
        ],
        "reasoning_effort": "low"
    });
    let answer = gateway.post("/v1/chat/completions", &second.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        mock.requests()[1].json()["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "The user wants the weather in Paris.",
                    "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "sunny"}]}
        ])
    );
}

#[tokio::test]
async fn streamed_text_and_usage_are_exact() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    mock.push_reply(Reply::sse(fixtures::text_stream("claude-sonnet-4-5", &["Hel", "lo"])));
    let response = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(mock.requests()[0].json()["stream"], true);
    let chunks = sse_json(&response.text());
    let deltas: Vec<Value> = chunks.iter().map(|chunk| chunk["choices"].clone()).collect();
    assert_eq!(
        deltas,
        vec![
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
            json!([{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]),
            json!([{"index": 0, "delta": {"content": "lo"}, "finish_reason": null}]),
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            json!([]),
        ]
    );
    assert_eq!(
        chunks[4]["usage"],
        json!({"prompt_tokens": 16, "completion_tokens": 6, "total_tokens": 22,
            "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 0}}),
        "cumulative counts are taken once, not summed"
    );
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["id"] == fixtures::MESSAGE_ID && chunk["model"] == "claude-sonnet-4-5")
    );
    assert!(response.text().ends_with("data: [DONE]\n\n"));

    // Without include_usage the client sees no usage chunk.
    mock.push_reply(Reply::sse(fixtures::text_stream("claude-sonnet-4-5", &["Hi"])));
    let plain = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    let chunks = sse_json(&plain.text());
    assert_eq!(chunks.len(), 3);
    assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
}

#[tokio::test]
async fn streamed_tool_call_arguments_arrive_as_they_come() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    mock.push_reply(Reply::sse(fixtures::tool_use_stream("claude-sonnet-4-5")));
    let response = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Weather?"}],"stream":true}"#,
        )
        .await;
    let chunks = sse_json(&response.text());
    let deltas: Vec<Value> = chunks.iter().map(|chunk| chunk["choices"][0]["delta"].clone()).collect();
    assert_eq!(
        deltas,
        vec![
            json!({"role": "assistant", "content": ""}),
            json!({"reasoning_content": "The user wants the weather in Paris."}),
            json!({"reasoning_signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="}),
            json!({"tool_calls": [{"index": 0, "id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Par"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "is\"}"}}]}),
            json!({}),
        ]
    );
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn anthropic_errors_keep_their_meaning() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    mock.push_reply(Reply::json_status(529, fixtures::error("overloaded_error", "Overloaded")));
    let hello = r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}]}"#;
    let overloaded = gateway.post("/v1/chat/completions", hello).await;
    assert_eq!(overloaded.status, 503);
    assert_eq!(overloaded.json()["error"]["type"], "overloaded_error");
    assert_eq!(overloaded.json()["error"]["message"], "provider `claude` returned HTTP 529: Overloaded");

    mock.push_reply(Reply::sse(vec![
        fixtures::text_stream("claude-sonnet-4-5", &["x"]).remove(0),
        loom_test_support::SseStep::event("error", &fixtures::error("overloaded_error", "Overloaded")),
    ]));
    let streamed = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    let events = sse_data(&streamed.text());
    assert_eq!(events.len(), 2, "{events:?}");
    let error: Value = serde_json::from_str(&events[1]).unwrap();
    assert_eq!(error["error"]["type"], "overloaded_error");

    let unsupported = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}],"n":2}"#,
        )
        .await;
    assert_eq!(unsupported.status, 400);
    assert_eq!(unsupported.json()["error"]["param"], "n");
    let embeddings = gateway.post("/v1/embeddings", r#"{"model":"claude-sonnet-4-5","input":"x"}"#).await;
    assert_eq!(embeddings.status, 400);
    assert_eq!(mock.request_count(), 2, "rejected requests never reach upstream");
}
