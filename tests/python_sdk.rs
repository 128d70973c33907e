//! The official `openai` Python SDK against Loom: `tests/python/openai_compat.py` runs
//! a gateway's worth of calls (whole and streamed chat, tool-call deltas, embeddings,
//! models, error mapping, the async client) through a real gateway in front of mock
//! upstreams.
//!
//! The interpreter is `$TEST_PYTHON`, else `<workspace>/.venv/bin/python`, else
//! `python3`; it must have the packages of `tests/python/requirements.txt` (`.ci/run`
//! installs them). The variable deliberately has no `LOOM_` prefix: Loom reads every
//! `LOOM_*` variable as a config override and refuses unknown keys, so a
//! `LOOM_TEST_PYTHON` in the environment would stop every config from loading.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use loom_e2e::TestGateway;
use loom_e2e::process::{python, run, run_check_script, workspace_root};
use loom_test_support::{MockUpstream, Reply, fixtures};
use serde_json::{Value, json};

/// Longest the script may take; it gives up by itself a little earlier.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(150);

/// Fails with instructions unless `python` can import the SDK.
fn require_openai_sdk(python: &Path) {
    let mut command = Command::new(python);
    command.args(["-c", "import openai; print(openai.__version__)"]);
    let probe = run(command, Duration::from_secs(60));
    assert!(
        probe.status.success(),
        "the Python `openai` SDK is not importable with `{}` ({}):\n{}\n\
         Run `.ci/run`, or from the workspace root: \
         `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt` \
         (or point TEST_PYTHON at an interpreter that has it).",
        python.display(),
        probe.status,
        probe.stderr.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_python_sdk_works_against_loom() {
    let python = python();
    require_openai_sdk(&python);

    // One upstream per behaviour, so the script's calls need no particular order.
    let main = MockUpstream::start().await;
    let tools = MockUpstream::start().await;
    // `openai_compat.py` asserts the SDK accumulates these deltas into `TOOL_CALLS`.
    tools.set_default_reply(Reply::sse(fixtures::parallel_tool_calls_stream_steps(false)));
    let limited = MockUpstream::start().await;
    limited.set_default_reply(Reply::rate_limited(7));
    let provider = |name: &str, base_url: String, models: &str| {
        format!(
            "    - name: {name}\n      type: openai\n      api_key: sk-test-key-0123456789\n      \
             base_url: {base_url}\n      models: [{models}]\n"
        )
    };
    let yaml = format!(
        "ai_gateway:\n  providers:\n{}{}{}",
        provider("openai", main.base_url(), "gpt-4o, gpt-4o-mini, text-embedding-3-small"),
        provider("tools", tools.base_url(), "gpt-4o-tools"),
        provider("limited", limited.base_url(), "gpt-4o-limited"),
    );
    let gateway = TestGateway::start(&yaml).await;

    let script = workspace_root().join("tests/python/openai_compat.py");
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
    run_check_script(command, SCRIPT_DEADLINE, 10).await;

    // What reached the upstreams: errors Loom answers itself never do, and the SDK
    // (max_retries=0) sends the rate-limited call once.
    let upstream = main.requests();
    let calls: Vec<(String, Value, Value, Value)> = upstream
        .iter()
        .map(|request| {
            let body = request.json();
            (
                request.path.clone(),
                body["model"].clone(),
                body["stream"].clone(),
                body["encoding_format"].clone(),
            )
        })
        .collect();
    let call = |path: &str, model: &str, stream: Value, encoding: Value| {
        (path.to_owned(), json!(model), stream, encoding)
    };
    assert_eq!(
        calls,
        vec![
            call("/v1/chat/completions", "gpt-4o", Value::Null, Value::Null),
            call("/v1/chat/completions", "gpt-4o", json!(true), Value::Null),
            call("/v1/chat/completions", "gpt-4o-mini", json!(true), Value::Null),
            call("/v1/embeddings", "text-embedding-3-small", Value::Null, json!("base64")),
            call("/v1/embeddings", "text-embedding-3-small", Value::Null, json!("float")),
            call("/v1/chat/completions", "gpt-4o", json!(true), Value::Null),
        ]
    );
    assert_eq!(upstream[2].json()["stream_options"], json!({"include_usage": true}));
    assert_eq!(upstream[3].json()["input"], json!(["first", "second"]));
    assert!(
        upstream.iter().all(
            |request| request.header("authorization").as_deref() == Some("Bearer sk-test-key-0123456789")
        ),
        "the provider's key, not the client's, goes upstream"
    );

    let tool_requests = tools.requests();
    assert_eq!(tool_requests.len(), 1);
    let tool_body = tool_requests[0].json();
    assert_eq!(tool_body["stream"], json!(true));
    assert_eq!(tool_body["parallel_tool_calls"], json!(true));
    let names: Vec<&Value> =
        tool_body["tools"].as_array().expect("tools").iter().map(|t| &t["function"]["name"]).collect();
    assert_eq!(names, [&json!("get_weather"), &json!("get_time")]);
    assert_eq!(tool_body["tools"][0]["function"]["strict"], json!(true));

    assert_eq!(limited.request_count(), 1, "the 429 reached the SDK without a retry");
}
