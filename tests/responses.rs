//! OpenAI Responses clients (`POST /v1/responses`) reaching OpenAI-, Anthropic- and
//! Gemini-format providers: the exact upstream request, the exact `response` object
//! (ids and timestamps masked), the streamed event sequence, a function-call round
//! trip, and the 400s that name the field at fault.

use loom_e2e::{TestGateway, openai_config};
use loom_test_support::{MockUpstream, Reply, anthropic_fixtures, fixtures, gemini_fixtures};
use serde_json::{Map, Value, json};

fn anthropic_config(mock: &MockUpstream) -> String {
    format!(
        "ai_gateway:\n  providers:\n    - name: claude\n      type: anthropic\n      api_key: sk-ant-test-0123456789\n      base_url: http://{}\n",
        mock.addr()
    )
}

fn gemini_config(mock: &MockUpstream) -> String {
    format!(
        "ai_gateway:\n  providers:\n    - name: gemini\n      type: gemini\n      api_key: AIzaTestKey0123456789\n      base_url: http://{}\n",
        mock.addr()
    )
}

/// `value` with Loom's generated ids replaced by their prefix (`resp_…` -> `resp_*`) and
/// `created_at` by 0, so whole answers compare exactly.
fn masked(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("created_at", Value::Number(_)) => json!(0),
                        ("id" | "item_id", Value::String(id)) => json!(mask_id(id)),
                        (_, value) => masked(value),
                    };
                    (key, value)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(masked).collect()),
        other => other,
    }
}

fn mask_id(id: String) -> String {
    for prefix in ["resp_", "msg_", "fc_", "rs_"] {
        if let Some(rest) = id.strip_prefix(prefix)
            && rest.len() == 32
            && rest.bytes().all(|byte| byte.is_ascii_hexdigit())
        {
            return format!("{prefix}*");
        }
    }
    id
}

/// (event name, data) pairs of a Responses SSE body; checks each event's `type` is its
/// name and the sequence numbers count from 0.
fn events(text: &str) -> Vec<(String, Value)> {
    let events: Vec<(String, Value)> = text
        .split("\n\n")
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
            let data: Value = serde_json::from_str(&data).unwrap_or_else(|error| panic!("{error}: {data}"));
            assert_eq!(data["type"], json!(name), "{data}");
            (name, data)
        })
        .collect();
    let numbers: Vec<u64> =
        events.iter().map(|(_, data)| data["sequence_number"].as_u64().expect("number")).collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>(), "sequence numbers");
    events
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

/// The `response` object's defaults for a request that set nothing but model and input.
fn plain_response(model: &str, output: Value, usage: Value) -> Value {
    json!({
        "id": "resp_*", "object": "response", "created_at": 0, "status": "completed",
        "error": null, "incomplete_details": null, "instructions": null, "max_output_tokens": null,
        "model": model, "output": output, "parallel_tool_calls": true, "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null}, "store": true, "temperature": null,
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": null,
        "truncation": "disabled", "usage": usage, "user": null, "metadata": {}
    })
}

fn usage(input: u64, cached: u64, output: u64, reasoning: u64) -> Value {
    json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input + output})
}

