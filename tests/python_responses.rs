//! The official `openai` Python SDK's Responses API against Loom:
//! `tests/python/openai_responses.py` runs `responses.create`, `responses.stream`, a
//! function-calling round trip, a streamed call and `previous_response_id` against an
//! OpenAI-, an Anthropic- and a Gemini-format provider, each behind a mock upstream
//! that answers the script's calls in order.
//!
//! The interpreter is `$TEST_PYTHON`, else `<workspace>/.venv/bin/python`, else
//! `python3` (see tests/python_sdk.rs).

use std::process::Command;
use std::time::Duration;

use loom_e2e::TestGateway;
use loom_e2e::process::{python, run, workspace_root};
use loom_test_support::{MockUpstream, Reply, anthropic_fixtures, fixtures, gemini_fixtures};
use serde_json::json;

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
    let yaml = format!(
        "ai_gateway:\n  providers:\n\
         \x20   - name: openai\n      type: openai\n      api_key: sk-test-key-0123456789\n      base_url: {}\n      models: [{gpt}]\n\
         \x20   - name: claude\n      type: anthropic\n      api_key: sk-ant-test-0123456789\n      base_url: http://{}\n      models: [{sonnet}]\n\
         \x20   - name: gemini\n      type: gemini\n      api_key: AIzaTestKey0123456789\n      base_url: http://{}\n      models: [{flash}]\n",
        openai.base_url(),
        claude.addr(),
        gemini.addr(),
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
        // No proxy or real key from the environment may change what the SDK does.
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("NO_PROXY", "*")
        .env("PYTHONUNBUFFERED", "1");
    let finished = tokio::task::spawn_blocking(move || run(command, SCRIPT_DEADLINE)).await.expect("runner");
    assert!(
        finished.status.success(),
        "{} {} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        python.display(),
        script.display(),
        finished.status,
        finished.stdout,
        finished.stderr
    );
    println!("{}", finished.stdout);
    assert!(finished.stdout.contains("all 15 checks passed"), "{}", finished.stdout);

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
