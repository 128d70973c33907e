//! A throwaway redis-server for the guarded Loom on Redis.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::child::{self, ChildGuard};

/// How to get redis-server when it is missing.
pub const INSTALL_HINT: &str = "install it with `apt-get install -y redis-server`, or pass --redis-bin";

/// redis-server running in a child process: no persistence, loopback only.
#[derive(Debug)]
pub struct RedisChild {
    /// The server process (stopped on drop).
    pub guard: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// `bin` if it runs (`--version` succeeds).
pub fn find(bin: &Path) -> Option<PathBuf> {
    let runs = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    runs.then(|| bin.to_owned())
}

/// The arguments of a redis-server on `port` that keeps nothing on disk.
pub fn args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        "",
        "--loglevel",
        "warning",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect()
}

/// Start `bin` on a free port and wait until it accepts connections.
pub fn spawn(bin: &Path) -> io::Result<RedisChild> {
    let addr = child::free_port()?;
    let mut command = Command::new(bin);
    command.args(args(addr.port())).stdin(Stdio::null()).stdout(Stdio::null());
    let mut guard = ChildGuard::spawn("redis-server", command)?;
    guard.wait_listening(addr, Duration::from_secs(10))?;
    Ok(RedisChild { guard, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_persists_nothing_and_listens_on_loopback() {
        let args = args(6390);
        let pairs: Vec<(&str, &str)> =
            args.chunks(2).map(|pair| (pair[0].as_str(), pair[1].as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("--port", "6390"),
                ("--bind", "127.0.0.1"),
                ("--save", ""),
                ("--appendonly", "no"),
                ("--logfile", ""),
                ("--loglevel", "warning")
            ]
        );
    }

    #[test]
    fn a_missing_binary_is_not_found() {
        assert_eq!(find(Path::new("/nonexistent/redis-server")), None);
        assert_eq!(find(Path::new("loom-bench-no-such-redis-server")), None);
    }
}