fn text_message(text: &str) -> Value {
    json!({"type": "message", "id": "msg_*", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

/// A request with everything the translation maps: instructions, history items (text,
/// image, an earlier call and its output), a function tool, a named tool choice, a JSON
/// schema, reasoning effort and the sampling settings.
fn full_request(model: &str) -> Value {
    json!({
        "model": model,
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [
                {"type": "input_text", "text": "Weather where this photo was taken?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
            ]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "call_0", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "call_0", "output": "sunny"},
            {"role": "user", "content": "And Paris?"}
        ],
        "tools": [{"type": "function", "name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "weather", "schema": {"type": "object"}, "strict": true}},
        "reasoning": {"effort": "low", "summary": "auto"},
        "max_output_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "parallel_tool_calls": false,
        "metadata": {"trace": "t-1"},
        "store": false,
        "user": "u-1",
        "include": ["reasoning.encrypted_content"]
    })
}

#[tokio::test]
async fn a_string_input_to_an_openai_provider() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response = gateway.post("/v1/responses", r#"{"model":"gpt-4o","input":"Hi"}"#).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(mock.requests()[0].path, "/v1/chat/completions");
    assert_eq!(
        mock.requests()[0].json(),
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
    );
    assert_eq!(
        response.header("x-loom-provider").as_deref(),
        Some("openai"),
        "the router chose the provider"
    );
    assert!(response.header("x-request-id").is_some_and(|id| !id.is_empty()));
    assert_eq!(
        masked(response.json()),
        plain_response("gpt-4o", json!([text_message(fixtures::CONTENT)]), usage(9, 0, 6, 0))
    );
}

#[tokio::test]
async fn everything_translated_to_an_openai_provider_and_a_call_answered() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    mock.push_reply(Reply::json(fixtures::chat_tool_call("gpt-4o")));
    let response = gateway.post("/v1/responses", &full_request("gpt-4o").to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        mock.requests()[0].json(),
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather where this photo was taken?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "call_0", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
                {"role": "tool", "content": "sunny", "tool_call_id": "call_0"},
                {"role": "user", "content": "And Paris?"}
            ],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_tokens": 300,
            "user": "u-1",
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false,
            "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "schema": {"type": "object"}, "strict": true}},
            "reasoning_effort": "low"
        })
    );
    assert_eq!(
        masked(response.json()),
        json!({
            "id": "resp_*", "object": "response", "created_at": 0, "status": "completed",
            "error": null, "incomplete_details": null, "instructions": "Be brief.", "max_output_tokens": 300,
            "model": "gpt-4o",
            "output": [{"type": "function_call", "id": "fc_*", "call_id": fixtures::TOOL_CALL_ID,
                "name": fixtures::TOOL_CALL_NAME, "arguments": fixtures::TOOL_CALL_ARGUMENTS, "status": "completed"}],
            "parallel_tool_calls": false, "previous_response_id": null,
            "reasoning": {"effort": "low", "summary": "auto"}, "store": false, "temperature": 0.2,
            "text": {"format": {"type": "json_schema", "name": "weather", "schema": {"type": "object"}, "strict": true}},
            "tool_choice": {"type": "function", "name": "get_weather"},
            "tools": [{"type": "function", "name": "get_weather", "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false}],
            "top_p": 0.9, "truncation": "disabled", "usage": usage(9, 0, 6, 0), "user": "u-1",
            "metadata": {"trace": "t-1"}
        })
    );
}

#[tokio::test]
async fn everything_translated_to_an_anthropic_provider_with_reasoning_carried() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&anthropic_config(&mock)).await;
    mock.push_reply(Reply::json(anthropic_fixtures::tool_use_message("claude-sonnet-4-5")));
    let mut request = full_request("claude-sonnet-4-5");
    // Claude takes no sampling settings together with thinking, nor a forced tool.
    for field in ["temperature", "top_p", "text"] {
        request.as_object_mut().expect("object").remove(field);
    }
    request["tool_choice"] = json!("auto");
    request["max_output_tokens"] = json!(4000);
    let response = gateway.post("/v1/responses", &request.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(mock.requests()[0].path, "/v1/messages");
    assert_eq!(
        mock.requests()[0].json(),
        json!({
            "model": "claude-sonnet-4-5",
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather where this photo was taken?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_0", "name": "get_weather", "input": {"city": "Rome"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_0", "content": "sunny"},
                    {"type": "text", "text": "And Paris?"}
                ]}
            ],
            "max_tokens": 4000,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "metadata": {"user_id": "u-1"},
            "tools": [{"name": "get_weather", "description": "Current weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}
        })
    );
    let answer = masked(response.json());
    assert_eq!(
        answer["output"],
        json!([
            {"type": "reasoning", "id": "rs_*", "status": "completed",
             "summary": [{"type": "summary_text", "text": "The user wants the weather in Paris."}],
             "encrypted_content": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="},
            text_message("Let me check."),
            {"type": "function_call", "id": "fc_*", "call_id": "toolu_01A09q90qw90lq917835lq9",
             "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"}
        ])
    );
    assert_eq!(answer["usage"], usage(40, 0, 30, 0));
    assert_eq!(answer["status"], "completed");
}

#[tokio::test]
async fn a_string_input_and_a_schema_to_a_gemini_provider() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&gemini_config(&mock)).await;
    mock.push_reply(Reply::json(gemini_fixtures::text_response("gemini-2.5-flash", "Hello from Gemini")));
    let request = json!({
        "model": "gemini-2.5-flash",
        "instructions": "Be brief.",
        "input": "Hi",
        "text": {"format": {"type": "json_schema", "name": "greeting", "schema": {"type": "object"}}},
        "max_output_tokens": 100
    });
    let response = gateway.post("/v1/responses", &request.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(mock.requests()[0].path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(
        mock.requests()[0].json(),
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"maxOutputTokens": 100, "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object"}}
        })
    );
    let answer = masked(response.json());
    assert_eq!(answer["output"], json!([text_message("Hello from Gemini")]));
    assert_eq!(answer["usage"], usage(11, 0, 5, 0));
}

