//! Accounting that no request, stored row or admin query can break: bounded estimates,
//! reports that survive absurd ledger rows, admin queries that answer 400 instead of
//! panicking, and exactly one usage record for every request.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use loom_e2e::{TestGateway, openai_config, sse_data};
use loom_test_support::{MockUpstream, Reply, SseStep, fixtures};
use rusqlite::Connection;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A ledger file in a fresh temporary directory, removed when the returned guard drops.
fn ledger_path(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir =
        tempfile::Builder::new().prefix(&format!("loom-hardening-{name}-")).tempdir().expect("temp dir");
    let path = dir.path().join("usage.db");
    (dir, path)
}

fn accounting_yaml(ledger: &Path, count_input: bool) -> String {
    format!(
        "  token_accounting:\n    ledger_path: {}\n    flush_interval: 50ms\n    count_input: {count_input}\n",
        ledger.display()
    )
}

/// Every ledger row as JSON, oldest first.
fn rows(ledger: &Path) -> Vec<Value> {
    let connection = Connection::open(ledger).expect("ledger opens");
    let mut statement = connection
        .prepare(
            "SELECT user, provider, input_tokens, output_tokens, source, status, outcome, streamed \
             FROM usage ORDER BY rowid",
        )
        .expect("query");
    statement
        .query_map([], |row| {
            Ok(json!({
                "user": row.get::<_, Option<String>>(0)?,
                "provider": row.get::<_, Option<String>>(1)?,
                "input_tokens": row.get::<_, i64>(2)?,
                "output_tokens": row.get::<_, i64>(3)?,
                "source": row.get::<_, String>(4)?,
                "status": row.get::<_, i64>(5)?,
                "outcome": row.get::<_, String>(6)?,
                "streamed": row.get::<_, bool>(7)?,
            }))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("decode")
}

/// Waits until the ledger has at least `n` rows (the writer commits every 50 ms).
async fn wait_rows(ledger: &Path, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = rows(ledger);
        if rows.len() >= n || tokio::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A base64 `data:` URL of a PNG header (signature and `IHDR` only) claiming `width` x `height`.
fn png_claiming(width: u32, height: u32) -> String {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0]);
    format!("data:image/png;base64,{}", STANDARD.encode(&png))
}

/// A whole Gemini answer without `usageMetadata`, so Loom's own input estimate is recorded.
fn gemini_answer_without_usage() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0}],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-no-usage"
    })
}

/// The most tokens one image can be estimated at: Gemini's 16 tiles of 258 tokens, after
/// the provider's scaling down to 3072 x 3072.
const MAX_IMAGE_TOKENS: i64 = 16 * 258;

