//! The baseline: nginx as a bare reverse proxy in front of the mock upstream.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::child::{self, ChildGuard};

/// How to get nginx when it is missing.
pub const INSTALL_HINT: &str =
    "install it with `apt-get install -y nginx-light` (or `nginx`), or pass --skip-nginx";

/// nginx running in a child process with a generated config in a temp dir.
#[derive(Debug)]
pub struct NginxChild {
    /// The master process (its group, workers included, is stopped on drop).
    pub guard: ChildGuard,
    /// Where nginx listens.
    pub addr: SocketAddr,
    /// The worker processes' ids.
    pub workers: Vec<u32>,
    /// Config, pid file, logs and temp paths; removed on drop, after the guard.
    _dir: TempDir,
}

/// The nginx.conf for a keep-alive `proxy_pass` from `listen` to `upstream`, with
/// every path nginx writes to under `dir`.
pub fn config(dir: &Path, listen: SocketAddr, upstream: SocketAddr, as_root: bool) -> String {
    let dir = dir.display();
    // As root, nginx would switch its workers to `nobody`; keep them as the caller.
    let user = if as_root { "user root root;\n" } else { "" };
    format!(
        "\
{user}worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream mock {{
        server {upstream};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
        }}
    }}
}}
"
    )
}

/// Whether this process runs as root (nginx's workers would then switch users).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Where Debian installs nginx, outside a normal user's PATH.
const SBIN_NGINX: &str = "/usr/sbin/nginx";

/// `nginx_bin` if it runs, else Debian's `/usr/sbin/nginx` for a plain `nginx` not on PATH.
pub fn find(nginx_bin: &Path) -> Option<PathBuf> {
    let runs = |bin: &Path| {
        Command::new(bin)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if runs(nginx_bin) {
        return Some(nginx_bin.to_owned());
    }
    let sbin = Path::new(SBIN_NGINX);
    (nginx_bin == Path::new("nginx") && runs(sbin)).then(|| sbin.to_owned())
}

/// Start nginx proxying to `upstream` on a free port and wait until it listens.
pub fn spawn(nginx_bin: &Path, upstream: SocketAddr) -> io::Result<NginxChild> {
    let dir = tempfile::Builder::new().prefix("loom-bench-nginx-").tempdir()?;
    let addr = child::free_port()?;
    let conf: PathBuf = dir.path().join("nginx.conf");
    std::fs::write(&conf, config(dir.path(), addr, upstream, running_as_root()))?;
    let mut command = Command::new(nginx_bin);
    command
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .args(["-g", "daemon off; master_process on;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut guard = ChildGuard::spawn("nginx", command)?;
    if let Err(err) = guard.wait_listening(addr, Duration::from_secs(10)) {
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        return Err(io::Error::other(format!("{err}\nnginx error.log:\n{log}")));
    }
    let workers = wait_for_workers(guard.pid(), Duration::from_secs(3));
    Ok(NginxChild { guard, addr, workers, _dir: dir })
}

/// The master's children once there is one per CPU (`worker_processes auto`), or
/// whatever there is after `timeout`: the master listens before it forks its workers.
fn wait_for_workers(master: u32, timeout: Duration) -> Vec<u32> {
    let expected = std::thread::available_parallelism().map_or(1, usize::from);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let workers = crate::procfs::children(master).unwrap_or_default();
        if workers.len() >= expected || std::time::Instant::now() >= deadline {
            return workers;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_proxies_with_upstream_keepalive_and_no_buffering() {
        let conf = config(
            Path::new("/tmp/x"),
            "127.0.0.1:8001".parse().unwrap(),
            "127.0.0.1:9001".parse().unwrap(),
            false,
        );
        for line in [
            "worker_processes auto;",
            "pid /tmp/x/nginx.pid;",
            "access_log off;",
            "server 127.0.0.1:9001;",
            "keepalive 256;",
            "listen 127.0.0.1:8001;",
            "proxy_pass http://mock;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_buffering off;",
        ] {
            assert!(conf.contains(line), "missing {line:?} in:\n{conf}");
        }
        assert!(!conf.contains("user "));
        assert_eq!(conf.matches('{').count(), conf.matches('}').count());
    }

    #[test]
    fn config_keeps_workers_as_root_when_run_as_root() {
        let conf = config(
            Path::new("/tmp/x"),
            "127.0.0.1:8001".parse().unwrap(),
            "127.0.0.1:9001".parse().unwrap(),
            true,
        );
        assert!(conf.starts_with("user root root;\n"));
    }
}