/// The events of a streamed text answer of `pieces`, `response.created` to `response.completed`.
fn text_stream_names(pieces: usize) -> Vec<&'static str> {
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(std::iter::repeat_n("response.output_text.delta", pieces));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    expected
}

#[tokio::test]
async fn a_streamed_answer_from_an_openai_provider() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response = gateway.post("/v1/responses", r#"{"model":"gpt-4o","input":"Hi","stream":true}"#).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type").as_deref(), Some("text/event-stream"));
    assert_eq!(
        mock.requests()[0].json(),
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "stream": true,
            "stream_options": {"include_usage": true}})
    );
    let events = events(&response.text());
    assert_eq!(names(&events), text_stream_names(fixtures::STREAM_PIECES.len()));
    let item_id = events[2].1["item"]["id"].clone();
    assert_eq!(
        masked(events[0].1.clone()),
        json!({"type": "response.created", "sequence_number": 0,
            "response": plain_response("gpt-4o", json!([]), Value::Null)
                .as_object().map(|object| {
                    let mut object = object.clone();
                    object.insert("status".into(), json!("in_progress"));
                    Value::Object(object)
                }).expect("object")})
    );
    assert_eq!(
        masked(events[2].1.clone()),
        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
            "item": {"type": "message", "id": "msg_*", "status": "in_progress", "role": "assistant", "content": []}})
    );
    assert_eq!(
        events[3].1,
        json!({"type": "response.content_part.added", "sequence_number": 3, "item_id": item_id,
            "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})
    );
    assert_eq!(
        events[4].1,
        json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": item_id,
            "output_index": 0, "content_index": 0, "delta": fixtures::STREAM_PIECES[0], "logprobs": []})
    );
    let done = &events[4 + fixtures::STREAM_PIECES.len()].1;
    assert_eq!(done["text"], fixtures::CONTENT);
    let (_, completed) = events.last().expect("events");
    assert_eq!(
        masked(completed["response"].clone()),
        plain_response("gpt-4o", json!([text_message(fixtures::CONTENT)]), usage(9, 0, 6, 0))
    );
}

#[tokio::test]
async fn a_streamed_call_with_reasoning_from_an_anthropic_provider() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&anthropic_config(&mock)).await;
    mock.push_reply(Reply::sse(anthropic_fixtures::tool_use_stream("claude-sonnet-4-5")));
    let request = json!({"model": "claude-sonnet-4-5", "input": "Weather in Paris?", "stream": true,
        "max_output_tokens": 2000,
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]});
    let response = gateway.post("/v1/responses", &request.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let events = events(&response.text());
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(
        masked(events[8].1.clone()),
        json!({"type": "response.output_item.added", "sequence_number": 8, "output_index": 1,
            "item": {"type": "function_call", "id": "fc_*", "call_id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather", "arguments": "", "status": "in_progress"}})
    );
    let (_, completed) = events.last().expect("events");
    let completed = masked(completed["response"].clone());
    assert_eq!(
        completed["output"],
        json!([
            {"type": "reasoning", "id": "rs_*", "status": "completed",
             "summary": [{"type": "summary_text", "text": "The user wants the weather in Paris."}],
             "encrypted_content": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="},
            {"type": "function_call", "id": "fc_*", "call_id": "toolu_01A09q90qw90lq917835lq9",
             "name": "get_weather", "arguments": "{\"city\": \"Paris\"}", "status": "completed"}
        ])
    );
    assert_eq!(completed["status"], "completed");
}

#[tokio::test]
async fn a_streamed_answer_from_a_gemini_provider() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&gemini_config(&mock)).await;
    let pieces = ["Hello", " from", " Gemini"];
    mock.push_reply(Reply::sse(gemini_fixtures::text_stream("gemini-2.5-flash", &pieces)));
    let response =
        gateway.post("/v1/responses", r#"{"model":"gemini-2.5-flash","input":"Hi","stream":true}"#).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(mock.requests()[0].path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    let events = events(&response.text());
    assert_eq!(names(&events), text_stream_names(pieces.len()));
    let (_, completed) = events.last().expect("events");
    let completed = masked(completed["response"].clone());
    assert_eq!(completed["output"], json!([text_message("Hello from Gemini")]));
    assert_eq!(completed["usage"], usage(11, 0, 6, 0));
}

