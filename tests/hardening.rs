//! Issue 16's findings about what a client can make Loom hold: model names, request
//! bodies, silent and idle connections, connection counts; and the access log of a
//! client that leaves. Each drives the real HTTP surface over raw TCP where the client's
//! misbehaviour is the point.

use std::time::Duration;

use loom_e2e::TestGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something that should happen quickly.
const WAIT: Duration = Duration::from_secs(20);

/// A gateway with the built-in mock provider (serving any model) and `server:` lines.
async fn gateway(server: &str) -> TestGateway {
    let yaml = format!("server:\n{server}ai_gateway:\n  providers:\n    - name: mock\n      type: mock\n");
    TestGateway::start(&yaml).await
}

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

/// Reads until the server closes the connection; what it sent, or `None` if it did not
/// close within [`WAIT`].
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
            Err(_) => return None,
        }
    }
}

/// The status code and body of a raw HTTP/1.1 answer.
fn status_and_body(answer: &str) -> (u16, String) {
    let status = answer.get(9..12).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
    (status, body)
}

/// Sends one chat request on a new connection (closed after it) and returns the status,
/// or 0 when the connection failed.
async fn raw_chat(addr: std::net::SocketAddr) -> u16 {
    let Ok(mut stream) = TcpStream::connect(addr).await else { return 0 };
    let body = chat("gpt-4o");
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    read_until_closed(&mut stream).await.map_or(0, |answer| status_and_body(&answer).0)
}

/// The lines of `loom_ai_requests_total` series, values left out.
fn request_series(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|line| line.starts_with("loom_ai_requests_total{"))
        .map(|line| line.rsplit_once(' ').map_or(line, |(series, _)| series).to_owned())
        .collect()
}

#[tokio::test]
async fn client_chosen_model_names_are_bounded_in_requests_and_metrics() {
    let gateway = gateway("  listen: 127.0.0.1:0\n").await;
    let long = "m".repeat(8 * 1024);
    let refused = gateway.post("/v1/chat/completions", &chat(&long)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    let error = &refused.json()["error"];
    assert_eq!(error["param"], "model");
    assert_eq!(error["code"], "model_name_too_long");
    assert_eq!(error["message"], "The model name is 8192 bytes long; at most 256 are allowed");

    for index in 0..200 {
        let answer = gateway.post("/v1/chat/completions", &chat(&format!("client-model-{index}"))).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let metrics = gateway.admin_get("/metrics").await.text();
    assert_eq!(request_series(&metrics), [r#"loom_ai_requests_total{provider="mock",model="other"}"#]);
    assert!(metrics.contains(r#"loom_ai_requests_total{provider="mock",model="other"} 200"#), "{metrics}");
    assert!(!metrics.contains("client-model-"), "{metrics}");
}

#[tokio::test]
async fn a_trickled_body_gets_408_at_the_body_timeout() {
    let gateway = gateway("  listen: 127.0.0.1:0\n  body_timeout: 300ms\n").await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let body = chat("gpt-4o");
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // All but the last byte, one at a time: the body never completes.
    for byte in &body.as_bytes()[..body.len() - 1] {
        if stream.write_all(&[*byte]).await.is_err() {
            break; // the gateway gave up on the body and closed
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = read_until_closed(&mut stream).await.expect("the gateway answered and closed");
    let (status, body) = status_and_body(&answer);
    assert_eq!(status, 408, "{answer}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "body_timeout");
    assert_eq!(error["error"]["type"], "timeout_error");
}

#[tokio::test]
async fn the_request_timeout_counts_from_arrival_so_a_slow_body_cannot_outlive_it() {
    let gateway = gateway("  listen: 127.0.0.1:0\n  body_timeout: 60s\n  request_timeout: 300ms\n").await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await.expect("answered well before the body timeout");
    assert_eq!(status_and_body(&answer).0, 408, "{answer}");
}

#[tokio::test]
async fn bodies_held_at_once_are_bounded_and_the_budget_comes_back() {
    let gateway =
        gateway("  listen: 127.0.0.1:0\n  max_body_bytes: 8192\n  max_buffered_body_bytes: 8192\n  body_timeout: 1s\n")
            .await;
    // A client that sends most of a large body and stalls holds its bytes...
    let mut stalled = TcpStream::connect(gateway.addr).await.unwrap();
    stalled
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\ncontent-length: 8000\r\n\r\n")
        .await
        .unwrap();
    stalled.write_all(&[b' '; 7000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so a second large body does not fit in the budget,
    let padded = format!("{}{}", " ".repeat(3000), chat("gpt-4o"));
    let busy = gateway.post("/v1/chat/completions", &padded).await;
    assert_eq!(busy.status, 503, "{}", busy.text());
    assert_eq!(busy.json()["error"]["code"], "server_busy");
    // until the stalled one times out and gives its bytes back.
    let answer = read_until_closed(&mut stalled).await.expect("the stalled body timed out");
    assert_eq!(status_and_body(&answer).0, 408, "{answer}");
    let served = gateway.post("/v1/chat/completions", &padded).await;
    assert_eq!(served.status, 200, "{}", served.text());
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_header_timeout() {
    let gateway = gateway("  listen: 127.0.0.1:0\n  header_timeout: 300ms\n").await;
    let mut silent = TcpStream::connect(gateway.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await.as_deref(), Some(""), "closed without an answer");
    // One byte short of an HTTP/2 preface is as silent.
    let mut partial = TcpStream::connect(gateway.addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(read_until_closed(&mut partial).await.is_some(), "a partial preface is closed too");
}

#[tokio::test]
async fn an_h2c_connection_idle_after_settings_is_closed() {
    let gateway =
        gateway("  listen: 127.0.0.1:0\n  header_timeout: 300ms\n  keepalive_timeout: 300ms\n").await;
    let mut idle = TcpStream::connect(gateway.addr).await.unwrap();
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let received = read_until_closed(&mut idle).await.expect("the idle h2c connection was closed");
    // The server's own SETTINGS came first, and a GOAWAY (type 7) before the close.
    assert!(received.as_bytes().windows(2).any(|frame| frame == [0x07, 0x00]), "{received:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_serving() {
    let gateway = gateway("  listen: 127.0.0.1:0\n  header_timeout: 5s\n  keepalive_timeout: 300ms\n").await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let body = chat("gpt-4o");
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await.expect("served, then closed when idle");
    assert_eq!(status_and_body(&answer).0, 200, "{answer}");
}

#[tokio::test]
async fn connections_past_the_maximum_get_503_and_the_rest_are_served() {
    let gateway = gateway("  listen: 127.0.0.1:0\n  max_connections: 3\n  header_timeout: 10s\n").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    // The acceptor counts connections as it takes them; give it the three first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = TcpStream::connect(gateway.addr).await.unwrap();
    let answer = read_until_closed(&mut refused).await.expect("refused and closed");
    let (status, body) = status_and_body(&answer);
    assert_eq!(status, 503, "{answer}");
    let error: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(error["error"]["code"], "too_many_connections");
    assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    // A connection that closes frees its place.
    held.pop();
    let mut statuses = Vec::new();
    for _ in 0..100 {
        let status = raw_chat(gateway.addr).await;
        statuses.push(status);
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(statuses.last(), Some(&200), "a freed place is taken again: {statuses:?}");
}
