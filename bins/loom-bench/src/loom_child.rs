//! Loom under test: its generated config, the child process, and its memory.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::child::{self, ChildGuard};

/// The API key Loom sends upstream (the mock accepts any).
const API_KEY: &str = "sk-bench";

/// Loom running in a child process with a generated config in a temp dir.
#[derive(Debug)]
pub struct LoomChild {
    /// The `loom` process (stopped on drop).
    pub guard: ChildGuard,
    /// Where Loom serves the AI gateway.
    pub addr: SocketAddr,
    /// Where Loom serves its admin API and metrics.
    pub admin: SocketAddr,
    /// The generated config; removed on drop, after the guard.
    _dir: TempDir,
}

/// What Loom checks before a request goes on, beyond its plain pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Nothing: no key, no limit (the default Loom).
    Off,
    /// A virtual key, one request limit and one token limit, in memory.
    Memory,
    /// The same, on the Redis at this address.
    Redis(SocketAddr),
    /// No key or limit; the default security checks (prompt-injection detection, flagging) on.
    Checks,
    /// No key or limit; the exact response cache on, so a repeated request is answered from
    /// memory.
    Cache,
}

/// Request limit of the guarded Looms: far above what one machine can send, so it
/// never refuses, yet every request is checked against it.
pub const GUARD_REQUESTS_PER_SECOND: u64 = 100_000;
/// Token limit of the guarded Looms (each request reserves about 1,030 tokens).
pub const GUARD_TOKENS_PER_MINUTE: u64 = 10_000_000_000;

/// The Loom YAML config: one `openai` provider pointing at the mock upstream; with a
/// guard, the load generator's `Bearer sk-bench` becomes a virtual key, and a request
/// limit and a token limit per key apply, in memory or on Redis.
pub fn config(listen: SocketAddr, admin: SocketAddr, upstream: SocketAddr, guard: Guard) -> String {
    let mut yaml = format!(
        "\
server:
  listen: {listen}
admin:
  listen: {admin}
logging:
  level: warn
ai_gateway:
  providers:
    - name: openai
      type: openai
      api_key: {API_KEY}
      base_url: http://{upstream}/v1
"
    );
    // Written line by line: a `\` line continuation would eat the indentation.
    if guard != Guard::Checks {
        // The built-in checks are on unless turned off: the other Looms go without them.
        yaml.push_str("  checks:\n    injection: {enabled: false}\n");
    }
    if matches!(guard, Guard::Memory | Guard::Redis(_)) {
        for line in [
            "  auth:".to_owned(),
            "    enabled: true".to_owned(),
            "    keys:".to_owned(),
            "      - id: bench".to_owned(),
            format!("        key: {API_KEY}"),
            "  rate_limits:".to_owned(),
            format!("    - {{scope: key, requests_per_second: {GUARD_REQUESTS_PER_SECOND}}}"),
            format!("    - {{scope: key, tokens_per_minute: {GUARD_TOKENS_PER_MINUTE}}}"),
        ] {
            yaml.push_str(&line);
            yaml.push('\n');
        }
    }
    if guard == Guard::Cache {
        yaml.push_str("  cache:\n    enabled: true\n");
    }
    if let Guard::Redis(redis) = guard {
        yaml.push_str(&format!("  state:\n    backend: redis\n    url: redis://{redis}/0\n"));
    }
    yaml
}

/// The default `loom` binary: the one next to this executable.
pub fn default_bin() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| io::Error::other("current executable has no parent directory"))?;
    Ok(dir.join("loom"))
}