#[tokio::test]
async fn a_function_call_round_trip() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&anthropic_config(&mock)).await;
    mock.push_reply(Reply::json(anthropic_fixtures::tool_use_message("claude-sonnet-4-5")));
    mock.push_reply(Reply::json(anthropic_fixtures::message("claude-sonnet-4-5", "Sunny in Paris.")));
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]);
    let first = json!({"model": "claude-sonnet-4-5", "input": "Weather in Paris?", "tools": tools,
        "max_output_tokens": 2000});
    let response = gateway.post("/v1/responses", &first.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    // As SDK users do: the first answer's output items go back, then the call's result.
    let output = response.json()["output"].as_array().cloned().expect("output");
    let mut input = vec![json!({"role": "user", "content": "Weather in Paris?"})];
    input.extend(output);
    input.push(json!({"type": "function_call_output", "call_id": "toolu_01A09q90qw90lq917835lq9",
        "output": "{\"sky\":\"clear\"}"}));
    let second =
        json!({"model": "claude-sonnet-4-5", "input": input, "tools": tools, "max_output_tokens": 2000});
    let response = gateway.post("/v1/responses", &second.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
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
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "{\"sky\":\"clear\"}"}
            ]}
        ])
    );
    let answer = masked(response.json());
    assert_eq!(answer["output"], json!([text_message("Sunny in Paris.")]));
    assert_eq!(answer["usage"], usage(16, 4, 6, 0));
}

#[tokio::test]
async fn refusals_name_the_field_and_reach_no_upstream() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let cases = [
        (
            json!({"model": "gpt-4o", "input": "Hi", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
            "The tool type `web_search` is not supported: only `function` tools can be translated for the providers Loom serves the Responses API from",
            Some("unsupported_tool"),
        ),
        (
            json!({"model": "gpt-4o", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
            "Input items of type `item_reference` are not supported: use message, function_call, function_call_output or reasoning items",
            None,
        ),
        (
            json!({"model": "gpt-4o", "input": [{"type": "function_call_output", "output": "x"}]}),
            "input[0].call_id",
            "`input[0].call_id` is required",
            None,
        ),
    ];
    for (body, param, message, code) in cases {
        let response = gateway.post("/v1/responses", &body.to_string()).await;
        assert_eq!(response.status, 400, "{}", response.text());
        assert_eq!(
            response.json(),
            json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})
        );
    }
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn max_output_tokens_reaches_an_openai_reasoning_model_as_max_completion_tokens() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let response =
        gateway.post("/v1/responses", r#"{"model":"o3-mini","input":"Hi","max_output_tokens":300}"#).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        mock.requests()[0].json(),
        json!({"model": "o3-mini", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 300})
    );
}

/// POSTs a Responses body with the caller's key.
async fn post_as(gateway: &TestGateway, key: &str, body: &Value) -> loom_e2e::TestResponse {
    let bearer = format!("Bearer {key}");
    let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    gateway.post_with("/v1/responses", &headers, &body.to_string()).await
}

#[tokio::test]
async fn previous_response_id_continues_the_callers_own_conversations() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let first = post_as(
        &gateway,
        "key-a",
        &json!({"model": "gpt-4o", "instructions": "Be brief.", "input": "I am Ada."}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first_id = first.json()["id"].as_str().expect("id").to_owned();

    // Another key cannot continue it; the same key can, streamed, with new instructions.
    let continued = json!({"model": "gpt-4o", "instructions": "Be kind.", "input": "Who am I?",
        "previous_response_id": first_id, "stream": true});
    let stranger = post_as(&gateway, "key-b", &continued).await;
    assert_eq!(stranger.status, 404, "{}", stranger.text());
    assert_eq!(
        stranger.json(),
        json!({"error": {"message": format!("Previous response with id '{first_id}' not found."),
            "type": "invalid_request_error", "param": "previous_response_id", "code": "previous_response_not_found"}})
    );
    let second = post_as(&gateway, "key-a", &continued).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        mock.requests()[1].json()["messages"],
        json!([
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "I am Ada."},
            {"role": "assistant", "content": fixtures::CONTENT},
            {"role": "user", "content": "Who am I?"}
        ]),
        "the earlier turn without its instructions, then this one"
    );
    let events = events(&second.text());
    let (_, completed) = events.last().expect("events");
    assert_eq!(completed["response"]["previous_response_id"], json!(first_id));

    // The streamed answer was kept too; `store: false` keeps nothing.
    let second_id = completed["response"]["id"].as_str().expect("id").to_owned();
    let third = post_as(
        &gateway,
        "key-a",
        &json!({"model": "gpt-4o", "input": "And now?",
        "previous_response_id": second_id, "store": false}),
    )
    .await;
    assert_eq!(third.status, 200, "{}", third.text());
    assert_eq!(
        mock.requests()[2].json()["messages"],
        json!([
            {"role": "user", "content": "I am Ada."},
            {"role": "assistant", "content": fixtures::CONTENT},
            {"role": "user", "content": "Who am I?"},
            {"role": "assistant", "content": fixtures::CONTENT},
            {"role": "user", "content": "And now?"}
        ])
    );
    let third_id = third.json()["id"].as_str().expect("id").to_owned();
    let fourth = post_as(
        &gateway,
        "key-a",
        &json!({"model": "gpt-4o", "input": "x", "previous_response_id": third_id}),
    )
    .await;
    assert_eq!(fourth.status, 404, "{}", fourth.text());
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn a_gemini_function_call_round_trip_keeps_the_thought_signature() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&gemini_config(&mock)).await;
    mock.push_reply(Reply::json(gemini_fixtures::function_call_response("gemini-2.5-flash")));
    mock.push_reply(Reply::json(gemini_fixtures::text_response("gemini-2.5-flash", "Sunny.")));
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]);
    let first = json!({"model": "gemini-2.5-flash", "input": "Weather in Paris?", "tools": tools});
    let response = gateway.post("/v1/responses", &first.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let output = response.json()["output"].as_array().cloned().expect("output");
    assert_eq!(
        masked(Value::Array(output.clone())),
        json!([
            {"type": "reasoning", "id": "rs_*", "summary": [], "encrypted_content": "Cs4BAdHtim9sig", "status": "completed"},
            {"type": "function_call", "id": "fc_*", "call_id": "call_loom_0", "name": "get_weather",
             "arguments": "{\"city\":\"Paris\"}", "status": "completed"}
        ])
    );
    let mut input = vec![json!({"role": "user", "content": "Weather in Paris?"})];
    input.extend(output);
    input.push(json!({"type": "function_call_output", "call_id": "call_loom_0", "output": "clear"}));
    let second = json!({"model": "gemini-2.5-flash", "input": input, "tools": tools});
    let response = gateway.post("/v1/responses", &second.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        mock.requests()[1].json()["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "Cs4BAdHtim9sig"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "clear"}}}]}
        ])
    );
}

