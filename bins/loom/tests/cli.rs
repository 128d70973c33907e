//! The `loom` binary as a user runs it: `loom check`, serving from a config file,
//! and graceful shutdown on SIGTERM.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::time::Instant;

const LOOM: &str = env!("CARGO_BIN_EXE_loom");
const QUICKSTART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart.yaml");

/// How long any single wait in these tests may take before it counts as a failure.
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique =
            format!("loom-cli-{}-{}-{name}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let path = std::env::temp_dir().join(unique);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn write(&self, file: &str, contents: &str) -> PathBuf {
        let path = self.0.join(file);
        fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `loom check --config PATH` with `LOOM_*` variables cleared.
fn loom_check(config: &Path) -> Output {
    loom_with(&["check".as_ref(), "--config".as_ref(), config.as_os_str()])
}

/// Runs `loom ARGS` with `LOOM_*` variables cleared.
fn loom_with(args: &[&std::ffi::OsStr]) -> Output {
    let mut command = Command::new(LOOM);
    command.args(args).stdin(Stdio::null());
    clear_loom_env(&mut command);
    command.output().expect("run loom")
}

/// Removes every `LOOM_*` variable, so the developer's environment cannot override keys.
fn clear_loom_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOOM_") {
            command.env_remove(name);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `yaml` with the single occurrence of `from` replaced by `to`.
fn replace_once(yaml: &str, from: &str, to: &str) -> String {
    assert_eq!(yaml.matches(from).count(), 1, "`{from}` appears exactly once in the quickstart");
    yaml.replacen(from, to, 1)
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// A `loom --config FILE` child process, killed on drop so a failed test leaks nothing.
struct Loom {
    child: Child,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    dir: TempDir,
}

impl Loom {
    /// Starts `loom` on the quickstart config with free loopback ports and `edits` applied
    /// (`(from, to)` pairs, each occurring once), and waits until `/health` answers.
    /// The fields of the JSON log line of the request `line` names (e.g. `POST /v1/...`),
    /// once it is written (within 10 s).
    async fn request_log_fields(&self, line: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.logs().lines().find(|logged| logged.contains(line)).map(str::to_owned);
            if let Some(found) = found {
                let entry: Value =
                    serde_json::from_str(&found).unwrap_or_else(|error| panic!("{error}: {found}"));
                return entry["fields"].clone();
            }
            assert!(Instant::now() < deadline, "no request line in:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn start(name: &str, edits: &[(&str, &str)]) -> Loom {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let admin_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut yaml = fs::read_to_string(QUICKSTART).expect("read the quickstart");
        yaml = replace_once(&yaml, "listen: 0.0.0.0:8080", &format!("listen: {addr}"));
        yaml = replace_once(&yaml, "listen: 127.0.0.1:9091", &format!("listen: {admin_addr}"));
        for (from, to) in edits {
            yaml = replace_once(&yaml, from, to);
        }
        let dir = TempDir::new(name);
        let config = dir.write("loom.yaml", &yaml);
        let log = fs::File::create(dir.0.join("loom.log")).expect("create log file");
        let mut command = Command::new(LOOM);
        command
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            // Logs go to a file: they must be plain without anyone asking (no NO_COLOR).
            .env_remove("NO_COLOR");
        clear_loom_env(&mut command);
        let child = command.spawn().expect("start loom");
        let loom =
            Loom { child, addr, admin_addr, client: Client::builder(TokioExecutor::new()).build_http(), dir };
        loom.wait_healthy().await;
        loom
    }

    /// What the process logged so far (stdout and stderr).
    fn logs(&self) -> String {
        fs::read_to_string(self.dir.0.join("loom.log")).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + WAIT;
        let url = format!("http://{}/health", self.admin_addr);
        loop {
            let request = Request::get(&url).body(Full::new(Bytes::new())).expect("request");
            if let Ok(Ok(response)) =
                tokio::time::timeout(Duration::from_secs(2), self.client.request(request)).await
            {
                let status = response.status();
                let body = response.into_body().collect().await.expect("health body").to_bytes();
                assert_eq!(status, StatusCode::OK, "{}", text(&body));
                assert_eq!(body, r#"{"status":"ok"}"#);
                return;
            }
            assert!(Instant::now() < deadline, "loom did not become healthy in time; logs:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends a request to the front door and returns the response with its body still open.
    async fn send(&self, method: Method, path: &str, body: String) -> http::Response<Incoming> {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        tokio::time::timeout(WAIT, self.client.request(request))
            .await
            .expect("loom answered in time")
            .expect("request sent")
    }

    /// GETs an admin path and reads the whole body as text.
    async fn admin_get(&self, path: &str) -> (StatusCode, String) {
        let request = Request::get(format!("http://{}{path}", self.admin_addr))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = tokio::time::timeout(WAIT, self.client.request(request))
            .await
            .expect("admin answered in time")
            .expect("admin request sent");
        let status = response.status();
        (status, text(&read_all(response.into_body()).await))
    }

    /// Waits for the process to exit by itself, at most `wait`.
    async fn wait_exit(&mut self, wait: Duration) -> ExitStatus {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the loom process") {
                return status;
            }
            assert!(Instant::now() < deadline, "loom did not exit within {wait:?}; logs:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Loom {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn read_all(body: Incoming) -> Bytes {
    tokio::time::timeout(WAIT, body.collect()).await.expect("body in time").expect("body").to_bytes()
}

/// The next data frame of a streaming body; `None` at the end.
async fn next_frame(body: &mut Incoming) -> Option<Bytes> {
    loop {
        let frame = tokio::time::timeout(WAIT, body.frame()).await.expect("frame in time")?;
        if let Ok(data) = frame.expect("frame").into_data() {
            return Some(data);
        }
    }
}

/// The `data:` payloads of complete SSE events in `text`, in order.
fn sse_data(text: &str) -> Vec<String> {
    assert!(text.is_empty() || text.ends_with("\n\n"), "events end with a blank line: {text:?}");
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let lines: Vec<&str> = event.lines().collect();
            assert_eq!(lines.len(), 1, "one `data:` line per event: {event:?}");
            lines[0].strip_prefix("data: ").unwrap_or_else(|| panic!("not a data line: {event:?}")).to_owned()
        })
        .collect()
}

/// The mock provider's answer to `said`, and the pieces it streams it in.
fn mock_reply(said: &str) -> (String, Vec<String>) {
    let reply = format!("Hello from Loom's mock provider! You said: {said}");
    let mut pieces = vec![String::new()];
    for (index, word) in reply.split(' ').enumerate() {
        pieces.push(if index == 0 { word.to_owned() } else { format!(" {word}") });
    }
    (reply, pieces)
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Checks streamed chunks: the content pieces, one `stop` at the end, then `[DONE]`.
fn assert_mock_stream(events: &[String], model: &str, said: &str) {
    let (_, pieces) = mock_reply(said);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{events:?}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|data| serde_json::from_str(data).unwrap_or_else(|error| panic!("{error}: {data}")))
        .collect();
    let id = chunks[0]["id"].as_str().expect("chunk id").to_owned();
    assert!(id.starts_with("chatcmpl-mock-"), "{id}");
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        assert_eq!(chunk["model"], model, "{chunk}");
        assert_eq!(chunk["id"], id.as_str(), "the same id on every chunk");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    let content: Vec<&str> =
        chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, pieces);
    let finish: Vec<Value> =
        chunks.iter().map(|chunk| chunk["choices"][0]["finish_reason"].clone()).collect();
    let mut expected_finish = vec![Value::Null; pieces.len()];
    expected_finish.push(json!("stop"));
    assert_eq!(finish, expected_finish);
    assert_eq!(chunks.len(), pieces.len() + 1);
}

fn chat_body(model: &str, said: &str, stream: bool) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": said}], "stream": stream}).to_string()
}

// ---------------------------------------------------------------------------------------
// loom check
// ---------------------------------------------------------------------------------------

#[test]
fn check_accepts_the_quickstart_and_prints_its_summary() {
    let output = loom_check(Path::new(QUICKSTART));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(
            &"server: listen 0.0.0.0:8080, max body 10485760 bytes, request timeout 10m, shutdown timeout 30s"
        ),
        "{stdout}"
    );
    for expected in [
        "admin: listen 127.0.0.1:9091",
        "logging: level info, format text",
        "ai_gateway: enabled",
        "  providers (1):",
        "    - mock (type mock); api key none; models: any",
        "  routing: strategy priority",
        "    - mock priority 1",
        "  streaming: enabled, flush interval 0s",
        "  - ai /v1/* (ai_gateway)",
    ] {
        assert!(lines.contains(&expected), "no line `{expected}` in:\n{stdout}");
    }
    assert_eq!(lines.last(), Some(&"config OK"), "{stdout}");
    assert!(!stdout.contains("note:"), "the quickstart uses no inactive feature:\n{stdout}");
}

#[test]
fn check_names_an_unknown_key_by_its_path() {
    let dir = TempDir::new("unknown-key");
    let config = dir.write(
        "loom.yaml",
        "ai_gateway:\n  providers:\n    - name: mock\n      type: mock\n      mock:\n        chunk_dealy: 5ms\n",
    );
    let output = loom_check(&config);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&output.stdout), "");
    let prefix = format!(
        "loom: invalid config {}: ai_gateway.providers[0].mock.chunk_dealy: unknown field `chunk_dealy`",
        config.display()
    );
    assert!(stderr.starts_with(&prefix), "expected `{prefix}...`, got:\n{stderr}");
}

#[test]
fn check_names_a_missing_environment_variable() {
    let dir = TempDir::new("missing-var");
    let config = dir.write(
        "loom.yaml",
        "ai_gateway:\n  providers:\n    - name: openai\n      type: openai\n      api_key: ${LOOM_CLI_TEST_UNSET_KEY}\n",
    );
    let output = loom_check(&config);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&output.stdout), "");
    assert_eq!(
        stderr,
        format!(
            "loom: invalid config {}: ai_gateway.providers[0].api_key: environment variable \
             LOOM_CLI_TEST_UNSET_KEY is not set\n",
            config.display()
        )
    );
}