/// Start `loom_bin` proxying to `upstream` with `guard` on a free port and wait until it
/// listens.
pub fn spawn(loom_bin: &Path, upstream: SocketAddr, guard: Guard) -> io::Result<LoomChild> {
    if !loom_bin.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no loom binary at {}: build it with `cargo build --release -p loom` or pass --loom-bin",
                loom_bin.display()
            ),
        ));
    }
    let dir = tempfile::Builder::new().prefix("loom-bench-loom-").tempdir()?;
    let addr = child::free_port()?;
    let admin = child::free_port()?;
    let conf = dir.path().join("loom.yaml");
    std::fs::write(&conf, config(addr, admin, upstream, guard))?;
    let mut command = Command::new(loom_bin);
    command
        .arg("--config")
        .arg(&conf)
        .env_remove("LOOM_LOG")
        .env_remove("LOOM_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut guard = ChildGuard::spawn("loom", command)?;
    guard.wait_listening(addr, Duration::from_secs(10))?;
    Ok(LoomChild { guard, addr, admin, _dir: dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_points_one_openai_provider_at_the_mock() {
        let yaml = config(
            "127.0.0.1:8001".parse().unwrap(),
            "127.0.0.1:8002".parse().unwrap(),
            "127.0.0.1:9001".parse().unwrap(),
            Guard::Off,
        );
        assert!(yaml.contains("  listen: 127.0.0.1:8001\n"));
        assert!(yaml.contains("admin:\n  listen: 127.0.0.1:8002\n"));
        assert!(yaml.contains("level: warn"));
        assert!(yaml.contains("type: openai"));
        assert!(yaml.contains("api_key: sk-bench"));
        assert!(yaml.contains("base_url: http://127.0.0.1:9001/v1"));
        assert!(!yaml.contains("auth:") && !yaml.contains("rate_limits:") && !yaml.contains("state:"));
        assert!(!yaml.contains("cache:"));
    }

    /// Every generated config loads as Loom loads it, and means what the report says.
    #[test]
    fn guarded_configs_load_with_a_key_two_limits_and_their_backend() {
        use loom_gateway::config::LoomConfig;
        let addr = |text: &str| text.parse::<SocketAddr>().unwrap();
        let (listen, admin, upstream) =
            (addr("127.0.0.1:8001"), addr("127.0.0.1:8002"), addr("127.0.0.1:9001"));
        let no_env = |_: &str| None;
        let plain = LoomConfig::from_yaml_str(&config(listen, admin, upstream, Guard::Off), &no_env).unwrap();
        assert!(!plain.ai_gateway.auth.enabled && plain.ai_gateway.rate_limits.is_empty());
        assert!(!plain.ai_gateway.checks.as_ref().expect("checks turned off").injection.enabled);
        assert!(!plain.ai_gateway.cache.enabled);

        // The cache on, in memory, and nothing else but what plain Loom has.
        let cached =
            LoomConfig::from_yaml_str(&config(listen, admin, upstream, Guard::Cache), &no_env).unwrap();
        assert!(cached.ai_gateway.cache.enabled && !cached.ai_gateway.cache.semantic.enabled);
        assert_eq!(cached.ai_gateway.state.backend, loom_guard::Backend::Memory);
        assert!(!cached.ai_gateway.auth.enabled && cached.ai_gateway.rate_limits.is_empty());
        assert!(!cached.ai_gateway.checks.as_ref().expect("checks turned off").injection.enabled);

        // The default checks: no `checks` block, so the built-in one.
        let checked =
            LoomConfig::from_yaml_str(&config(listen, admin, upstream, Guard::Checks), &no_env).unwrap();
        assert!(checked.ai_gateway.checks.is_none());
        assert!(!checked.ai_gateway.auth.enabled && checked.ai_gateway.rate_limits.is_empty());

        let memory =
            LoomConfig::from_yaml_str(&config(listen, admin, upstream, Guard::Memory), &no_env).unwrap();
        let ai = &memory.ai_gateway;
        assert!(ai.auth.enabled);
        assert_eq!(ai.auth.keys.len(), 1);
        assert_eq!(ai.auth.keys[0].key.as_ref().map(|key| key.expose()), Some(API_KEY));
        let rates: Vec<(Option<u64>, Option<u64>)> =
            ai.rate_limits.iter().map(|limit| (limit.requests_per_second, limit.tokens_per_minute)).collect();
        assert_eq!(rates, [(Some(GUARD_REQUESTS_PER_SECOND), None), (None, Some(GUARD_TOKENS_PER_MINUTE))]);
        assert_eq!(ai.state.backend, loom_guard::Backend::Memory);

        let redis = config(listen, admin, upstream, Guard::Redis(addr("127.0.0.1:6390")));
        let redis = LoomConfig::from_yaml_str(&redis, &no_env).unwrap();
        assert_eq!(redis.ai_gateway.state.backend, loom_guard::Backend::Redis);
        assert_eq!(
            redis.ai_gateway.state.url.as_ref().map(|url| url.expose()),
            Some("redis://127.0.0.1:6390/0")
        );
        assert_eq!(redis.ai_gateway.rate_limits, memory.ai_gateway.rate_limits);
    }
}