#[tokio::test]
async fn an_upstream_429_reaches_the_client_in_the_openai_error_shape() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    mock.push_reply(Reply::rate_limited(7));
    let response = gateway.post("/v1/responses", r#"{"model":"gpt-4o","input":"Hi"}"#).await;
    assert_eq!(response.status, 429, "{}", response.text());
    assert_eq!(response.header("retry-after").as_deref(), Some("7"));
    let body = response.json();
    assert_eq!(
        (&body["error"]["type"], &body["error"]["code"]),
        (&json!("rate_limit_error"), &json!("rate_limit_exceeded"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("provider `openai` returned HTTP 429")),
        "{body}"
    );
}

/// A usage row: user, model requested, provider, input and output tokens, streamed.
type LedgerRow = (Option<String>, String, Option<String>, i64, i64, bool);

#[tokio::test]
async fn whole_and_streamed_responses_are_accounted_like_chat() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = loom_e2e::ledger_dir("loom-responses-");
    let accounting =
        format!("  token_accounting:\n    ledger_path: {}\n    flush_interval: 50ms\n", ledger.display());
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", &accounting)).await;
    let whole = gateway.post("/v1/responses", r#"{"model":"gpt-4o","input":"Hi","user":"u-1"}"#).await;
    assert_eq!(whole.status, 200, "{}", whole.text());
    let streamed = gateway.post("/v1/responses", r#"{"model":"gpt-4o","input":"Hi","stream":true}"#).await;
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    let rows: Vec<LedgerRow> = loom_e2e::ledger_rows(
        &ledger,
        "user, model_requested, provider, input_tokens, output_tokens, streamed",
        2,
    )
    .await;
    let row = |user: Option<&str>, streamed: bool| {
        (user.map(str::to_owned), "gpt-4o".to_owned(), Some("openai".to_owned()), 9, 6, streamed)
    };
    assert_eq!(rows, [row(Some("u-1"), false), row(None, true)]);
}
