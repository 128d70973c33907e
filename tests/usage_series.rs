//! `GET /ai/usage/series` end to end: requests through a gateway, then their usage per
//! model over time, from memory and from the ledger, and the 400s and 405 it answers.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Method;
use loom_e2e::{TestGateway, openai_config, read_whole};
use loom_test_support::{MockUpstream, Reply};
use serde_json::{Value, json};

const CHAT_4O: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;
const CHAT_MINI: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#;
/// Two requests a minute per model: the third `gpt-4o` request is refused.
const RATE_LIMITS: &str = "  rate_limits:\n    - {scope: model, requests_per_minute: 2}\n";
/// What the mock's answer (9 input, 6 output tokens) costs at gpt-4o's built-in price.
const GPT_4O_COST: f64 = (9.0 * 0.0025 + 6.0 * 0.01) / 1000.0;
const MINUTE_MS: i64 = 60_000;

/// A ledger file in a fresh temporary directory, removed when the returned guard drops.
fn ledger_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("loom-usage-series-").tempdir().expect("temp dir");
    let path = dir.path().join("usage.db");
    (dir, path)
}

fn ledger_yaml(ledger: &Path) -> String {
    format!("  token_accounting:\n    ledger_path: {}\n    flush_interval: 50ms\n", ledger.display())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

fn rfc3339(seconds: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs(seconds as u64)).to_string()
}

/// Sends two `gpt-4o` requests, a third the rate limit refuses and a `gpt-4o-mini` one
/// the upstream fails; returns the times (Unix ms) before the first and after the last.
async fn send_requests(gateway: &TestGateway, mock: &MockUpstream) -> (i64, i64) {
    let first = now_ms();
    for status in [200, 200, 429] {
        let response = gateway.post("/v1/chat/completions", CHAT_4O).await;
        assert_eq!(response.status, status, "{}", response.text());
    }
    mock.push_reply(Reply::rate_limited(3));
    let failed = gateway.post("/v1/chat/completions", CHAT_MINI).await;
    assert_eq!(failed.status, 429, "{}", failed.text());
    assert_eq!(mock.request_count(), 3, "the refused request never reached the upstream");
    (first, now_ms())
}

/// The series at `query` once it counts `requests` requests (records are written by a
/// background thread after the answers).
async fn series_with(gateway: &TestGateway, query: &str, requests: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = gateway.admin_get(&format!("/ai/usage/series?{query}")).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("content-type").as_deref(), Some("application/json"));
        let body = response.json();
        let series = body["series"].as_array().cloned().unwrap_or_default();
        let counted: u64 = series.iter().filter_map(|group| group["totals"]["requests"].as_u64()).sum();
        if counted >= requests || tokio::time::Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The totals of the requests [`send_requests`] makes, per model, with `cost` for gpt-4o.
fn expected_totals(gpt_4o_cost: f64) -> (Value, Value) {
    let gpt_4o = json!({"requests": 3, "input_tokens": 18, "output_tokens": 12, "cached_tokens": 0,
        "cost": gpt_4o_cost, "errors": 0, "cache_hits": 0, "saved_cost": 0.0, "rate_limited": 1,
        "over_budget": 0, "guard_blocked": 0, "guard_flagged": 0});
    let mini = json!({"requests": 1, "input_tokens": 0, "output_tokens": 0, "cached_tokens": 0,
        "cost": 0.0, "errors": 1, "cache_hits": 0, "saved_cost": 0.0, "rate_limited": 0,
        "over_budget": 0, "guard_blocked": 0, "guard_flagged": 0});
    (gpt_4o, mini)
}

