//! The official `anthropic` Python SDK against Loom's Anthropic front door
//! (`POST /v1/messages`): `tests/python/anthropic_compat.py` makes whole and streamed
//! calls, tool calls, a two-turn conversation with extended thinking, token counts
//! (`messages.count_tokens`, also the beta path), errors and an async stream, through a real gateway in front of OpenAI, Anthropic and Gemini mock upstreams.
//! Then `tests/python/openai_to_anthropic.py` has the official `openai` SDK stream a tool
//! call from an Anthropic provider. Afterwards every upstream's requests are checked.
//!
//! The interpreter is `$TEST_PYTHON`, else `<workspace>/.venv/bin/python`, else
//! `python3`; it must have the packages of `tests/python/requirements.txt` (`.ci/run`
//! installs them). The variable deliberately has no `LOOM_` prefix: Loom reads every
//! `LOOM_*` variable as a config override and refuses unknown keys.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use loom_e2e::TestGateway;
use loom_e2e::process::{Finished, python, run, sdk_script, workspace_root};
use loom_test_support::{
    MockUpstream, RecordedRequest, Reply, SseStep, anthropic_fixtures, fixtures, gemini_fixtures,
};
use serde_json::{Value, json};

/// Longest a script may take; it gives up by itself a little earlier.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(150);

const OPENAI_KEY: &str = "sk-test-key-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";
const GEMINI_KEY: &str = "AIzaTestKey0123456789";

/// Texts the scripts expect (they repeat them in their own constants).
const CLAUDE_TEXT: &str = "Bonjour from the Anthropic mock";
const CLAUDE_PIECES: [&str; 5] = ["Bonjour", " from", " the", " Anthropic", " mock"];
const FOLLOW_UP: &str = "It is 18 °C and sunny in Paris.";
const FOLLOW_UP_PIECES: [&str; 3] = ["It is 18 °C", " and sunny", " in Paris."];
const REDACTED: &str =
    "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj2";
const GEMINI_TEXT: &str = "Bonjour from Gemini";
const WEATHER_QUESTION: &str = "What is the weather in Paris?";

/// Fails with instructions unless `python` can import `module`.
fn require_module(python: &Path, module: &str) {
    let mut command = Command::new(python);
    command.args(["-c", &format!("import {module}; print({module}.__version__)")]);
    let probe = run(command, Duration::from_secs(60));
    assert!(
        probe.status.success(),
        "the Python `{module}` SDK is not importable with `{}` ({}):\n{}\n\
         Run `.ci/run`, or from the workspace root: \
         `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt` \
         (or point TEST_PYTHON at an interpreter that has it).",
        python.display(),
        probe.status,
        probe.stderr.trim()
    );
}

/// Runs `tests/python/{script}` against `base_url`; no SDK setting may come from the
/// environment.
async fn run_script(python: &Path, script: &str, base_url: String) -> (String, Finished) {
    let command = sdk_script(python, script, &base_url, SCRIPT_DEADLINE);
    let script = workspace_root().join("tests/python").join(script);
    let description = format!("{} {}", python.display(), script.display());
    let finished = tokio::task::spawn_blocking(move || run(command, SCRIPT_DEADLINE)).await.expect("runner");
    (description, finished)
}

/// Every mismatch found, so one run reports all of them, not just the first.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check_eq(&mut self, what: &str, actual: impl Into<Value>, expected: impl Into<Value>) {
        let (actual, expected) = (actual.into(), expected.into());
        if actual != expected {
            self.0.push(format!(
                "{what}:\n  expected: {}\n  actual:   {}",
                serde_json::to_string(&expected).unwrap_or_default(),
                serde_json::to_string(&actual).unwrap_or_default()
            ));
        }
    }

    fn script(&mut self, description: &str, finished: &Finished, summary: &str) {
        println!("{description}\n{}", finished.stdout);
        if !finished.status.success() || !finished.stdout.contains(summary) {
            self.0.push(format!(
                "{description} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                finished.status, finished.stdout, finished.stderr
            ));
        }
    }
}

/// `(method, path)` and the JSON body of every request `mock` received.
fn received(mock: &MockUpstream) -> Vec<Value> {
    mock.requests().iter().map(|request| json!([request.method, request.path, request.json()])).collect()
}

fn post(path: &str, body: Value) -> Value {
    json!(["POST", path, body])
}

/// Checks the provider's own credentials went upstream, and the client's did not.
fn check_anthropic_headers(problems: &mut Problems, name: &str, requests: &[RecordedRequest]) {
    for (position, request) in requests.iter().enumerate() {
        let headers = json!({
            "x-api-key": request.header("x-api-key"),
            "anthropic-version": request.header("anthropic-version"),
            "authorization": request.header("authorization"),
        });
        problems.check_eq(
            &format!("{name} request {position}: credentials and version headers"),
            headers,
            json!({"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01", "authorization": null}),
        );
    }
}

