//! The official `openai` Python SDK's Responses API against Loom:
//! `tests/python/openai_responses.py` runs `responses.create`, `responses.stream`, a
//! function-calling round trip, a streamed call and `previous_response_id` against an
//! OpenAI-, an Anthropic- and a Gemini-format provider, each behind a mock upstream
//! that answers the script's calls in order.
//!
//! A fourth provider serves the Responses API natively (`responses_api: native`): its
//! mock answers as OpenAI's own `/v1/responses` does, and the SDK's calls reach it
//! untranslated.
//!
//! The interpreter is `$TEST_PYTHON`, else `<workspace>/.venv/bin/python`, else
//! `python3` (see tests/python_sdk.rs).

use std::process::Command;
use std::time::Duration;

use loom_e2e::TestGateway;
use loom_e2e::process::{python, run_check_script, workspace_root};
use loom_test_support::{MockUpstream, Reply, SseStep, anthropic_fixtures, fixtures, gemini_fixtures};
use serde_json::{Value, json};

/// Longest the script may take; it gives up by itself a little earlier.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(150);

/// What the script expects as text (the OpenAI mock's own answer), in pieces when streamed.
const TEXT: &str = fixtures::CONTENT;
const PIECES: [&str; 5] = fixtures::STREAM_PIECES;
/// The answer after a function call's output, and to a continued conversation.
const FOLLOW_UP: &str = "Sunny in Paris.";

/// The replies each upstream gives, in the script's order: create, stream, call + answer,
/// streamed call, and the two turns of `previous_response_id`.
fn queue(mock: &MockUpstream, replies: Vec<Reply>) {
    for reply in replies {
        mock.push_reply(reply);
    }
}

/// A whole `response` object as OpenAI's Responses API writes it, `output` as given.
fn native_response(id: &str, status: &str, output: Value) -> Value {
    json!({
        "id": id, "object": "response", "created_at": 1_741_476_542, "status": status,
        "error": null, "incomplete_details": null, "instructions": null, "max_output_tokens": null,
        "model": "gpt-4.1-2025-04-14", "output": output, "parallel_tool_calls": true,
        "previous_response_id": null, "reasoning": {"effort": null, "summary": null}, "store": true,
        "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
        "top_p": 1.0, "truncation": "disabled", "user": null, "metadata": {},
        "usage": {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4},
                  "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 17}
    })
}