/// Checks a group's points: on the minute grid, within `[from_ms, to_ms)`, oldest first,
/// adding up to its totals; when every request was made in one minute, one point there.
fn assert_points(group: &Value, from_ms: i64, to_ms: i64, same_minute: Option<i64>) {
    let points = group["points"].as_array().unwrap_or_else(|| panic!("no points in {group}"));
    let starts: Vec<i64> = points.iter().map(|point| point["start_ms"].as_i64().unwrap()).collect();
    assert!(!starts.is_empty(), "{group}");
    for start in &starts {
        assert_eq!(start % MINUTE_MS, 0, "{group}");
        assert!((from_ms..to_ms).contains(start), "{start} not in [{from_ms}, {to_ms}): {group}");
    }
    assert!(starts.windows(2).all(|pair| pair[0] < pair[1]), "{group}");
    let totals = group["totals"].as_object().unwrap();
    for (field, total) in totals {
        let sum: f64 = points.iter().map(|point| point[field].as_f64().unwrap()).sum();
        assert!((sum - total.as_f64().unwrap()).abs() < 1e-12, "{field}: {group}");
    }
    assert_eq!(points[0].as_object().unwrap().len(), totals.len() + 1, "start_ms and the totals");
    if let Some(minute) = same_minute {
        let mut point = json!({"start_ms": minute});
        point.as_object_mut().unwrap().extend(totals.clone());
        assert_eq!(group["points"], json!([point]));
    }
}

/// The series of [`send_requests`]'s requests per model, in minutes, is exact.
async fn series_by_model_per_minute(gateway: &TestGateway, mock: &MockUpstream) {
    let (first, last) = send_requests(gateway, mock).await;
    let (from, to) = (first / 1000 - 60, last / 1000 + 61);
    let query = format!("group_by=model&bucket=1m&from={from}&to={to}");
    let body = series_with(gateway, &query, 4).await;
    let cost = body["series"][0]["totals"]["cost"].as_f64().unwrap_or_default();
    assert!((cost - 2.0 * GPT_4O_COST).abs() < 1e-12, "{body}");
    let (gpt_4o, mini) = expected_totals(cost);
    let shape = |series: Value| {
        json!({"group_by": "model", "from": rfc3339(from), "to": rfc3339(to), "bucket_seconds": 60,
            "series": series})
    };
    let without_points = {
        let mut body = body.clone();
        for group in body["series"].as_array_mut().unwrap() {
            group.as_object_mut().unwrap().remove("points");
        }
        body
    };
    assert_eq!(
        without_points,
        shape(json!([{"group": "gpt-4o", "totals": gpt_4o}, {"group": "gpt-4o-mini", "totals": mini}]))
    );
    let same_minute = (first / MINUTE_MS == last / MINUTE_MS).then_some(first - first % MINUTE_MS);
    for group in body["series"].as_array().unwrap() {
        assert_points(group, from * 1000, to * 1000, same_minute);
    }

    // One group by name, the other as `(other)`; the default bucket for a 2-minute range
    // is a minute.
    let top = series_with(gateway, &format!("group_by=model&from={from}&to={to}&limit=1"), 4).await;
    let names: Vec<&str> =
        top["series"].as_array().unwrap().iter().map(|group| group["group"].as_str().unwrap()).collect();
    assert_eq!((names, top["bucket_seconds"].as_i64()), (vec!["gpt-4o", "(other)"], Some(60)));
    assert_eq!(top["series"][1]["totals"], mini);

    // A range before the requests is empty.
    let before = series_with(gateway, &format!("group_by=model&from={}&to={}", from - 3600, from), 0).await;
    assert_eq!(before["series"], json!([]));
}

#[tokio::test]
async fn usage_per_model_over_time_from_memory() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", RATE_LIMITS)).await;
    series_by_model_per_minute(&gateway, &mock).await;
}