#[tokio::test]
async fn an_image_claiming_four_billion_pixels_a_side_is_estimated_as_the_largest_real_image() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path("image");
    let yaml = format!(
        "ai_gateway:\n  providers:\n    - name: gemini\n      type: gemini\n      api_key: AIzaTestKey0123456789\n      base_url: http://{}\n      models: [gemini-2.5-flash]\n{}",
        mock.addr(),
        accounting_yaml(&ledger, true)
    );
    let gateway = TestGateway::start(&yaml).await;
    let body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": png_claiming(u32::MAX, u32::MAX)}}
    ]}]})
    .to_string();
    for _ in 0..3 {
        mock.push_reply(Reply::json(gemini_answer_without_usage()));
        let headers = [("content-type", "application/json"), ("x-loom-user", "mallory")];
        let response = gateway.post_with("/v1/chat/completions", &headers, &body).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let rows = wait_rows(&ledger, 3).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    // The image as the provider sees it (3072 x 3072: 16 tiles), plus the message framing
    // (3 + "user") and the reply priming (3), scaled by the Gemini estimate's 110%.
    // 110% of 3 + 1 is 5 (rounded up), of 3 is 4.
    let framing = 5 + 4;
    for row in &rows {
        assert_eq!(row["input_tokens"], MAX_IMAGE_TOKENS + framing, "{row}");
        assert_eq!(row["source"], "estimated");
    }

    let report = gateway.admin_get("/ai/usage?group_by=user").await;
    assert_eq!(report.status, 200, "{}", report.text());
    let groups = report.json()["groups"].clone();
    assert_eq!(groups[0]["group"], "mallory");
    assert_eq!(groups[0]["requests"], 3);
    assert_eq!(groups[0]["input_tokens"], 3 * (MAX_IMAGE_TOKENS + framing));

    let metrics = gateway.admin_get("/metrics").await.text();
    let input_line = format!(
        "loom_ai_tokens_total{{provider=\"gemini\",type=\"input\"}} {}",
        3 * (MAX_IMAGE_TOKENS + framing)
    );
    assert!(metrics.lines().any(|line| line == input_line), "{input_line} not in\n{metrics}");
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

#[tokio::test]
async fn absurd_rows_already_in_the_ledger_still_give_a_report() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path("absurd");
    let yaml = openai_config(&mock.base_url(), "", &accounting_yaml(&ledger, false));
    // The first gateway creates the ledger's table.
    TestGateway::start(&yaml).await.running.shutdown().await;
    let connection = Connection::open(&ledger).expect("ledger opens");
    let insert = |user: &str, tokens: &str, cost: &str| {
        let sql = format!(
            "INSERT INTO usage VALUES ('r', {time}, NULL, {user}, NULL, NULL, 'openai', 'gpt-4o', NULL, \
             {tokens}, {tokens}, {tokens}, 0, 'estimated', {cost}, 1, NULL, 200, 'ok', 0, 0, NULL, NULL, {cost})",
            time = now_ms() - 1_000
        );
        connection.execute(&sql, []).unwrap_or_else(|error| panic!("{sql}: {error}"));
    };
    // Rows an old version wrote (8e15 tokens), rows no version writes (i64::MAX, negative
    // counts, text, infinite costs) and a user that is a number.
    insert("'huge'", &i64::MAX.to_string(), "1e308");
    insert("'huge'", &i64::MAX.to_string(), "1e308");
    insert("'huge'", "8070450532247928", "0.5");
    insert("'negative'", "-5", "-9e999");
    insert("'text'", "'many'", "'lots'");
    insert("42", "9e999", "9e999");
    drop(connection);

    let gateway = TestGateway::start(&yaml).await;
    let report = gateway.admin_get("/ai/usage?group_by=user").await;
    assert_eq!(report.status, 200, "{}", report.text());
    let body = report.json();
    // Each row counts at most 2^32 - 1 tokens (a record's bound), costs that are not finite
    // count 0, and a sum that no f64 holds is the largest one.
    let max_row = 4_294_967_295u64;
    // The saved cost is stored like the cost, and sums like it.
    let group = |group: &str, tokens: u64, cost: f64| {
        json!({"group": group, "requests": 1, "input_tokens": tokens, "output_tokens": tokens,
            "cached_tokens": tokens, "cost": cost, "errors": 0, "cache_hits": 0, "saved_cost": cost,
            "rate_limited": 0, "over_budget": 0, "guard_blocked": 0, "guard_flagged": 0})
    };
    let mut huge = group("huge", 3 * max_row, f64::MAX);
    huge["requests"] = json!(3);
    assert_eq!(
        body["groups"],
        json!([huge, group("42", max_row, 0.0), group("negative", 0, 0.0), group("text", 0, 0.0)])
    );
}

/// The 400 `/ai/usage` answers for a bad `param`.
async fn assert_bad_usage_query(gateway: &TestGateway, query: &str, param: &str, message: &str) {
    let response = gateway.admin_get(&format!("/ai/usage?{query}")).await;
    assert_eq!(response.status, 400, "{query}: {}", response.text());
    assert_eq!(
        response.json(),
        json!({"error": {"message": message, "type": "invalid_request_error", "param": param,
            "code": "invalid_parameter"}}),
        "{query}"
    );
}

