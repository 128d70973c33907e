//! The response cache through the official Python SDKs (`tests/python/cache_sdks.py`):
//! `openai` and `anthropic` get the same answer on a hit as on the miss, whole and
//! streamed, with a fresh id; the upstream answers each question once.
//!
//! The interpreter is `$TEST_PYTHON`, else `<workspace>/.venv/bin/python`, else `python3`;
//! it must have the packages of `tests/python/requirements.txt` (`.ci/run` installs them).

use std::time::Duration;

use loom_e2e::TestGateway;
use loom_e2e::process::{python, run_check_script, sdk_script};
use loom_test_support::MockUpstream;

/// Longest the script may take; it gives up by itself a little earlier.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_get_identical_answers_on_a_hit() {
    let mock = MockUpstream::start().await;
    let gateway =
        TestGateway::start(&loom_e2e::openai_config(&mock.base_url(), "", "  cache:\n    enabled: true\n"))
            .await;
    let python = python();
    let command = sdk_script(&python, "cache_sdks.py", &gateway.url(""), SCRIPT_DEADLINE);
    run_check_script(command, SCRIPT_DEADLINE, 6).await;
    // Six questions, each answered once by the upstream: every second ask was a hit.
    assert_eq!(mock.request_count(), 6);
}