/// `tool_use_message` with a `redacted_thinking` block after the thinking block.
fn tool_use_message_with_redacted_thinking(model: &str) -> Value {
    let mut message = anthropic_fixtures::tool_use_message(model);
    let content = message["content"].as_array_mut().expect("content");
    content.insert(1, json!({"type": "redacted_thinking", "data": REDACTED}));
    message
}

fn weather_tool_anthropic() -> Value {
    json!({
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    })
}

fn time_tool_anthropic() -> Value {
    json!({
        "name": "get_time",
        "description": "Current time in a timezone",
        "input_schema": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
    })
}

/// The same tool in OpenAI's shape, as Loom sends it to an OpenAI provider.
fn as_openai_tool(tool: &Value) -> Value {
    json!({"type": "function", "function": {
        "name": tool["name"], "description": tool["description"], "parameters": tool["input_schema"]}})
}

/// Turn 2 of a thinking conversation, as the upstream must receive it: the assistant
/// turn carries `assistant_content` exactly as the upstream produced it in turn 1.
fn thinking_turn_two(model: &str, assistant_content: Value, stream: bool) -> Value {
    let mut body = thinking_turn_one(model, stream);
    body["messages"] = json!([
        {"role": "user", "content": WEATHER_QUESTION},
        {"role": "assistant", "content": assistant_content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
            "content": "18 °C, sunny"}]},
    ]);
    body
}