#[tokio::test]
async fn out_of_range_usage_times_are_rejected_by_name() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let range = "must be an RFC 3339 time (2026-11-25T10:00:00Z) or Unix seconds, from 1970 to 9999";
    assert_bad_usage_query(
        &gateway,
        "from=253402300800&to=253402300801",
        "from",
        &format!("`253402300800` {range}"),
    )
    .await;
    assert_bad_usage_query(
        &gateway,
        "to=18446744073709551615",
        "to",
        &format!("`18446744073709551615` {range}"),
    )
    .await;
    assert_bad_usage_query(&gateway, "from=10&to=9", "from", "`from` must not be after `to`").await;
    assert_bad_usage_query(&gateway, "to=5&to=6", "to", "`to` is given more than once").await;
    assert_bad_usage_query(&gateway, "from=", "from", "`from` must not be empty").await;

    // The last second of 9999 is the latest time there is.
    let latest = gateway.admin_get("/ai/usage?from=253402300799&to=253402300799").await;
    assert_eq!(latest.status, 200, "{}", latest.text());
    assert_eq!(
        latest.json(),
        json!({"group_by": "user", "from": "9999-12-31T23:59:59.000Z", "to": "9999-12-31T23:59:59.000Z",
            "groups": []})
    );
}

#[tokio::test]
async fn a_client_that_leaves_before_the_first_byte_leaves_exactly_one_record() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path("left");
    let gateway =
        TestGateway::start(&openai_config(&mock.base_url(), "", &accounting_yaml(&ledger, false))).await;
    mock.push_reply(Reply::Hang);
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;
    let mut client = TcpStream::connect(gateway.addr).await.expect("connect");
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: loom\r\ncontent-type: application/json\r\nx-loom-user: frank\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    client.write_all(request.as_bytes()).await.expect("request written");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while mock.requests().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the request never reached the upstream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(client);

    let rows = wait_rows(&ledger, 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    // No answer, so no output; the input is the rough estimate ("Hi": 1, framing 3 + 3).
    assert_eq!(
        rows[0],
        json!({"user": "frank", "provider": null, "input_tokens": 7, "output_tokens": 0, "source": "estimated",
            "status": 499, "outcome": "cancelled", "streamed": false})
    );

    // A later request is recorded once too, after the first and only record of the other.
    let response = gateway
        .post_with(
            "/v1/chat/completions",
            &[("content-type", "application/json"), ("x-loom-user", "grace")],
            body,
        )
        .await;
    assert_eq!(response.status, 200);
    let rows = wait_rows(&ledger, 2).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[1]["user"].as_str(), rows[1]["status"].as_i64()), (Some("grace"), Some(200)));
}

#[tokio::test]
async fn a_stream_that_fails_midway_is_recorded_with_the_status_the_client_saw() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path("midway");
    let gateway =
        TestGateway::start(&openai_config(&mock.base_url(), "", &accounting_yaml(&ledger, false))).await;
    // The first chunks, then the connection ends without `[DONE]`.
    let chunks = fixtures::chat_stream_chunks("gpt-4o", false);
    mock.push_reply(Reply::sse(vec![SseStep::json(&chunks[0]), SseStep::json(&chunks[1])]));
    let response = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    assert_eq!(response.status, 200);
    let events = sse_data(&response.text());
    assert_eq!(events.len(), 3, "two chunks, then the error: {events:?}");
    assert!(events[2].contains("\"error\""), "{events:?}");

    let rows = wait_rows(&ledger, 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    // What was generated ("Hello") is counted, as for any stream without usage.
    assert_eq!(
        rows[0],
        json!({"user": null, "provider": "openai", "input_tokens": 7, "output_tokens": 1, "source": "estimated",
            "status": 200, "outcome": "error", "streamed": true})
    );
}