#[test]
fn check_names_a_missing_file() {
    let dir = TempDir::new("missing-file");
    let missing = dir.0.join("nowhere").join("loom.yaml");
    let output = loom_check(&missing);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&output.stdout), "");
    let prefix = format!(
        "loom: invalid config {path}: cannot read config file {path}: No such file or directory",
        path = missing.display()
    );
    assert!(stderr.starts_with(&prefix), "expected `{prefix}...`, got:\n{stderr}");
}

#[test]
fn check_lays_a_fragment_over_a_base_and_prints_the_merged_summary() {
    let dir = TempDir::new("layers");
    let fragment = dir.write(
        "fragment.yaml",
        "server:\n  listen: 127.0.0.1:7000\nai_gateway:\n  routing:\n    strategy: round_robin\n",
    );
    let base = Path::new(QUICKSTART);
    let expected_first =
        "server: listen 127.0.0.1:7000, max body 10485760 bytes, request timeout 10m, shutdown timeout 30s";
    // `--config` may come before the subcommand, after it, or both: all count, in order.
    for args in [
        vec!["check".as_ref(), "--config".as_ref(), base.as_os_str(), "-c".as_ref(), fragment.as_os_str()],
        vec![
            "--config".as_ref(),
            base.as_os_str(),
            "check".as_ref(),
            "--config".as_ref(),
            fragment.as_os_str(),
        ],
    ] {
        let output = loom_with(&args);
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}\n{stdout}{}", text(&output.stderr));
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.first(), Some(&expected_first), "{stdout}");
        for expected in
            ["    - mock (type mock); api key none; models: any", "  routing: strategy round_robin"]
        {
            assert!(lines.contains(&expected), "no line `{expected}` in:\n{stdout}");
        }
        assert_eq!(lines.last(), Some(&"config OK"), "{stdout}");
    }
    // The other order: the base's listen address wins.
    let output =
        loom_with(&["check".as_ref(), "-c".as_ref(), fragment.as_os_str(), "-c".as_ref(), base.as_os_str()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("server: listen 0.0.0.0:8080,"), "{}", text(&output.stdout));
}