#[tokio::test]
async fn usage_per_model_over_time_from_the_ledger() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_path();
    let yaml = openai_config(&mock.base_url(), "", &format!("{RATE_LIMITS}{}", ledger_yaml(&ledger)));
    let gateway = TestGateway::start(&yaml).await;
    series_by_model_per_minute(&gateway, &mock).await;
    // The ledger holds the new totals' columns: a restarted gateway answers the same.
    let first = gateway.admin_get("/ai/usage?group_by=model&from=0").await.json();
    gateway.running.shutdown().await;
    let restarted = TestGateway::start(&yaml).await;
    assert_eq!(
        restarted.admin_get("/ai/usage?group_by=model&from=0").await.json()["groups"],
        first["groups"]
    );
    let (gpt_4o, mini) = expected_totals(first["groups"][0]["cost"].as_f64().unwrap_or_default());
    let mut expected = json!([{"group": "gpt-4o"}, {"group": "gpt-4o-mini"}]);
    expected[0].as_object_mut().unwrap().extend(gpt_4o.as_object().unwrap().clone());
    expected[1].as_object_mut().unwrap().extend(mini.as_object().unwrap().clone());
    assert_eq!(first["groups"], expected);
}

/// The 400 the admin API answers for `path`.
async fn assert_bad_query(gateway: &TestGateway, path: &str, param: &str, message: &str) {
    let response = gateway.admin_get(path).await;
    assert_eq!(response.status, 400, "{path}: {}", response.text());
    assert_eq!(
        response.json(),
        json!({"error": {"message": message, "type": "invalid_request_error", "param": param,
            "code": "invalid_parameter"}}),
        "{path}"
    );
}

#[tokio::test]
async fn bad_buckets_and_limits_are_rejected_by_name() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", "")).await;
    let minutes = "`bucket` must be a whole number of minutes, at least 1m (1m, 5m, 1h, 1d), not";
    assert_bad_query(&gateway, "/ai/usage/series?bucket=30s", "bucket", &format!("{minutes} `30s`")).await;
    assert_bad_query(&gateway, "/ai/usage/series?bucket=90s", "bucket", &format!("{minutes} `90s`")).await;
    let month = now_ms() / 1000 - 30 * 86_400;
    assert_bad_query(
        &gateway,
        &format!("/ai/usage/series?from={month}&to={}&bucket=1m", month + 30 * 86_400),
        "bucket",
        "`bucket` gives 43200 buckets over the range, more than 1500: choose a wider one",
    )
    .await;
    let limit = "`limit` must be a whole number from 1 to 50, not";
    assert_bad_query(&gateway, "/ai/usage/series?limit=0", "limit", &format!("{limit} `0`")).await;
    assert_bad_query(&gateway, "/ai/usage/series?limit=51", "limit", &format!("{limit} `51`")).await;
    assert_bad_query(
        &gateway,
        "/ai/usage/series?group_by=planet",
        "group_by",
        "group_by must be user, team, key, model or provider, not `planet`",
    )
    .await;
    // `/ai/usage` takes neither.
    assert_bad_query(&gateway, "/ai/usage?bucket=1m", "query", "unknown parameter `bucket`").await;
    assert_bad_query(&gateway, "/ai/usage?limit=5", "query", "unknown parameter `limit`").await;

    let url = format!("http://{}/ai/usage/series", gateway.admin_addr);
    let post = read_whole(gateway.send(Method::POST, &url, &[], Bytes::new()).await).await;
    assert_eq!(
        (post.status.as_u16(), post.json()),
        (
            405,
            json!({"error": {"message": "use GET", "type": "invalid_request_error", "param": null,
                "code": "method_not_allowed"}})
        )
    );
    // A month at the default bucket: 6 hours, 120 buckets, nothing in them (from memory,
    // which holds every minute since the start).
    let quiet = gateway.admin_get(&format!("/ai/usage/series?from={month}&to={}", month + 30 * 86_400)).await;
    assert_eq!(quiet.status, 200, "{}", quiet.text());
    assert_eq!(
        quiet.json(),
        json!({"group_by": "user", "from": rfc3339(month), "to": rfc3339(month + 30 * 86_400),
            "bucket_seconds": 21_600, "series": []})
    );
}
