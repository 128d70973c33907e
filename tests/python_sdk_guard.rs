//! Loom's virtual keys and rate limits through the official Python SDKs:
//! `tests/python/openai_guard.py` (`openai`) and `tests/python/anthropic_guard.py`
//! (`anthropic`, with `x-api-key`) see 401, 403 and 429 as their own error types, and both
//! SDKs' retries honour `retry-after-ms`.
//!
//! The interpreter is `$TEST_PYTHON`, else `<workspace>/.venv/bin/python`, else
//! `python3`; it must have the packages of `tests/python/requirements.txt` (`.ci/run`
//! installs them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use loom_e2e::TestGateway;
use loom_e2e::process::{python, run, run_check_script, sdk_script};
use loom_test_support::MockUpstream;

/// Longest a script may take; it gives up by itself a little earlier.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

/// The keys the scripts use (see their docstrings).
const KEYS: &str = "  auth:
    enabled: true
    keys:
      - {id: app, key: lk-app}
      - {id: mini, key: lk-mini, models: ['gpt-4o-mini*']}
      - {id: burst, key: lk-burst, limits: [{scope: key, requests_per_second: 1}]}
      - {id: retry, key: lk-retry, limits: [{scope: key, requests_per_second: 1}]}
";

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

/// Runs `tests/python/{script}` against `base_url` and asserts all its checks passed; no
/// SDK setting may come from the environment.
async fn run_script(module: &str, script: &str, base_url: String, checks: usize) {
    let python = python();
    require_module(&python, module);
    let command = sdk_script(&python, script, &base_url, SCRIPT_DEADLINE);
    run_check_script(command, SCRIPT_DEADLINE, checks).await;
}

/// A ledger in a fresh temporary directory, and its `ai_gateway` YAML.
fn ledger() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::Builder::new().prefix("loom-sdk-guard-").tempdir().expect("temp dir");
    let path = dir.path().join("usage.db");
    let yaml =
        format!("  token_accounting:\n    ledger_path: {}\n    flush_interval: 50ms\n", path.display());
    (dir, path, yaml)
}

/// (key, model, status, refusal) of every ledger row, once there are `n`.
async fn ledger_rows(ledger: &Path, n: usize) -> Vec<(Option<String>, String, i64, Option<String>)> {
    loom_e2e::ledger_rows(ledger, "key_id, model_requested, status, refusal", n).await
}

fn row(
    key: &str,
    model: &str,
    status: i64,
    refusal: Option<&str>,
) -> (Option<String>, String, i64, Option<String>) {
    (Some(key.to_owned()), model.to_owned(), status, refusal.map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_sees_loom_key_errors_as_its_own_and_honours_retry_after_ms() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger, accounting) = ledger();
    let gateway =
        TestGateway::start(&loom_e2e::openai_config(&mock.base_url(), "", &format!("{KEYS}{accounting}")))
            .await;
    run_script("openai", "openai_guard.py", gateway.url("/v1"), 5).await;

    // Refused requests (401, 403) never reach the upstream; usage records the
    // authenticated ones, refusals of limits with their reason.
    let rows = ledger_rows(&ledger, 6).await;
    let limited = Some("rate_limit:key:requests");
    assert_eq!(
        rows,
        [
            row("app", "gpt-4o", 200, None),
            row("burst", "gpt-4o", 200, None),
            row("burst", "gpt-4o", 429, limited),
            row("retry", "gpt-4o-mini", 200, None),
            // The retried call: Loom saw it twice, refused then allowed.
            row("retry", "gpt-4o-mini", 429, limited),
            row("retry", "gpt-4o-mini", 200, None),
        ]
    );
    let models: Vec<String> = mock
        .requests()
        .iter()
        .map(|request| request.json()["model"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(models, ["gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]);
    for request in mock.requests() {
        assert_eq!(request.header("authorization").as_deref(), Some("Bearer sk-test-key-0123456789"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_sees_loom_key_errors_as_its_own_and_honours_retry_after_ms() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger, accounting) = ledger();
    let gateway =
        TestGateway::start(&loom_e2e::openai_config(&mock.base_url(), "", &format!("{KEYS}{accounting}")))
            .await;
    run_script("anthropic", "anthropic_guard.py", gateway.url(""), 5).await;

    let rows = ledger_rows(&ledger, 6).await;
    let limited = Some("rate_limit:key:requests");
    assert_eq!(
        rows,
        [
            row("app", "gpt-4o", 200, None),
            row("burst", "gpt-4o", 200, None),
            row("burst", "gpt-4o", 429, limited),
            row("retry", "gpt-4o-mini", 200, None),
            // The retried call: Loom saw it twice, refused then allowed.
            row("retry", "gpt-4o-mini", 429, limited),
            row("retry", "gpt-4o-mini", 200, None),
        ]
    );
    let models: Vec<String> = mock
        .requests()
        .iter()
        .map(|request| request.json()["model"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(models, ["gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]);
    for request in mock.requests() {
        assert_eq!(request.header("x-api-key"), None, "the client's key stays in Loom");
    }
}