fn native_message(text: &str) -> Value {
    json!({"type": "message", "id": "msg_native", "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

/// The events of a streamed native answer with `PIECES` as its text.
fn native_stream(id: &str) -> Vec<SseStep> {
    let part = json!({"type": "output_text", "text": "", "annotations": []});
    let mut events = vec![
        json!({"type": "response.created", "response": native_response(id, "in_progress", json!([]))}),
        json!({"type": "response.in_progress", "response": native_response(id, "in_progress", json!([]))}),
        json!({"type": "response.output_item.added", "output_index": 0,
               "item": {"type": "message", "id": "msg_native", "status": "in_progress", "role": "assistant", "content": []}}),
        json!({"type": "response.content_part.added", "item_id": "msg_native", "output_index": 0,
               "content_index": 0, "part": part}),
    ];
    for piece in PIECES {
        events.push(json!({"type": "response.output_text.delta", "item_id": "msg_native", "output_index": 0,
                           "content_index": 0, "delta": piece, "logprobs": []}));
    }
    events.extend([
        json!({"type": "response.output_text.done", "item_id": "msg_native", "output_index": 0,
               "content_index": 0, "text": TEXT, "logprobs": []}),
        json!({"type": "response.content_part.done", "item_id": "msg_native", "output_index": 0,
               "content_index": 0, "part": {"type": "output_text", "text": TEXT, "annotations": []}}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": native_message(TEXT)}),
        json!({"type": "response.completed", "response": native_response(id, "completed", json!([native_message(TEXT)]))}),
    ]);
    events
        .into_iter()
        .enumerate()
        .map(|(sequence, mut event)| {
            event["sequence_number"] = json!(sequence);
            SseStep::event(event["type"].as_str().unwrap_or_default(), &event)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_responses_api_works_against_every_provider_format() {
    let python = python();
    let (openai, claude, gemini) =
        (MockUpstream::start().await, MockUpstream::start().await, MockUpstream::start().await);
    let gpt = "gpt-4o";
    queue(
        &openai,
        vec![
            Reply::chat_completion(gpt),
            Reply::chat_stream(gpt, true),
            Reply::json(fixtures::chat_tool_call(gpt)),
            Reply::chat_completion_with(gpt, FOLLOW_UP),
            Reply::sse(fixtures::chat_tool_call_stream_steps(gpt)),
            Reply::chat_completion(gpt),
            Reply::chat_completion_with(gpt, FOLLOW_UP),
        ],
    );
    let sonnet = "claude-sonnet-4-5";
    queue(
        &claude,
        vec![
            Reply::json(anthropic_fixtures::message(sonnet, TEXT)),
            Reply::sse(anthropic_fixtures::text_stream(sonnet, &PIECES)),
            Reply::json(anthropic_fixtures::tool_use_message(sonnet)),
            Reply::json(anthropic_fixtures::message(sonnet, FOLLOW_UP)),
            Reply::sse(anthropic_fixtures::tool_use_stream(sonnet)),
            Reply::json(anthropic_fixtures::message(sonnet, TEXT)),
            Reply::json(anthropic_fixtures::message(sonnet, FOLLOW_UP)),
        ],
    );
    let flash = "gemini-2.5-flash";
    queue(
        &gemini,
        vec![
            Reply::json(gemini_fixtures::text_response(flash, TEXT)),
            Reply::sse(gemini_fixtures::text_stream(flash, &PIECES)),
            Reply::json(gemini_fixtures::function_call_response(flash)),
            Reply::json(gemini_fixtures::text_response(flash, FOLLOW_UP)),
            Reply::sse(gemini_fixtures::function_call_stream(flash)),
            Reply::json(gemini_fixtures::text_response(flash, TEXT)),
            Reply::json(gemini_fixtures::text_response(flash, FOLLOW_UP)),
        ],
    );
    let native = MockUpstream::start().await;
    let search = json!([{"type": "web_search_call", "id": "ws_native", "status": "completed",
                         "action": {"type": "search", "query": "loom"}}, native_message(TEXT)]);
    queue(
        &native,
        vec![
            Reply::json(native_response("resp_native_1", "completed", search)),
            Reply::sse(native_stream("resp_native_2")),
            Reply::json(native_response("resp_native_3", "completed", json!([native_message(FOLLOW_UP)]))),
        ],
    );
    let yaml = format!(
        "ai_gateway:\n  providers:\n\
         \x20   - name: openai\n      type: openai\n      api_key: sk-test-key-0123456789\n      base_url: {}\n      models: [{gpt}]\n\
         \x20   - name: claude\n      type: anthropic\n      api_key: sk-ant-test-0123456789\n      base_url: http://{}\n      models: [{sonnet}]\n\
         \x20   - name: gemini\n      type: gemini\n      api_key: AIzaTestKey0123456789\n      base_url: http://{}\n      models: [{flash}]\n\
         \x20   - name: native\n      type: openai\n      api_key: sk-test-key-0123456789\n      base_url: {}\n      models: [gpt-4.1]\n      responses_api: native\n",
        openai.base_url(),
        claude.addr(),
        gemini.addr(),
        native.base_url(),
    );
    let gateway = TestGateway::start(&yaml).await;

    let script = workspace_root().join("tests/python/openai_responses.py");
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .arg("--base-url")
        .arg(gateway.url("/v1"))
        .arg("--time-limit")
        .arg((SCRIPT_DEADLINE.as_secs() - 30).to_string())
        .arg("--native-model")
        .arg("gpt-4.1")
        // No proxy or real key from the environment may change what the SDK does.
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("NO_PROXY", "*")
        .env("PYTHONUNBUFFERED", "1");
    run_check_script(command, SCRIPT_DEADLINE, 18).await;
    let native_requests: Vec<Value> = native.requests().iter().map(|request| request.json()).collect();
    assert_eq!(
        native_requests,
        [
            json!({"model": "gpt-4.1", "input": "What is Loom?", "tools": [{"type": "web_search"}]}),
            json!({"model": "gpt-4.1", "input": "Hi", "stream": true}),
            json!({"model": "gpt-4.1", "input": "And?", "previous_response_id": "resp_native_2"}),
        ],
        "the SDK's bodies, untranslated"
    );
    assert!(native.requests().iter().all(|request| request.path == "/v1/responses"));

    // Every queued reply was asked for; the unknown previous_response_id reached nobody.
    for (name, mock) in [("openai", &openai), ("claude", &claude), ("gemini", &gemini)] {
        assert_eq!((name, mock.request_count(), mock.pending_replies()), (name, 7, 0));
    }
    let requests = openai.requests();
    assert_eq!(
        requests[3].json()["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [{"id": fixtures::TOOL_CALL_ID, "type": "function",
                "function": {"name": fixtures::TOOL_CALL_NAME, "arguments": fixtures::TOOL_CALL_ARGUMENTS}}]},
            {"role": "tool", "content": "{\"sky\": \"clear\"}", "tool_call_id": fixtures::TOOL_CALL_ID}
        ]),
        "the SDK's round trip: the call item sent back, then its output"
    );
    assert_eq!(
        requests[6].json()["messages"],
        json!([
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": TEXT},
            {"role": "user", "content": "What is my name?"}
        ]),
        "previous_response_id: the stored turn, then the new input"
    );
    let claude_requests = claude.requests();
    assert_eq!(
        claude_requests[3].json()["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "The user wants the weather in Paris.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="}),
        "Claude's signed thinking came back through the SDK's reasoning item"
    );
}
