//! Helpers for the end-to-end tests: a gateway on loopback and a plain HTTP client.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use loom_gateway::config::LoomConfig;
use loom_gateway::{Gateway, RunningGateway};
use serde_json::Value;
use tokio::net::TcpListener;

/// A gateway serving on ephemeral loopback ports.
pub struct TestGateway {
    /// The running servers.
    pub running: RunningGateway,
    /// Front-door address.
    pub addr: SocketAddr,
    /// Admin address.
    pub admin_addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A whole response.
#[derive(Debug)]
pub struct TestResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!("body is not JSON ({error}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Config for one `openai` provider at `base_url` with key `sk-test`, plus `extra` YAML
/// lines appended under `ai_gateway:` (indented by the caller with two spaces).
pub fn openai_config(base_url: &str, provider_extra: &str, gateway_extra: &str) -> String {
    format!(
        "ai_gateway:\n  providers:\n    - name: openai\n      type: openai\n      api_key: sk-test-key-0123456789\n      base_url: {base_url}\n{provider_extra}{gateway_extra}"
    )
}

impl TestGateway {
    /// Starts a gateway from YAML (no environment variables available).
    pub async fn start(yaml: &str) -> TestGateway {
        let config =
            LoomConfig::from_yaml_str(yaml, &|_| None).unwrap_or_else(|error| panic!("config: {error}"));
        let gateway = Gateway::from_config(&config).unwrap_or_else(|error| panic!("gateway: {error}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let addr = listener.local_addr().expect("addr");
        let admin_addr = admin.local_addr().expect("admin addr");
        let running = gateway.start_on(listener, Some(admin));
        TestGateway { running, addr, admin_addr, client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// Full URL of a front-door path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request and returns the response with its body still streaming.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> http::Response<Incoming> {
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).expect("request");
        tokio::time::timeout(Duration::from_secs(20), self.client.request(request))
            .await
            .expect("gateway answered in time")
            .expect("request sent")
    }

    /// POSTs JSON to a front-door path and reads the whole answer.
    pub async fn post(&self, path: &str, body: &str) -> TestResponse {
        self.post_with(path, &[("content-type", "application/json")], body).await
    }

    /// POSTs with headers and reads the whole answer.
    pub async fn post_with(&self, path: &str, headers: &[(&str, &str)], body: &str) -> TestResponse {
        let response = self.send(Method::POST, &self.url(path), headers, body.to_owned()).await;
        read_whole(response).await
    }

    /// GETs a front-door path.
    pub async fn get(&self, path: &str) -> TestResponse {
        read_whole(self.send(Method::GET, &self.url(path), &[], Bytes::new()).await).await
    }

    /// GETs an admin path.
    pub async fn admin_get(&self, path: &str) -> TestResponse {
        let url = format!("http://{}{path}", self.admin_addr);
        read_whole(self.send(Method::GET, &url, &[], Bytes::new()).await).await
    }
}

/// Reads a whole response.
pub async fn read_whole(response: http::Response<Incoming>) -> TestResponse {
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(20), body.collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    TestResponse { status: parts.status, headers: parts.headers, body }
}

/// Reads the next data frame of a streaming body, waiting at most `wait`.
pub async fn next_frame(body: &mut Incoming, wait: Duration) -> Option<Bytes> {
    loop {
        let frame = tokio::time::timeout(wait, body.frame()).await.expect("frame in time")?;
        if let Ok(data) = frame.expect("frame").into_data() {
            return Some(data);
        }
    }
}

/// The `data:` payloads of an SSE text, in order.
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            event.lines().filter_map(|line| line.strip_prefix("data: ")).collect::<Vec<_>>().join("\n")
        })
        .collect()
}

/// The JSON of each `data:` payload of an SSE body, the `[DONE]` terminator left out.
pub fn sse_json(text: &str) -> Vec<Value> {
    sse_data(text)
        .iter()
        .filter(|data| data.as_str() != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap_or_else(|error| panic!("{error}: {data}")))
        .collect()
}

/// A loopback address nobody listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// Running the official Python SDK scripts of `tests/python/`.
pub mod process {
    use std::io::Read;
    use std::path::{Path, PathBuf};
    use std::process::{Command, ExitStatus, Stdio};
    use std::time::{Duration, Instant};

    /// The workspace root.
    pub fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
    }

    /// `$TEST_PYTHON`, else the workspace's `.venv`, else `python3` from `PATH`.
    pub fn python() -> PathBuf {
        if let Some(python) = std::env::var_os("TEST_PYTHON").filter(|value| !value.is_empty()) {
            return PathBuf::from(python);
        }
        let venv = workspace_root().join(".venv/bin/python");
        if venv.exists() { venv } else { PathBuf::from("python3") }
    }