#[test]
fn check_and_serve_list_every_broken_rule_naming_its_file() {
    let dir = TempDir::new("many-errors");
    let base = dir.write("base.yaml", &mock_config("  workers: 5000\n", ""));
    let fragment = dir.write(
        "fragment.yaml",
        "logging:\n  level: \"\"\nai_gateway:\n  routing:\n    providers:\n      - name: nope\n",
    );
    let output =
        loom_with(&["check".as_ref(), "-c".as_ref(), base.as_os_str(), "-c".as_ref(), fragment.as_os_str()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&output.stdout), "");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    let workers =
        format!("loom: invalid config {}: server.workers: 5000 is more than the limit of ", base.display());
    assert!(lines[0].starts_with(&workers), "{stderr}");
    assert_eq!(
        lines[1..],
        [
            format!(
                "loom: invalid config {}: logging.level: must not be empty (e.g. `info`)",
                fragment.display()
            ),
            format!(
                "loom: invalid config {}: ai_gateway.routing.providers[0].name: unknown provider \"nope\"; defined: mock",
                fragment.display()
            ),
        ]
    );

    // Serving refuses to start, with the same lines.
    let mut command = Command::new(LOOM);
    command.arg("-c").arg(&base).arg("-c").arg(&fragment).stdin(Stdio::null());
    clear_loom_env(&mut command);
    let served = command.output().expect("run loom");
    assert_eq!(served.status.code(), Some(2));
    assert_eq!(text(&served.stderr), stderr);

    // A parse error stops at the first, naming its file.
    let typo = dir.write("typo.yaml", "server:\n  lisen: 1\n");
    let output =
        loom_with(&["check".as_ref(), "-c".as_ref(), base.as_os_str(), "-c".as_ref(), typo.as_os_str()]);
    let prefix = format!("loom: invalid config {}: server.lisen: unknown field `lisen`", typo.display());
    assert!(text(&output.stderr).starts_with(&prefix), "{}", text(&output.stderr));
    assert_eq!(text(&output.stderr).lines().count(), 1);
}

