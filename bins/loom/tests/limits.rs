//! The `loom` process under hostile load: silent sockets past its file-descriptor limit,
//! thousands of client-chosen model names (issue 16), and the memory exact counting takes
//! (issue 17).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LOOM: &str = env!("CARGO_BIN_EXE_loom");

/// How long any single wait in these tests may take before it counts as a failure.
const WAIT: Duration = Duration::from_secs(30);

/// A loopback address that was free a moment ago.
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    listener.local_addr().expect("local addr")
}

/// The built-in mock provider, as a `providers:` list item.
const MOCK_PROVIDER: &str = "    - name: mock\n      type: mock\n";

/// A `loom` child process with a file-descriptor limit, killed on drop.
struct Loom {
    child: Child,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    log: tempfile::NamedTempFile,
    _config: tempfile::NamedTempFile,
}

impl Loom {
    /// Starts `loom` with the mock provider, `server_extra` lines under `server:`, and at
    /// most `descriptors` open files (soft and hard limit).
    fn start(server_extra: &str, descriptors: u32) -> Loom {
        Loom::start_with(server_extra, MOCK_PROVIDER, descriptors)
    }

    /// Like [`Loom::start`], with `providers` (YAML list items) as the provider list.
    fn start_with(server_extra: &str, providers: &str, descriptors: u32) -> Loom {
        let (addr, admin_addr) = (free_addr(), free_addr());
        let yaml = format!(
            "server:\n  listen: {addr}\n{server_extra}admin:\n  listen: {admin_addr}\n\
             logging:\n  level: info\nai_gateway:\n  providers:\n{providers}"
        );
        let mut config = tempfile::NamedTempFile::new().expect("config file");
        config.write_all(yaml.as_bytes()).expect("write config");
        let log = tempfile::NamedTempFile::new().expect("log file");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {descriptors} && exec \"$0\" --config \"$1\""))
            .arg(LOOM)
            .arg(config.path())
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("log handle"))
            .stderr(log.reopen().expect("log handle"))
            .env("NO_COLOR", "1")
            // The binary's own allocator setting is under test, not the caller's.
            .env_remove("MIMALLOC_ARENA_EAGER_COMMIT");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LOOM_") {
                command.env_remove(name);
            }
        }
        let child = command.spawn().expect("start loom");
        let loom = Loom { child, addr, admin_addr, log, _config: config };
        let deadline = Instant::now() + WAIT;
        while get(loom.admin_addr, "/health").map(|(status, _)| status) != Some(200) {
            assert!(Instant::now() < deadline, "loom did not become healthy; logs:\n{}", loom.logs());
            std::thread::sleep(Duration::from_millis(25));
        }
        loom
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The resident set size of the process, in KiB.
    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// A `/proc/PID/status` figure of the process, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }
}

impl Drop for Loom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange on a new connection: the status and body, or `None` when the
/// connection failed or the answer did not come within a few seconds.
fn exchange(addr: SocketAddr, request: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())?;
    Some((status, body))
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    exchange(addr, &format!("GET {path} HTTP/1.1\r\nhost: loom\r\nconnection: close\r\n\r\n"))
}

fn chat(addr: SocketAddr, model: &str) -> Option<(u16, String)> {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    exchange(
        addr,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\nconnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Retries `attempt` until it gives `Some`, for at most [`WAIT`].
fn eventually<T>(what: &str, logs: impl Fn() -> String, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not happen; logs:\n{}", logs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_hundred_silent_sockets_under_256_descriptors_leave_health_reachable() {
    let loom = Loom::start("  header_timeout: 2s\n", 256);
    let silent: Vec<TcpStream> = (0..300).filter_map(|_| TcpStream::connect(loom.addr).ok()).collect();
    assert!(silent.len() >= 250, "the kernel accepted the silent sockets ({})", silent.len());

    // The admin server keeps answering while the front door is full.
    let (status, body) = eventually("GET /health", || loom.logs(), || get(loom.admin_addr, "/health"));
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));

    // Silent sockets are closed at the header timeout, and the front door serves again.
    let (status, body) = eventually(
        "a chat request served after the silent sockets",
        || loom.logs(),
        || chat(loom.addr, "gpt-4o").filter(|(status, _)| *status == 200),
    );
    assert_eq!(status, 200, "{body}");
    for mut socket in silent {
        socket.set_read_timeout(Some(WAIT)).expect("read timeout");
        let mut buffer = [0u8; 512];
        // Either the 503 of a refused connection or nothing, then the close.
        while let Ok(read) = socket.read(&mut buffer) {
            if read == 0 {
                break;
            }
        }
    }
    let logs = loom.logs();
    let warnings =
        logs.lines().filter(|line| line.contains("accept failed") || line.contains("refusing")).count();
    assert!(warnings <= 10, "warnings are throttled, not one per accept ({warnings}):\n{logs}");
}