    /// `python tests/python/{script} --base-url URL --time-limit S`, where the script gives up
    /// 30 s before `deadline`; no SDK setting may come from the environment.
    pub fn sdk_script(python: &Path, script: &str, base_url: &str, deadline: Duration) -> Command {
        let mut command = Command::new(python);
        command
            .arg(workspace_root().join("tests/python").join(script))
            .arg("--base-url")
            .arg(base_url)
            .arg("--time-limit")
            .arg(deadline.as_secs().saturating_sub(30).max(1).to_string())
            .env("NO_PROXY", "*")
            .env("PYTHONUNBUFFERED", "1");
        for variable in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "ANTHROPIC_BASE_URL",
            "ANTHROPIC_CUSTOM_HEADERS",
            "ANTHROPIC_PROFILE",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
        ] {
            command.env_remove(variable);
        }
        command
    }

    /// Runs a check script (`command`) off the runtime and returns its standard output;
    /// panics with everything it printed unless it exits 0 having printed
    /// `all {checks} checks passed`.
    pub async fn run_check_script(command: Command, deadline: Duration, checks: usize) -> String {
        let description = format!("{command:?}");
        let finished = tokio::task::spawn_blocking(move || run(command, deadline)).await.expect("runner");
        let summary = format!("all {checks} checks passed");
        assert!(
            finished.status.success() && finished.stdout.contains(&summary),
            "{description} exited with {} (expected \"{summary}\")\n--- stdout ---\n{}\n--- stderr ---\n{}",
            finished.status,
            finished.stdout,
            finished.stderr
        );
        println!("{}", finished.stdout);
        finished.stdout
    }

    /// How a finished command ended, with its output.
    pub struct Finished {
        /// Exit status.
        pub status: ExitStatus,
        /// Everything it printed on stdout.
        pub stdout: String,
        /// Everything it printed on stderr.
        pub stderr: String,
    }

    /// Runs `command` to the end, killing it if it outlives `deadline`.
    pub fn run(mut command: Command, deadline: Duration) -> Finished {
        let description = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {description}: {error}"));
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_string(&mut text);
                }
                text
            })
        };
        let stdout = drain(child.stdout.take().map(|pipe| Box::new(pipe) as Box<dyn Read + Send>));
        let stderr = drain(child.stderr.take().map(|pipe| Box::new(pipe) as Box<dyn Read + Send>));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the child") {
                break status;
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{description} did not finish within {deadline:?}\nstdout:\n{}\nstderr:\n{}",
                    stdout.join().unwrap_or_default(),
                    stderr.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Finished {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }
}

/// A fresh temporary directory (removed when the guard drops) and a usage-ledger path in it.
pub fn ledger_dir(prefix: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().expect("temp dir");
    let path = dir.path().join("usage.db");
    (dir, path)
}

/// The ledger's `usage` rows as `columns` (an SQL select list), in the order they were
/// recorded, once there are at least `n`, or whatever there is after 5 seconds (the
/// recorder writes in batches).
pub async fn ledger_rows<T>(ledger: &std::path::Path, columns: &str, n: usize) -> Vec<T>
where
    T: for<'row> TryFrom<&'row rusqlite::Row<'row>, Error = rusqlite::Error>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let rows: Vec<T> = if ledger.exists() {
            let connection = rusqlite::Connection::open(ledger).expect("ledger opens");
            let mut statement =
                connection.prepare(&format!("SELECT {columns} FROM usage ORDER BY rowid")).expect("query");
            statement
                .query_map([], |row| T::try_from(row))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("decode")
        } else {
            Vec::new()
        };
        if rows.len() >= n || tokio::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A primary and a backup provider, each an `openai` provider at its own mock upstream,
/// routed by priority (primary first).
pub struct Pair {
    /// The preferred provider's upstream (`primary`, priority 1).
    pub primary: loom_test_support::MockUpstream,
    /// The other one's (`backup`, priority 2).
    pub backup: loom_test_support::MockUpstream,
    /// The gateway over both.
    pub gateway: TestGateway,
}

impl Pair {
    /// The gateway over `primary` and `backup` with failover on or off (1 ms backoff), and
    /// `extra` lines under `ai_gateway:`.
    pub async fn start(failover: bool, extra: &str) -> Pair {
        use loom_test_support::MockUpstream;
        let (primary, backup) = (MockUpstream::start().await, MockUpstream::start().await);
        let provider = |name: &str, mock: &MockUpstream| {
            format!(
                "    - name: {name}\n      type: openai\n      api_key: sk-{name}\n      base_url: {}\n",
                mock.base_url()
            )
        };
        let yaml = format!(
            "ai_gateway:\n  providers:\n{}{}  routing:\n    strategy: priority\n    failover:\n      enabled: {failover}\n      backoff: 1ms\n    providers:\n      - {{name: primary, priority: 1}}\n      - {{name: backup, priority: 2}}\n{extra}",
            provider("primary", &primary),
            provider("backup", &backup),
        );
        let gateway = TestGateway::start(&yaml).await;
        Pair { primary, backup, gateway }
    }

    /// The `/ai/providers` entry of `name`.
    pub async fn provider_state(&self, name: &str) -> Value {
        let list = self.gateway.admin_get("/ai/providers").await.json();
        let entries = list["providers"].as_array().cloned().unwrap_or_default();
        entries.into_iter().find(|entry| entry["name"] == name).unwrap_or(Value::Null)
    }

    /// How many requests (primary, backup) received.
    pub fn requests(&self) -> (usize, usize) {
        (self.primary.request_count(), self.backup.request_count())
    }
}