/// Runs `loom --config PATH` (serve) with `LOOM_*` variables cleared; for configs that
/// must be refused before anything listens.
fn loom_serve_refused(config: &Path) -> Output {
    let mut command = Command::new(LOOM);
    command.arg("--config").arg(config).stdin(Stdio::null()).env_remove("NO_COLOR");
    clear_loom_env(&mut command);
    command.output().expect("run loom")
}

/// Makes a FIFO at `path`; false when `mkfifo` is not available here.
fn mkfifo(path: &Path) -> bool {
    Command::new("mkfifo").arg(path).status().is_ok_and(|status| status.success())
}

/// A sparse file one byte over `limit` (nothing is written, so it costs no disk).
fn file_over(path: &Path, limit: u64) {
    fs::File::create(path).and_then(|file| file.set_len(limit + 1)).expect("create a sparse file");
}

/// A mock-provider config on ephemeral loopback ports with `extra` appended under `ai_gateway:`.
fn mock_config(server: &str, extra: &str) -> String {
    format!(
        "server:\n  listen: 127.0.0.1:0\n{server}admin:\n  listen: 127.0.0.1:0\nai_gateway:\n  providers:\n    - name: mock\n      type: mock\n{extra}"
    )
}

#[test]
fn check_refuses_out_of_range_values_naming_the_key() {
    let dir = TempDir::new("ranges");
    let cases = [
        (
            mock_config("  request_timeout: 10000000000000000000s\n", ""),
            "server.request_timeout: must be at most 24h, not ",
        ),
        (mock_config("  workers: 2000\n", ""), "server.workers: 2000 is more than the limit of "),
        (
            mock_config("", "      timeouts:\n        idle: 0s\n"),
            "ai_gateway.providers[0].timeouts.idle: must be greater than 0",
        ),
    ];
    for (index, (yaml, expected)) in cases.iter().enumerate() {
        let config = dir.write(&format!("loom-{index}.yaml"), yaml);
        let output = loom_check(&config);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(text(&output.stdout), "");
        let prefix = format!("loom: invalid config {}: {expected}", config.display());
        assert!(stderr.starts_with(&prefix), "expected `{prefix}...`, got:\n{stderr}");
    }
}

#[test]
fn check_and_serve_refuse_a_config_file_that_is_no_small_regular_file() {
    let dir = TempDir::new("config-file");
    let big = dir.0.join("big.yaml");
    file_over(&big, 16 * 1024 * 1024);
    let fifo = dir.0.join("fifo.yaml");
    let mut cases = vec![
        (PathBuf::from("/dev/zero"), "not a regular file (a character device)"),
        (big, "larger than the limit of 16777216 bytes"),
    ];
    if mkfifo(&fifo) {
        cases.push((fifo, "not a regular file (a FIFO)"));
    }
    for (path, reason) in cases {
        let expected = format!(
            "loom: invalid config {path}: cannot read config file {path}: {reason}\n",
            path = path.display()
        );
        for output in [loom_check(&path), loom_serve_refused(&path)] {
            assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
            assert_eq!(text(&output.stdout), "");
            assert_eq!(text(&output.stderr), expected);
        }
    }
}

