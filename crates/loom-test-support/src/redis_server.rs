//! A private redis-server per test: free 127.0.0.1 port, temp dir, no persistence, killed on drop.
//!
//! The binary is `TEST_REDIS_SERVER`, or `redis-server` on PATH. A missing binary fails the
//! test (it never skips): Redis support is part of what is tested. A TLS-only server
//! ([`RedisServer::start_tls`]) also needs the `openssl` command, which makes its certificates.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running redis-server, stopped when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    /// Whether it speaks only TLS (certificates in `dir`, see [`RedisServer::start_tls`]).
    tls: bool,
}

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_on_free_port(false)
    }

    /// Starts a TLS-only server on a free port, its certificate (for `127.0.0.1` and
    /// `localhost`) signed by a CA made for it alone: [`RedisServer::ca_certificate`].
    pub fn start_tls() -> Self {
        Self::start_on_free_port(true)
    }

    fn start_on_free_port(tls: bool) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("temp dir for redis-server");
            if tls {
                make_certificates(dir.path());
            }
            let mut server = RedisServer { child: None, port, dir, tls };
            if server.launch() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// `redis://127.0.0.1:<port>/`, or `rediss://127.0.0.1:<port>/` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// The PEM file of the CA that signed a TLS server's certificate (no file for a plain one).
    pub fn ca_certificate(&self) -> PathBuf {
        self.dir.path().join(CA_CERTIFICATE)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (kill and wait); [`RedisServer::restart`] brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: nothing is persisted).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.launch() {
            assert!(Instant::now() < deadline, "redis-server did not come back on port {}", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// A synchronous connection for inspecting the server in tests.
    pub fn connection(&self) -> redis::Connection {
        self.client().and_then(|client| client.get_connection()).expect("connect to test redis")
    }

    /// A client for [`RedisServer::url`] that trusts the server's own CA when it is TLS.
    fn client(&self) -> redis::RedisResult<redis::Client> {
        if !self.tls {
            return redis::Client::open(self.url());
        }
        let root_cert = std::fs::read(self.ca_certificate()).expect("read the test CA certificate");
        redis::Client::build_with_tls(
            self.url(),
            redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) },
        )
    }

    /// Spawns the binary and waits until it answers PING; false when it exited (port taken).
    fn launch(&mut self) -> bool {
        let binary =
            std::env::var_os("TEST_REDIS_SERVER").map(PathBuf::from).unwrap_or_else(|| "redis-server".into());
        let port = self.port.to_string();
        let listen: &[&str] = if self.tls {
            &[
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-cert-file",
                SERVER_CERTIFICATE,
                "--tls-key-file",
                SERVER_KEY,
                "--tls-ca-cert-file",
                CA_CERTIFICATE,
                "--tls-auth-clients",
                "no",
            ]
        } else {
            &["--port", &port]
        };
        let mut child = Command::new(&binary)
            .args(listen)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            // The certificate paths above are relative to it.
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {} ({error}): install redis-server or set TEST_REDIS_SERVER",
                    binary.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            let answered = self
                .client()
                .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
            if answered.is_ok() {
                self.child = Some(child);
                return true;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("redis-server on port {} did not answer within 10s", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server would not die of SIGKILL any less, but thaw it for a clean exit.
        if self.child.is_some() {
            self.resume();
        }
        self.stop();
    }
}

/// Files of [`make_certificates`], in the server's directory.
const CA_CERTIFICATE: &str = "ca.pem";
const SERVER_CERTIFICATE: &str = "server.pem";
const SERVER_KEY: &str = "server.key";

/// Writes a CA and a server certificate for `127.0.0.1` and `localhost` signed by it
/// (P-256 keys, valid two days) into `dir`, with the `openssl` command.
fn make_certificates(dir: &Path) {
    let extensions = "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
                      basicConstraints=critical,CA:FALSE\n\
                      extendedKeyUsage=serverAuth\n";
    std::fs::write(dir.join("server.ext"), extensions).expect("write the certificate extensions");
    let p256 = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(
        dir,
        &format!("req -x509 {p256} -days 2 -keyout ca.key -out {CA_CERTIFICATE} -subj /CN=Loom-test-CA"),
    );
    openssl(dir, &format!("req {p256} -keyout {SERVER_KEY} -out server.csr -subj /CN=localhost"));
    openssl(
        dir,
        &format!(
            "x509 -req -in server.csr -CA {CA_CERTIFICATE} -CAkey ca.key -CAcreateserial -days 2 \
             -extfile server.ext -out {SERVER_CERTIFICATE}"
        ),
    );
}

/// Runs `openssl <arguments>` (split on whitespace) in `dir`; fails the test on error.
fn openssl(dir: &Path, arguments: &str) {
    let output =
        Command::new("openssl").args(arguments.split_whitespace()).current_dir(dir).output().unwrap_or_else(
            |error| panic!("cannot run openssl ({error}): install it (Debian: apt-get install openssl)"),
        );
    assert!(
        output.status.success(),
        "openssl {arguments} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
