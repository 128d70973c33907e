//! The console in a real headless Chromium (`tests/python/console_browser.py`, Selenium
//! driving Debian's `chromium` through `chromedriver`): sign-in, the config's providers, a
//! request sent through Loom appearing live with its cost, a key created and revoked,
//! sign-out, and no console errors. The screenshot is kept at `target/console/console.png`.
//!
//! Chromium and chromedriver are `$TEST_CHROMIUM` and `$TEST_CHROMEDRIVER`, else
//! `/usr/bin/chromium` and `/usr/bin/chromedriver` (`.ci/run` installs both); the Python
//! interpreter needs `selenium` from `tests/python/requirements.txt`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use loom_e2e::TestGateway;
use loom_e2e::process::{python, run_check_script, workspace_root};
use loom_test_support::MockUpstream;

/// Longest the browser run may take; the script gives up by itself a little earlier.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(150);

/// The request's cost at gpt-4o's built-in price: 9 input tokens at $0.0025 per 1k and 6
/// output tokens at $0.01 per 1k (the mock's usage), as the page writes it.
const EXPECTED_COST: &str = "$0.0000825";

fn tool(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable)
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_live_data_in_headless_chromium_without_console_errors() {
    let (primary, backup) = (MockUpstream::start().await, MockUpstream::start().await);
    let yaml = format!(
        "ai_gateway:
  providers:
    - {{name: openai, type: openai, api_key: sk-console-0123456789, base_url: {}}}
    - {{name: backup, type: openai, api_key: sk-backup-0123456789, base_url: {}}}
  auth:
    enabled: true
    admin_key: console-admin-secret
    keys:
      - {{id: web-app, key: lk-console-web, team: web}}
",
        primary.base_url(),
        backup.base_url()
    );
    let gateway = TestGateway::start(&yaml).await;
    let screenshot = workspace_root().join("target/console/console.png");
    std::fs::create_dir_all(screenshot.parent().expect("a parent")).expect("target/console");
    let _ = std::fs::remove_file(&screenshot);

    let python = python();
    let mut command = Command::new(&python);
    command
        .arg(workspace_root().join("tests/python/console_browser.py"))
        .args(["--base-url", &gateway.url("")])
        .args(["--admin-url", &format!("http://{}", gateway.admin_addr)])
        .args(["--admin-key", "console-admin-secret", "--api-key", "lk-console-web"])
        .args(["--providers", "openai,backup", "--model", "gpt-4o", "--cost", EXPECTED_COST])
        .arg("--screenshot")
        .arg(&screenshot)
        .arg("--chromium")
        .arg(tool("TEST_CHROMIUM", "/usr/bin/chromium"))
        .arg("--chromedriver")
        .arg(tool("TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
        .args(["--time-limit", &SCRIPT_DEADLINE.as_secs().saturating_sub(30).to_string()])
        .env("NO_PROXY", "*")
        .env("PYTHONUNBUFFERED", "1");
    run_check_script(command, SCRIPT_DEADLINE, 8).await;
    assert_eq!(
        primary.request_count() + backup.request_count(),
        1,
        "the page's request reached one upstream"
    );
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a screenshot of {} bytes",
        png.len()
    );
}
