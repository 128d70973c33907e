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

/// The Loom YAML config: one `openai` provider pointing at the mock upstream.
pub fn config(listen: SocketAddr, admin: SocketAddr, upstream: SocketAddr) -> String {
    format!(
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
    )
}

/// The default `loom` binary: the one next to this executable.
pub fn default_bin() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| io::Error::other("current executable has no parent directory"))?;
    Ok(dir.join("loom"))
}

/// Start `loom_bin` proxying to `upstream` on a free port and wait until it listens.
pub fn spawn(loom_bin: &Path, upstream: SocketAddr) -> io::Result<LoomChild> {
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
    std::fs::write(&conf, config(addr, admin, upstream))?;
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
        );
        assert!(yaml.contains("  listen: 127.0.0.1:8001\n"));
        assert!(yaml.contains("admin:\n  listen: 127.0.0.1:8002\n"));
        assert!(yaml.contains("level: warn"));
        assert!(yaml.contains("type: openai"));
        assert!(yaml.contains("api_key: sk-bench"));
        assert!(yaml.contains("base_url: http://127.0.0.1:9001/v1"));
    }
}
