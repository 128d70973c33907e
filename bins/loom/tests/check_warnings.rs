//! `loom check` warns about listeners reachable from the network without a key, and still
//! accepts the config (exit code 0).

use std::process::{Command, Output, Stdio};

const LOOM: &str = env!("CARGO_BIN_EXE_loom");

/// The mock provider only: every config below adds its listeners and auth to it.
const PROVIDERS: &str = "
ai_gateway:
  providers:
    - name: mock
      type: mock
";

const FRONT_DOOR_WARNING: &str = "warning: server.listen 0.0.0.0:8080 is not a loopback address and \
     ai_gateway.auth.enabled is false: anyone who can reach it spends your provider keys; turn auth on \
     (docs/security.md) or listen on 127.0.0.1";

const ADMIN_WARNING: &str = "warning: admin.listen 0.0.0.0:9091 is not a loopback address and \
     ai_gateway.auth.admin_key is not set: anyone who can reach it can create keys and read usage; set \
     admin_key (docs/security.md) or listen on 127.0.0.1";

/// Runs `loom check` on `listeners` + the providers + `auth` (lines under `ai_gateway:`),
/// with `LOOM_*` variables cleared; returns the output and its stdout lines.
fn check(listeners: &str, auth: &str) -> (Output, Vec<String>) {
    check_yaml(&format!("{listeners}{PROVIDERS}{auth}"), &[])
}

/// Runs `loom check` on `yaml` with `env` set and `LOOM_*` variables cleared; asserts it
/// accepts the config, and returns the output and its stdout lines.
fn check_yaml(yaml: &str, env: &[(&str, &str)]) -> (Output, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("loom.yaml");
    std::fs::write(&path, yaml).expect("write the config");
    let mut command = Command::new(LOOM);
    command.arg("check").arg("--config").arg(&path).stdin(Stdio::null()).envs(env.iter().copied());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOOM_") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("run loom check");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "a warning is no error:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().last(), Some("config OK"), "{stdout}");
    let lines = stdout.lines().map(str::to_owned).collect();
    (output, lines)
}

fn warnings(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).filter(|line| line.starts_with("warning:")).collect()
}

#[test]
fn an_open_front_door_and_an_open_admin_port_are_both_warned_about() {
    let listeners = "server:\n  listen: 0.0.0.0:8080\nadmin:\n  listen: 0.0.0.0:9091\n";
    let (_, lines) = check(listeners, "");
    assert_eq!(warnings(&lines), [FRONT_DOOR_WARNING, ADMIN_WARNING]);
}

#[test]
fn the_default_listener_is_public_so_the_default_config_is_warned_about() {
    // server.listen defaults to 0.0.0.0:8080; the admin port to 127.0.0.1:9091.
    let (_, lines) = check("", "");
    assert_eq!(warnings(&lines), [FRONT_DOOR_WARNING]);
}

#[test]
fn auth_and_an_admin_key_silence_the_warnings() {
    let listeners = "server:\n  listen: 0.0.0.0:8080\nadmin:\n  listen: 0.0.0.0:9091\n";
    let auth = "  auth:\n    enabled: true\n    admin_key: admin-secret\n    keys:\n      - {id: app, key: lk-app}\n";
    let (output, lines) = check(listeners, auth);
    assert_eq!(warnings(&lines), Vec::<&str>::new());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("admin-secret") && !stdout.contains("lk-app"), "{stdout}");
}

#[test]
fn auth_alone_leaves_the_public_admin_port_warned_about() {
    let listeners = "server:\n  listen: 0.0.0.0:8080\nadmin:\n  listen: 0.0.0.0:9091\n";
    let auth = "  auth:\n    enabled: true\n    keys:\n      - {id: app, key: lk-app}\n";
    let (_, lines) = check(listeners, auth);
    assert_eq!(warnings(&lines), [ADMIN_WARNING]);
}

#[test]
fn loopback_listeners_need_no_key() {
    for (server, admin) in [("127.0.0.1:8080", "127.0.0.1:9091"), ("[::1]:8080", "[::1]:9091")] {
        let listeners = format!("server:\n  listen: \"{server}\"\nadmin:\n  listen: \"{admin}\"\n");
        let (_, lines) = check(&listeners, "");
        assert_eq!(warnings(&lines), Vec::<&str>::new(), "{server} {admin}");
    }
}

#[test]
fn a_disabled_admin_port_is_not_warned_about() {
    let listeners = "server:\n  listen: 127.0.0.1:8080\nadmin:\n  enabled: false\n  listen: 0.0.0.0:9091\n";
    let (_, lines) = check(listeners, "");
    assert_eq!(warnings(&lines), Vec::<&str>::new());
}

/// The ```yaml block under `## A complete example` in docs/security.md.
fn security_complete_example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/security.md");
    let text = std::fs::read_to_string(path).expect("read docs/security.md");
    let (_, section) = text.split_once("\n## A complete example\n").expect("the complete example section");
    let (_, fenced) = section.split_once("```yaml\n").expect("its yaml block");
    let (yaml, _) = fenced.split_once("\n```").expect("the block's end");
    yaml.to_owned()
}

#[test]
fn check_accepts_the_complete_example_of_the_security_page_on_redis_without_warnings() {
    // Redis is not running: `check` builds the state backend, which connects lazily.
    let env = [
        ("OPENAI_API_KEY", "sk-openai-check"),
        ("ANTHROPIC_API_KEY", "sk-ant-check"),
        ("ADMIN_KEY", "admin-check-secret"),
        ("BACKEND_KEY", "lk-backend-check-secret"),
        ("REDIS_URL", "redis://:redis-check-secret@127.0.0.1:1/0"),
    ];
    let (output, lines) = check_yaml(&security_complete_example(), &env);
    assert_eq!(warnings(&lines), Vec::<&str>::new());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for (_, secret) in env {
        assert!(!stdout.contains(secret), "{stdout}");
    }
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}