#[test]
fn check_and_serve_refuse_a_tokenizer_file_that_is_no_small_regular_file() {
    let dir = TempDir::new("tokenizer-file");
    let big = dir.0.join("big.json");
    file_over(&big, 256 * 1024 * 1024);
    let fifo = dir.0.join("fifo.json");
    let mut cases = vec![
        (PathBuf::from("/dev/zero"), "not a regular file (a character device)"),
        (big, "larger than the limit of 268435456 bytes"),
    ];
    if mkfifo(&fifo) {
        cases.push((fifo, "not a regular file (a FIFO)"));
    }
    for (index, (path, reason)) in cases.into_iter().enumerate() {
        let tokenizers =
            format!("  token_accounting:\n    tokenizers:\n      my-model: {}\n", path.display());
        let config = dir.write(&format!("loom-{index}.yaml"), &mock_config("", &tokenizers));
        let error = format!(
            "ai_gateway.token_accounting.tokenizers.my-model: cannot load tokenizer {}: {reason}",
            path.display()
        );

        let output = loom_check(&config);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
        assert_eq!(text(&output.stdout), "");
        assert_eq!(
            text(&output.stderr),
            format!("loom: config is valid but the gateway cannot be built: {error}\n")
        );

        let output = loom_serve_refused(&config);
        let logs = text(&output.stdout);
        assert_eq!(output.status.code(), Some(2), "{logs}{}", text(&output.stderr));
        let refusal = logs.lines().find(|line| line.contains("cannot build the gateway"));
        assert!(
            refusal.is_some_and(|line| line.contains(&format!("error={error}"))),
            "no `cannot build the gateway` line with `error={error}` in:\n{logs}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// loom --config: serving
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn serves_the_quickstart_whole_and_streamed_and_counts_requests() {
    let loom = Loom::start("serve", &[]).await;
    let said = "Ping from the CLI test";

    let response =
        loom.send(Method::POST, "/v1/chat/completions", chat_body("gpt-4o-mini", said, false)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-loom-provider"], "mock");
    let body: Value = serde_json::from_slice(&read_all(response.into_body()).await).expect("JSON answer");
    let (reply, _) = mock_reply(said);
    assert_eq!(reply, "Hello from Loom's mock provider! You said: Ping from the CLI test");
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-mock-")), "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}])
    );
    assert_eq!(body["usage"], json!({"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17}));
    assert_eq!((words(said), words(&reply)), (5, 12));

    let response =
        loom.send(Method::POST, "/v1/chat/completions", chat_body("gpt-4o-mini", said, true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let stream = text(&read_all(response.into_body()).await);
    assert!(stream.ends_with("data: [DONE]\n\n"), "{stream}");
    assert_mock_stream(&sse_data(&stream), "gpt-4o-mini", said);

    let (status, metrics) = loom.admin_get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let logs = loom.logs();
    assert!(logs.contains("loom is serving the AI gateway"), "{logs}");
    assert!(logs.contains("POST /v1/chat/completions"), "{logs}");
    assert!(!logs.contains("\x1b["), "no ANSI colour codes in a log file:\n{logs:?}");
    let counters: Vec<&str> =
        metrics.lines().filter(|line| line.starts_with("loom_ai_requests_total{")).collect();
    // The quickstart lists no models, so the label is `other`: clients choose model names.
    assert_eq!(counters, ["loom_ai_requests_total{provider=\"mock\",model=\"other\"} 2"], "{metrics}");
}

#[tokio::test]
async fn sigterm_drains_the_open_stream_refuses_new_connections_and_exits_zero() {
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
    let mut loom = Loom::start(
        "sigterm",
        &[("chunk_delay: 0ms", "chunk_delay: 100ms"), ("shutdown_timeout: 30s", "shutdown_timeout: 10s")],
    )
    .await;
    // 7 + 14 words: the reply streams in 23 chunks, 100ms apart (about 2.2s).
    let said = "please keep streaming for a while so that the shutdown has something to drain";
    let response = loom.send(Method::POST, "/v1/chat/completions", chat_body("gpt-4o", said, true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut received = String::new();
    while !received.contains("\n\n") {
        let frame = next_frame(&mut body).await.expect("a first event");
        received.push_str(&text(&frame));
    }

    let kill = Command::new("kill").arg("-TERM").arg(loom.pid().to_string()).status().expect("run kill");
    assert!(kill.success(), "kill -TERM {} failed", loom.pid());

    // The listeners close at once, while the stream is still being served.
    for addr in [loom.addr, loom.admin_addr] {
        let deadline = Instant::now() + WAIT;
        loop {
            match tokio::net::TcpStream::connect(addr).await {
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => break,
                // Caught in the backlog of the listener as it closed: not served either; retry.
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
                Err(error) => panic!("connecting to {addr} failed with {error}, not `connection refused`"),
                Ok(connection) => drop(connection),
            }
            assert!(Instant::now() < deadline, "{addr} still accepts connections after SIGTERM");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert!(
        loom.child.try_wait().expect("poll loom").is_none(),
        "loom exited before the open stream was drained; logs:\n{}",
        loom.logs()
    );

    while let Some(frame) = next_frame(&mut body).await {
        received.push_str(&text(&frame));
    }
    assert!(received.ends_with("data: [DONE]\n\n"), "the stream completed: {received}");
    assert_mock_stream(&sse_data(&received), "gpt-4o", said);

    let status = loom.wait_exit(SHUTDOWN_TIMEOUT).await;
    assert_eq!(status.code(), Some(0), "exit status {status}; logs:\n{}", loom.logs());
    let logs = loom.logs();
    assert!(logs.contains("shutting down: draining in-flight requests"), "{logs}");
    assert!(logs.contains("stopped"), "{logs}");
}

#[tokio::test]
async fn the_request_log_and_the_overhead_metric_keep_the_upstream_wait_apart() {
    const LATENCY_US: u64 = 300_000;
    let loom =
        Loom::start("overhead", &[("latency: 0ms", "latency: 300ms"), ("format: text", "format: json")])
            .await;
    let response =
        loom.send(Method::POST, "/v1/chat/completions", chat_body("gpt-4o-mini", "Time me", false)).await;
    assert_eq!(response.status(), StatusCode::OK);
    read_all(response.into_body()).await;

    // The request's log line: JSON, with the whole time and the (simulated) upstream's.
    let fields = loom.request_log_fields("POST /v1/chat/completions").await;
    assert_eq!(fields["status"], 200, "{fields}");
    assert_eq!(fields["provider"], "mock", "{fields}");
    let (elapsed, upstream) =
        (fields["elapsed_us"].as_u64().unwrap(), fields["upstream_us"].as_u64().unwrap());
    assert!(upstream >= LATENCY_US && elapsed >= upstream, "{fields}");

    let (status, metrics) = loom.admin_get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.lines().any(|line| line == "loom_ai_overhead_seconds_count{provider=\"mock\"} 1"),
        "{metrics}"
    );
    let overhead: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("loom_ai_overhead_seconds_sum{provider=\"mock\"} "))
        .unwrap_or_else(|| panic!("no overhead sum in {metrics}"))
        .parse()
        .unwrap();
    // Loom's own share is far below the upstream's 300 ms: the wait is not counted in it.
    assert!(overhead < LATENCY_US as f64 / 2e6, "overhead {overhead} s");
}

#[tokio::test]
async fn the_request_log_names_the_checks_that_acted() {
    let checks = "ai_gateway:\n  enabled: true\n  checks:\n    injection: {enabled: false}\n    pii: {enabled: true, action: redact}\n";
    let loom = Loom::start(
        "guard-log",
        &[("format: text", "format: json"), ("ai_gateway:\n  enabled: true\n", checks)],
    )
    .await;
    let response = loom
        .send(
            Method::POST,
            "/v1/chat/completions",
            chat_body("gpt-4o-mini", "My card is 4111 1111 1111 1111", false),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-loom-guard"], "pii");
    let body = String::from_utf8_lossy(&read_all(response.into_body()).await).into_owned();
    // The mock echoes what it was sent: the placeholder, never the number.
    assert!(body.contains("[CARD_1]") && !body.contains("4111"), "{body}");

    let fields = loom.request_log_fields("POST /v1/chat/completions").await;
    assert_eq!(fields["status"], 200, "{fields}");
    assert_eq!(fields["guard"], "pii", "{fields}");
    assert!(!loom.logs().contains("4111"), "the number reached the logs");
}