#[test]
fn twenty_thousand_unique_model_names_leave_metrics_and_memory_flat() {
    let loom = Loom::start("", 4096);
    let series = |loom: &Loom| {
        let (status, metrics) = get(loom.admin_addr, "/metrics").expect("metrics");
        assert_eq!(status, 200);
        metrics
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.rsplit_once(' ').map_or(line, |(series, _)| series).to_owned())
            .collect::<Vec<_>>()
    };
    // Warm up: every series that a request creates exists from here on.
    for index in 0..500 {
        assert_eq!(chat(loom.addr, &format!("warm-up-{index}")).map(|(status, _)| status), Some(200));
    }
    let (series_before, rss_before) = (series(&loom), loom.rss_kib());
    let long_tail = "x".repeat(8 * 1024);
    for index in 0..20_000 {
        // Half are 8 KB names (refused), half unique names a provider serving any model takes.
        let (model, expected) = if index % 2 == 0 {
            (format!("{index}-{long_tail}"), 400)
        } else {
            (format!("client-model-{index}-{}", "y".repeat(150)), 200)
        };
        let answer = chat(loom.addr, &model);
        assert_eq!(answer.as_ref().map(|(status, _)| *status), Some(expected), "{answer:?}");
    }
    let (series_after, rss_after) = (series(&loom), loom.rss_kib());
    assert_eq!(series_after, series_before, "no new metric series");
    // Usage aggregates keep at most 10,000 groups per bucket; what is left is allocator noise.
    let grown_mib = rss_after.saturating_sub(rss_before) / 1024;
    assert!(grown_mib < 48, "RSS grew {grown_mib} MiB ({rss_before} KiB -> {rss_after} KiB)");
}

#[test]
fn a_client_that_leaves_before_the_first_byte_gets_a_499_access_log_line() {
    let slow_mock = format!("{MOCK_PROVIDER}      mock:\n        latency: 30s\n");
    let loom = Loom::start_with("", &slow_mock, 4096);
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    let mut stream = TcpStream::connect(loom.addr).expect("connect");
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\ncontent-type: application/json\r\n\
         x-request-id: leaving-early\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    // The mock is still waiting when the client goes.
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);
    let line = eventually(
        "the access-log line",
        || loom.logs(),
        || {
            loom.logs()
                .lines()
                .find(|line| line.contains("leaving-early") && line.contains("status="))
                .map(str::to_owned)
        },
    );
    assert!(line.contains("status=499"), "{line}");
    assert!(line.contains("POST /v1/chat/completions"), "{line}");
    assert!(line.contains("the client went away before the answer began"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_request_logs_the_upstream_status_and_scrubbed_body() {
    let upstream = loom_test_support::MockUpstream::start().await;
    let key = "sk-test-logged-0123456789";
    upstream.push_reply(loom_test_support::Reply::openai_error(
        500,
        "server_error",
        Some("engine_down"),
        &format!("The engine failed for Bearer {key}"),
    ));
    let providers = format!(
        "    - name: openai\n      type: openai\n      api_key: {key}\n      base_url: {}\n",
        upstream.base_url()
    );
    let loom =
        tokio::task::spawn_blocking(move || Loom::start_with("", &providers, 4096)).await.expect("start");
    let addr = loom.addr;
    let answer = tokio::task::spawn_blocking(move || chat(addr, "gpt-4o")).await.expect("request");
    let (status, body) = answer.expect("an answer");
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains(key), "{body}");
    let line = eventually(
        "the failed request's access-log line",
        || loom.logs(),
        || loom.logs().lines().find(|line| line.contains("status=502")).map(str::to_owned),
    );
    assert!(line.contains(r#"provider="openai""#), "{line}");
    assert!(line.contains("upstream_status=500"), "{line}");
    assert!(line.contains("The engine failed for Bearer [redacted]"), "{line}");
    assert!(line.contains("engine_down"), "the upstream body is in the line: {line}");
    assert!(!loom.logs().contains(key), "no key anywhere in the logs:\n{}", loom.logs());
}

/// Issue 17: exact counting keeps the process small. `loom` re-executes itself (same
/// process id) with mimalloc committing memory as it is used, so loading the `o200k_base`
/// tables leaves no scratch memory resident: about 22 MiB of anonymous memory in a debug
/// build after the first count, against about 41 MiB with mimalloc's eager commit.
#[test]
fn the_first_exact_count_leaves_the_process_small() {
    let loom = Loom::start("", 1024);
    let environ = std::fs::read(format!("/proc/{}/environ", loom.child.id())).expect("proc environ");
    assert!(
        environ.split(|byte| *byte == 0).any(|entry| entry == b"MIMALLOC_ARENA_EAGER_COMMIT=0"),
        "loom did not re-execute itself with lazy commit"
    );
    let body = r#"{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"Hello, how many tokens is this?"}]}"#;
    let answer = exchange(
        loom.addr,
        &format!(
            "POST /v1/messages/count_tokens HTTP/1.1\r\nhost: loom\r\nconnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(answer, Some((200, r#"{"input_tokens":15}"#.to_owned())), "logs:\n{}", loom.logs());
    let anonymous = loom.status_kib("RssAnon:");
    assert!(anonymous < 32 * 1024, "{anonymous} KiB of anonymous memory after one exact count");
}