fn thinking_turn_one(model: &str, stream: bool) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [weather_tool_anthropic()],
        "messages": [{"role": "user", "content": WEATHER_QUESTION}],
    });
    if stream {
        body["stream"] = json!(true);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_anthropic_python_sdk_works_against_loom() {
    let python = python();
    require_module(&python, "anthropic");
    require_module(&python, "openai");

    // One upstream per behaviour, chosen by model, so the script's calls need no
    // particular order; only the two conversations queue their two turns.
    let openai = MockUpstream::start().await;
    let openai_tools = MockUpstream::start().await;
    // The Anthropic SDK must see these two parallel calls as two `tool_use` blocks.
    openai_tools.set_default_reply(Reply::sse(fixtures::parallel_tool_calls_stream_steps(true)));
    let claude = MockUpstream::start().await;
    claude.set_default_reply(Reply::json(anthropic_fixtures::message("claude-sonnet-4-5", CLAUDE_TEXT)));
    let claude_stream = MockUpstream::start().await;
    claude_stream.set_default_reply(Reply::sse(anthropic_fixtures::text_stream(
        "claude-sonnet-4-5-stream",
        &CLAUDE_PIECES,
    )));
    let thinking_stream = MockUpstream::start().await;
    let thinking_stream_model = "claude-sonnet-4-5-thinking-stream";
    thinking_stream.push_reply(Reply::sse(anthropic_fixtures::tool_use_stream(thinking_stream_model)));
    thinking_stream
        .push_reply(Reply::sse(anthropic_fixtures::text_stream(thinking_stream_model, &FOLLOW_UP_PIECES)));
    let thinking = MockUpstream::start().await;
    let thinking_model = "claude-sonnet-4-5-thinking";
    let thinking_turn_one_answer = tool_use_message_with_redacted_thinking(thinking_model);
    thinking.push_reply(Reply::json(thinking_turn_one_answer.clone()));
    thinking.push_reply(Reply::json(anthropic_fixtures::message(thinking_model, FOLLOW_UP)));
    let gemini = MockUpstream::start().await;
    gemini
        .set_default_reply(Reply::json(gemini_fixtures::text_response("gemini-2.5-flash-001", GEMINI_TEXT)));
    let limited = MockUpstream::start().await;
    limited.set_default_reply(
        Reply::json_status(
            429,
            anthropic_fixtures::error(
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
        )
        .with_header("retry-after", "7"),
    );
    let overloaded = MockUpstream::start().await;
    overloaded.set_default_reply(Reply::json_status(
        529,
        anthropic_fixtures::error("overloaded_error", "Overloaded"),
    ));
    let broken_stream = MockUpstream::start().await;
    let mut broken_steps =
        anthropic_fixtures::text_stream("claude-sonnet-4-5-broken-stream", &["Half", " an"]);
    broken_steps.truncate(5); // message_start, content_block_start, ping, the two deltas
    broken_steps.push(SseStep::event("error", &anthropic_fixtures::error("overloaded_error", "Overloaded")));
    broken_stream.set_default_reply(Reply::sse(broken_steps));
    let claude_tools = MockUpstream::start().await;
    claude_tools
        .set_default_reply(Reply::sse(anthropic_fixtures::tool_use_stream("claude-sonnet-4-5-tools")));

    let provider = |name: &str, kind: &str, key: &str, base_url: String, models: &str| {
        format!(
            "    - name: {name}\n      type: {kind}\n      api_key: {key}\n      base_url: {base_url}\n      \
             models: [{models}]\n"
        )
    };
    let anthropic = |name: &str, mock: &MockUpstream, model: &str| {
        provider(name, "anthropic", ANTHROPIC_KEY, format!("http://{}", mock.addr()), model)
    };
    let yaml = [
        "ai_gateway:\n  providers:\n".to_owned(),
        provider("openai", "openai", OPENAI_KEY, openai.base_url(), "gpt-4o"),
        provider("openai-tools", "openai", OPENAI_KEY, openai_tools.base_url(), "gpt-4o-tools"),
        anthropic("claude", &claude, "claude-sonnet-4-5"),
        anthropic("claude-stream", &claude_stream, "claude-sonnet-4-5-stream"),
        anthropic("claude-thinking-stream", &thinking_stream, thinking_stream_model),
        anthropic("claude-thinking", &thinking, thinking_model),
        anthropic("claude-limited", &limited, "claude-sonnet-4-5-limited"),
        anthropic("claude-overloaded", &overloaded, "claude-sonnet-4-5-overloaded"),
        anthropic("claude-broken-stream", &broken_stream, "claude-sonnet-4-5-broken-stream"),
        anthropic("claude-tools", &claude_tools, "claude-sonnet-4-5-tools"),
        provider("gemini", "gemini", GEMINI_KEY, format!("http://{}", gemini.addr()), "gemini-2.5-flash"),
    ]
    .concat();
    let gateway = TestGateway::start(&yaml).await;

    let mut problems = Problems::default();
    let (description, finished) = run_script(&python, "anthropic_compat.py", gateway.url("")).await;
    problems.script(&description, &finished, "all 14 checks passed");
    let (description, finished) = run_script(&python, "openai_to_anthropic.py", gateway.url("/v1")).await;
    problems.script(&description, &finished, "all 1 checks passed");

    // What reached each upstream. Errors Loom answers itself (the unknown model) never
    // do, and the SDKs (max_retries=0) send each failing call once.
    let hello = json!([{"role": "user", "content": "Hi"}]);
    problems.check_eq(
        "openai upstream requests",
        received(&openai),
        json!([
            post("/v1/chat/completions", json!({"model": "gpt-4o", "messages": hello, "max_tokens": 64})),
            post(
                "/v1/chat/completions",
                json!({"model": "gpt-4o", "messages": hello, "max_tokens": 64, "stream": true,
                    "stream_options": {"include_usage": true}})
            ),
        ]),
    );
    let openai_auth: Vec<Option<String>> =
        openai.requests().iter().map(|request| request.header("authorization")).collect();
    problems.check_eq(
        "openai upstream authorization (the provider's key, not the client's)",
        json!(openai_auth),
        json!([format!("Bearer {OPENAI_KEY}"), format!("Bearer {OPENAI_KEY}")]),
    );

    problems.check_eq(
        "openai-tools upstream requests",
        received(&openai_tools),
        json!([post(
            "/v1/chat/completions",
            json!({
                "model": "gpt-4o-tools",
                "messages": [{"role": "user", "content": "Weather and time in Paris?"}],
                "max_tokens": 256,
                "stream": true,
                "stream_options": {"include_usage": true},
                "tools": [as_openai_tool(&weather_tool_anthropic()), as_openai_tool(&time_tool_anthropic())],
                "tool_choice": "auto"
            })
        )]),
    );

    // Anthropic to Anthropic: every parameter the SDK sent arrives unchanged. The fields
    // Loom models, then each one it is known to lose, so a failure names the field.
    let claude_requests = claude.requests();
    problems.check_eq(
        "claude upstream requests (method, path)",
        json!(claude_requests.iter().map(|r| json!([r.method, r.path])).collect::<Vec<_>>()),
        json!([["POST", "/v1/messages"]]),
    );
    let claude_body = claude_requests.first().map(RecordedRequest::json).unwrap_or(Value::Null);
    let mut modelled = claude_body.clone();
    if let Some(body) = modelled.as_object_mut() {
        body.remove("top_k");
        body.remove("service_tier");
    }
    problems.check_eq(
        "claude upstream body (whole text, sampling parameters)",
        modelled,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 300,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "Say bonjour"}],
            "temperature": 0.25,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "user-42"}
        }),
    );
    problems.check_eq("claude upstream body: top_k", claude_body["top_k"].clone(), 5);
    problems.check_eq(
        "claude upstream body: service_tier (a field Loom does not model)",
        claude_body["service_tier"].clone(),
        "auto",
    );
    let streamed_hello =
        json!({"model": "claude-sonnet-4-5-stream", "max_tokens": 64, "messages": hello, "stream": true});
    problems.check_eq(
        "claude-stream upstream requests (sync, then async client)",
        received(&claude_stream),
        json!([post("/v1/messages", streamed_hello.clone()), post("/v1/messages", streamed_hello)]),
    );

    // The key property: turn 2 carries turn 1's thinking block with the identical
    // signature, the tool call and the tool result, byte-for-byte as JSON values.
    let streamed_turn_one = anthropic_fixtures::tool_use_message(thinking_stream_model);
    let streamed_turn_one_content = json!([streamed_turn_one["content"][0], streamed_turn_one["content"][2]]);
    problems.check_eq(
        "claude-thinking-stream upstream requests (turn 1, turn 2)",
        received(&thinking_stream),
        json!([
            post("/v1/messages", thinking_turn_one(thinking_stream_model, true)),
            post("/v1/messages", thinking_turn_two(thinking_stream_model, streamed_turn_one_content, true)),
        ]),
    );
    // The same, spelled out for the signature: what upstream streamed in turn 1 (a
    // `signature_delta`) is what it receives back in turn 2.
    let signatures: Vec<Value> = thinking_stream
        .requests()
        .iter()
        .map(|request| request.json()["messages"][1]["content"][0]["signature"].clone())
        .collect();
    problems.check_eq(
        "claude-thinking-stream signatures sent back (turn 1 has none, turn 2 the streamed one)",
        json!(signatures),
        json!([null, "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="]),
    );
    problems.check_eq("claude-thinking-stream replies left", thinking_stream.pending_replies() as u64, 0);
    problems.check_eq(
        "claude-thinking upstream requests (turn 1, turn 2 with redacted thinking)",
        received(&thinking),
        json!([
            post("/v1/messages", thinking_turn_one(thinking_model, false)),
            post(
                "/v1/messages",
                thinking_turn_two(thinking_model, thinking_turn_one_answer["content"].clone(), false)
            ),
        ]),
    );
    problems.check_eq("claude-thinking replies left", thinking.pending_replies() as u64, 0);

    problems.check_eq(
        "gemini upstream requests",
        received(&gemini),
        json!([post(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                "generationConfig": {"maxOutputTokens": 64}})
        )]),
    );
    problems.check_eq(
        "gemini upstream key",
        json!(gemini.requests().iter().map(|r| r.header("x-goog-api-key")).collect::<Vec<_>>()),
        json!([GEMINI_KEY]),
    );

    let small_hello = |model: &str| json!({"model": model, "max_tokens": 16, "messages": hello});
    problems.check_eq(
        "claude-limited upstream requests (sent once)",
        received(&limited),
        json!([post("/v1/messages", small_hello("claude-sonnet-4-5-limited"))]),
    );
    problems.check_eq(
        "claude-overloaded upstream requests (sent once)",
        received(&overloaded),
        json!([post("/v1/messages", small_hello("claude-sonnet-4-5-overloaded"))]),
    );

    problems.check_eq(
        "claude-broken-stream upstream requests (sent once)",
        received(&broken_stream),
        json!([post(
            "/v1/messages",
            json!({"model": "claude-sonnet-4-5-broken-stream", "max_tokens": 64, "messages": hello, "stream": true})
        )]),
    );

    // The openai SDK's call, translated to Anthropic's Messages API.
    problems.check_eq(
        "claude-tools upstream requests (openai SDK)",
        received(&claude_tools),
        json!([post(
            "/v1/messages",
            json!({
                "model": "claude-sonnet-4-5-tools",
                "max_tokens": 512,
                "messages": [{"role": "user", "content": WEATHER_QUESTION}],
                "stream": true,
                "tools": [{"name": "get_weather", "description": "Current weather in a city",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"]}}]
            })
        )]),
    );

    for (name, mock) in [
        ("claude", &claude),
        ("claude-stream", &claude_stream),
        ("claude-thinking-stream", &thinking_stream),
        ("claude-thinking", &thinking),
        ("claude-limited", &limited),
        ("claude-overloaded", &overloaded),
        ("claude-broken-stream", &broken_stream),
        ("claude-tools", &claude_tools),
    ] {
        check_anthropic_headers(&mut problems, name, &mock.requests());
    }

    assert!(problems.0.is_empty(), "{} problem(s):\n\n{}", problems.0.len(), problems.0.join("\n\n"));
}
