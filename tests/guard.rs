//! Virtual keys, rate limits and budgets end to end, in memory (`ai_gateway.{auth,
//! rate_limits, budgets}` with the default state): what a client sees over HTTP, what
//! reaches the upstream, and what usage records.

use std::path::Path;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use http::Method;
use loom_e2e::{TestGateway, TestResponse, next_frame, openai_config};
use loom_test_support::{Gate, MockUpstream, Reply, SseStep, fixtures};
use serde_json::{Value, json};

/// Keys for the auth tests: a plain one, an expired one, one model-restricted, one
/// route-restricted, and one that may set `x-loom-user`.
const KEYS: &str = "  auth:
    enabled: true
    keys:
      - {id: app, key: lk-app, user: ann, team: web}
      - {id: old, key: lk-old, expires_at: '2020-01-01T00:00:00Z'}
      - {id: mini, key: lk-mini, models: ['gpt-4o-mini*']}
      - {id: batch-only, key: lk-batch, routes: [batch]}
      - {id: trusted, key: lk-trusted, user: svc, allow_identity_headers: true}
";

/// Two AI routes, so that a key can be restricted to one of them.
const ROUTES: &str = "routes:
  - {id: ai, path: /v1/*, ai_gateway: true}
  - {id: batch, path: /batch/v1/*, ai_gateway: true}
";

/// Request headers, as name and value.
type Headers<'a> = &'a [(&'a str, &'a str)];

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;
const MESSAGES: &str = r#"{"model":"gpt-4o","max_tokens":8,"messages":[{"role":"user","content":"Hi"}]}"#;

/// A chat request for `gpt-4o` saying "Hi" with `max_tokens`: Loom reserves its rough
/// input estimate (1 token of text + 3 per message + 3 priming = 7) plus `max_tokens`.
fn chat_with_max_tokens(max_tokens: u64) -> String {
    format!(r#"{{"model":"gpt-4o","max_tokens":{max_tokens},"messages":[{{"role":"user","content":"Hi"}}]}}"#)
}

async fn gateway(mock: &MockUpstream, gateway_yaml: &str, top_level: &str) -> TestGateway {
    TestGateway::start(&format!("{}{top_level}", openai_config(&mock.base_url(), "", gateway_yaml))).await
}

/// POSTs JSON with `headers` on top of `content-type`.
async fn post(gateway: &TestGateway, path: &str, headers: &[(&str, &str)], body: &str) -> TestResponse {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    gateway.post_with(path, &all, body).await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// The OpenAI-format error body Loom answers with.
fn openai_error(message: &str, kind: &str, param: Option<&str>, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// The Anthropic-format error body Loom answers on `/v1/messages`.
fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// `/ai/usage?group_by=...` groups, once they count `requests` requests in all.
async fn usage_groups(gateway: &TestGateway, group_by: &str, requests: u64) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let report = gateway.admin_get(&format!("/ai/usage?group_by={group_by}")).await;
        assert_eq!(report.status, 200, "{}", report.text());
        let groups = report.json()["groups"].as_array().cloned().unwrap_or_default();
        let counted: u64 = groups.iter().filter_map(|group| group["requests"].as_u64()).sum();
        if counted >= requests || tokio::time::Instant::now() > deadline {
            return groups;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn header_u64(response: &TestResponse, name: &str) -> u64 {
    response
        .header(name)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {name}: {:?}", response.headers))
}

/// Sends `body` until it is allowed (a refused request takes nothing), at most 3 s: for
/// reservations that are settled by a task right after the answer.
async fn until_allowed(gateway: &TestGateway, headers: &[(&str, &str)], body: &str) -> TestResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let response = post(gateway, "/v1/chat/completions", headers, body).await;
        if response.status == 200 || tokio::time::Instant::now() > deadline {
            return response;
        }
        assert_eq!(response.status, 429, "{}", response.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn auth_is_off_by_default_and_nothing_is_limited() {
    let mock = MockUpstream::start().await;
    let gateway = gateway(&mock, "", "").await;
    let response = post(&gateway, "/v1/chat/completions", &[], CHAT).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["choices"][0]["message"]["content"], fixtures::CONTENT);
    assert_eq!(response.header("x-ratelimit-remaining-requests"), None);
    // A key is not needed, and one that Loom does not know is not looked at either.
    let response =
        post(&gateway, "/v1/chat/completions", &[("authorization", "Bearer whatever")], CHAT).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn missing_unknown_and_expired_keys_get_401_in_the_clients_format() {
    let mock = MockUpstream::start().await;
    let gateway = gateway(&mock, KEYS, "").await;
    let missing = "No API key: send a Loom key as `Authorization: Bearer <key>`, `x-api-key` or `api-key`";
    let cases: [(Headers, &str, &str); 3] = [
        (&[], missing, "missing_api_key"),
        (&[("authorization", "Bearer lk-nope")], "Incorrect API key provided", "invalid_api_key"),
        (&[("authorization", "Bearer lk-old")], "The API key has expired", "expired_api_key"),
    ];
    for (headers, message, code) in cases {
        let response = post(&gateway, "/v1/chat/completions", headers, CHAT).await;
        assert_eq!(response.status, 401, "{code}: {}", response.text());
        assert_eq!(response.json(), openai_error(message, "authentication_error", None, code));

        let mut anthropic = vec![("anthropic-version", "2023-06-01")];
        anthropic.extend_from_slice(headers);
        let response = post(&gateway, "/v1/messages", &anthropic, MESSAGES).await;
        assert_eq!(response.status, 401, "{code}: {}", response.text());
        assert_eq!(response.json(), anthropic_error("authentication_error", message));
    }
    assert_eq!(mock.request_count(), 0, "a refused request never reaches the upstream");
    // The presented key is never echoed back.
    let response = post(&gateway, "/v1/chat/completions", &[("authorization", "Bearer lk-nope")], CHAT).await;
    assert!(!response.text().contains("lk-nope"), "{}", response.text());
}

#[tokio::test]
async fn disallowed_models_and_routes_get_403() {
    let mock = MockUpstream::start().await;
    let gateway = gateway(&mock, KEYS, ROUTES).await;
    let mini = bearer("lk-mini");
    let response = post(&gateway, "/v1/chat/completions", &[("authorization", &mini)], CHAT).await;
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(
        response.json(),
        openai_error(
            "The key `mini` may not use the model `gpt-4o`",
            "permission_error",
            Some("model"),
            "model_not_allowed"
        )
    );
    let response = post(
        &gateway,
        "/v1/messages",
        &[("x-api-key", "lk-mini"), ("anthropic-version", "2023-06-01")],
        MESSAGES,
    )
    .await;
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(
        response.json(),
        anthropic_error("permission_error", "The key `mini` may not use the model `gpt-4o`")
    );
    let allowed = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#;
    let response = post(&gateway, "/v1/chat/completions", &[("authorization", &mini)], allowed).await;
    assert_eq!(response.status, 200, "{}", response.text());

    let batch = bearer("lk-batch");
    let response = post(&gateway, "/v1/chat/completions", &[("authorization", &batch)], CHAT).await;
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(
        response.json(),
        openai_error(
            "The key `batch-only` may not use the route `ai`",
            "permission_error",
            None,
            "route_not_allowed"
        )
    );
    let response = post(&gateway, "/batch/v1/chat/completions", &[("authorization", &batch)], CHAT).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let models: Vec<Value> = mock.requests().iter().map(|request| request.json()["model"].clone()).collect();
    assert_eq!(models, [json!("gpt-4o-mini"), json!("gpt-4o")]);
}

#[tokio::test]
async fn identity_comes_from_the_key_unless_the_key_may_set_it() {
    let mock = MockUpstream::start().await;
    let gateway = gateway(&mock, KEYS, "").await;
    let cases = [
        // (key, x-loom-user sent, user accounted)
        ("lk-app", Some("mallory"), "ann"),
        ("lk-trusted", Some("carol"), "carol"),
        ("lk-trusted", None, "svc"),
    ];
    for (key, claimed, _) in cases {
        let authorization = bearer(key);
        let mut headers = vec![("authorization", authorization.as_str())];
        if let Some(user) = claimed {
            headers.push(("x-loom-user", user));
        }
        let response = post(&gateway, "/v1/chat/completions", &headers, CHAT).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let groups = usage_groups(&gateway, "user", 3).await;
    let users: Vec<(String, u64)> = groups
        .iter()
        .map(|group| {
            (group["group"].as_str().unwrap_or_default().to_owned(), group["requests"].as_u64().unwrap_or(0))
        })
        .collect();
    let mut expected: Vec<(String, u64)> = cases.iter().map(|(_, _, user)| ((*user).to_owned(), 1)).collect();
    expected.sort();
    let mut users = users;
    users.sort();
    assert_eq!(users, expected);
    let keys = usage_groups(&gateway, "key", 3).await;
    let mut keys: Vec<(String, u64)> = keys
        .iter()
        .map(|group| {
            (group["group"].as_str().unwrap_or_default().to_owned(), group["requests"].as_u64().unwrap_or(0))
        })
        .collect();
    keys.sort();
    assert_eq!(keys, [("app".to_owned(), 1), ("trusted".to_owned(), 2)]);
}

#[tokio::test]
async fn x_api_key_and_api_key_authenticate_like_bearer() {
    let mock = MockUpstream::start().await;
    let gateway = gateway(&mock, KEYS, "").await;
    let styles = [
        ("authorization", "Bearer lk-app", "Bearer lk-wrong"),
        ("x-api-key", "lk-app", "lk-wrong"),
        ("api-key", "lk-app", "lk-wrong"),
    ];
    for (name, right, wrong) in styles {
        let response = post(&gateway, "/v1/chat/completions", &[(name, right)], CHAT).await;
        assert_eq!(response.status, 200, "{name}: {}", response.text());
        let response = post(&gateway, "/v1/chat/completions", &[(name, wrong)], CHAT).await;
        assert_eq!(response.status, 401, "{name}: {}", response.text());
        assert_eq!(response.json()["error"]["code"], "invalid_api_key", "{name}");
    }
    // `authorization` without the Bearer scheme presents no key.
    let response = post(&gateway, "/v1/chat/completions", &[("authorization", "lk-app")], CHAT).await;
    assert_eq!(response.status, 401, "{}", response.text());
    assert_eq!(response.json()["error"]["code"], "missing_api_key");
    // What reaches the upstream carries the provider's key, never the client's.
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.header("authorization").as_deref(), Some("Bearer sk-test-key-0123456789"));
        assert_eq!(request.header("x-api-key"), None);
        assert_eq!(request.header("api-key"), None);
    }
    assert_eq!(usage_groups(&gateway, "key", 3).await[0]["group"], "app");
}

#[tokio::test]
async fn a_request_limit_counts_down_then_refuses_with_retry_after() {
    let mock = MockUpstream::start().await;
    let yaml = "  auth:
    enabled: true
    keys:
      - id: app
        key: lk-app
        limits: [{scope: key, requests_per_minute: 3}]
";
    let gateway = gateway(&mock, yaml, "").await;
    let auth = [("authorization", "Bearer lk-app")];
    for remaining in ["2", "1", "0"] {
        let response = post(&gateway, "/v1/chat/completions", &auth, CHAT).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("x-ratelimit-limit-requests").as_deref(), Some("3"));
        assert_eq!(response.header("x-ratelimit-remaining-requests").as_deref(), Some(remaining));
        assert!(response.header("x-ratelimit-reset-requests").is_some(), "{:?}", response.headers);
        assert_eq!(response.header("retry-after"), None);
    }
    let refused = post(&gateway, "/v1/chat/completions", &auth, CHAT).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(
        refused.json(),
        openai_error(
            "Rate limit reached for key `app`: 3 requests per 1m0s",
            "rate_limit_error",
            None,
            "rate_limit_exceeded"
        )
    );
    assert_eq!(refused.header("x-ratelimit-remaining-requests").as_deref(), Some("0"));
    // One request comes back every 20 s: the wait is at most that, and both headers agree.
    let retry_after = header_u64(&refused, "retry-after");
    let retry_after_ms = header_u64(&refused, "retry-after-ms");
    assert!((1..=20).contains(&retry_after), "retry-after {retry_after}");
    assert!((1..=20_000).contains(&retry_after_ms), "retry-after-ms {retry_after_ms}");
    assert_eq!(retry_after, retry_after_ms.div_ceil(1000).max(1));
    assert_eq!(mock.request_count(), 3);
}

/// A key with a token limit of a 1000-token burst that refills at 1 token per second, so
/// that what comes back within a test's few seconds is settlement, not refill.
const TOKEN_LIMIT: &str = "  auth:
    enabled: true
    keys:
      - id: app
        key: lk-app
        limits: [{scope: key, tokens_per_minute: 60, burst: 1000}]
";

#[tokio::test]
async fn a_request_larger_than_the_token_burst_is_refused_without_retry_after() {
    let mock = MockUpstream::start().await;
    let gateway = gateway(&mock, TOKEN_LIMIT, "").await;
    let auth = [("authorization", "Bearer lk-app")];
    let refused = post(&gateway, "/v1/chat/completions", &auth, &chat_with_max_tokens(5000)).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(
        refused.json(),
        openai_error(
            "Request too large: it needs 5007 tokens, more than the limit for key `app` (60 tokens per 1m0s) allows at once",
            "rate_limit_error",
            None,
            "rate_limit_exceeded"
        )
    );
    // Retrying cannot help.
    assert_eq!(refused.header("retry-after"), None);
    assert_eq!(refused.header("retry-after-ms"), None);
    assert_eq!(mock.request_count(), 0);
    // Nothing was taken: a request that fits gets the whole burst.
    let response = post(&gateway, "/v1/chat/completions", &auth, &chat_with_max_tokens(500)).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-ratelimit-remaining-tokens").as_deref(), Some("493"));
}

#[tokio::test]
async fn a_token_reservation_settles_to_the_real_usage() {
    let mock = MockUpstream::start().await;
    let gateway = gateway(&mock, TOKEN_LIMIT, "").await;
    let auth = [("authorization", "Bearer lk-app")];
    // 7 + 500 reserved of 1000.
    let first = post(&gateway, "/v1/chat/completions", &auth, &chat_with_max_tokens(500)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-ratelimit-remaining-tokens").as_deref(), Some("493"));
    // Unsettled, a second 507 would not fit for 14 s; settled to the 15 tokens used, it does.
    let second = until_allowed(&gateway, &auth, &chat_with_max_tokens(500)).await;
    assert_eq!(second.status, 200, "{}", second.text());
    let remaining = header_u64(&second, "x-ratelimit-remaining-tokens");
    assert!((478..=481).contains(&remaining), "1000 - 15 used - 507 reserved (+ refill): {remaining}");
}

#[tokio::test]
async fn a_streamed_reservation_settles_when_the_stream_ends() {
    let mock = MockUpstream::start().await;
    let gateway = gateway(&mock, TOKEN_LIMIT, "").await;
    let auth = [("authorization", "Bearer lk-app")];
    let body =
        r#"{"model":"gpt-4o","max_tokens":500,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let streamed = post(&gateway, "/v1/chat/completions", &auth, body).await;
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    assert_eq!(streamed.header("x-ratelimit-remaining-tokens").as_deref(), Some("493"));
    assert!(streamed.text().ends_with("data: [DONE]\n\n"), "{}", streamed.text());
    let next = until_allowed(&gateway, &auth, &chat_with_max_tokens(500)).await;
    assert_eq!(next.status, 200, "{}", next.text());
    let remaining = header_u64(&next, "x-ratelimit-remaining-tokens");
    assert!((478..=481).contains(&remaining), "1000 - 15 used - 507 reserved (+ refill): {remaining}");
}

#[tokio::test]
async fn a_streamed_reservation_settles_when_the_client_leaves_midway() {
    let mock = MockUpstream::start().await;
    let gate = Gate::new();
    let mut steps = fixtures::chat_stream_steps("gpt-4o", true);
    steps.insert(2, SseStep::Gate(gate.clone()));
    mock.push_reply(Reply::sse(steps));
    let gateway = gateway(&mock, TOKEN_LIMIT, "").await;
    let body =
        r#"{"model":"gpt-4o","max_tokens":500,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let response = gateway
        .send(
            Method::POST,
            &gateway.url("/v1/chat/completions"),
            &[("content-type", "application/json"), ("authorization", "Bearer lk-app")],
            body.to_owned(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("x-ratelimit-remaining-tokens").and_then(|value| value.to_str().ok()),
        Some("493")
    );
    let mut body = response.into_body();
    let first = next_frame(&mut body, Duration::from_secs(5)).await.expect("a first chunk");
    assert!(String::from_utf8_lossy(&first).starts_with("data: "), "{first:?}");
    drop(body);
    // The stream is abandoned upstream too; the gate stays shut.
    let auth = [("authorization", "Bearer lk-app")];
    let next = until_allowed(&gateway, &auth, &chat_with_max_tokens(500)).await;
    assert_eq!(next.status, 200, "{}", next.text());
    let remaining = header_u64(&next, "x-ratelimit-remaining-tokens");
    // The cancelled call is charged its input and the output it streamed, not its 507.
    // Released unused it would read 493; kept it would not fit for 8 minutes.
    assert!((478..=490).contains(&remaining), "1000 - used - 507 reserved (+ refill): {remaining}");
    gate.open();
}

/// A ledger file in a fresh temporary directory, removed when the returned guard drops.
fn ledger_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    loom_e2e::ledger_dir("loom-guard-ledger-")
}

/// (status, outcome, refusal, input, output, cost) of every ledger row, once there are `n`.
async fn ledger_rows(ledger: &Path, n: usize) -> Vec<(i64, String, Option<String>, i64, i64, f64)> {
    loom_e2e::ledger_rows(ledger, "status, outcome, refusal, input_tokens, output_tokens, cost", n).await
}

/// The start of the next UTC day, as RFC 3339.
fn next_utc_midnight(now: SystemTime) -> String {
    let seconds = now.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs();
    let midnight = SystemTime::UNIX_EPOCH + Duration::from_secs((seconds / 86_400 + 1) * 86_400);
    humantime::format_rfc3339_seconds(midnight).to_string()
}

#[tokio::test]
async fn a_spent_token_budget_refuses_with_insufficient_quota_at_zero_cost() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_dir();
    let yaml = format!(
        "  auth:
    enabled: true
    keys:
      - id: app
        key: lk-app
        user: ann
        budgets: [{{scope: key, period: day, max_tokens: 40}}]
  token_accounting:
    ledger_path: {}
    flush_interval: 50ms
",
        ledger.display()
    );
    let gateway = gateway(&mock, &yaml, "").await;
    let auth = [("authorization", "Bearer lk-app")];
    // Each request reserves 7 + 8 = 15 tokens and uses 9 + 6 = 15: settled or not, the
    // budget holds the same, so what follows does not depend on timing.
    for _ in 0..2 {
        let response = post(&gateway, "/v1/chat/completions", &auth, &chat_with_max_tokens(8)).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let before = next_utc_midnight(SystemTime::now());
    let refused = post(&gateway, "/v1/chat/completions", &auth, &chat_with_max_tokens(8)).await;
    let after = next_utc_midnight(SystemTime::now());
    assert_eq!(refused.status, 429, "{}", refused.text());
    let message = |reset: &str| {
        format!("Budget exceeded: key app daily tokens (30 tokens of 40 tokens used); it resets at {reset}")
    };
    let body = refused.json();
    assert!(
        body == openai_error(&message(&before), "insufficient_quota", None, "insufficient_quota")
            || body == openai_error(&message(&after), "insufficient_quota", None, "insufficient_quota"),
        "{body}"
    );
    assert_eq!(refused.header("retry-after"), None);
    assert_eq!(mock.request_count(), 2);

    // The refusal is in the usage report and the ledger, at zero cost.
    let groups = usage_groups(&gateway, "key", 3).await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["group"], "app");
    assert_eq!(
        (
            groups[0]["requests"].as_u64(),
            groups[0]["input_tokens"].as_u64(),
            groups[0]["output_tokens"].as_u64()
        ),
        (Some(3), Some(18), Some(12))
    );
    let gpt4o_cost = (9.0 * 0.0025 + 6.0 * 0.01) / 1000.0;
    let cost = groups[0]["cost"].as_f64().unwrap_or_default();
    assert!((cost - 2.0 * gpt4o_cost).abs() < 1e-12, "{cost}");
    assert_eq!((groups[0]["over_budget"].as_u64(), groups[0]["rate_limited"].as_u64()), (Some(1), Some(0)));
    let rows = ledger_rows(&ledger, 3).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let ok = (200, "ok".to_owned(), None, 9, 6);
    let strip = |row: &(i64, String, Option<String>, i64, i64, f64)| {
        (row.0, row.1.clone(), row.2.clone(), row.3, row.4)
    };
    assert_eq!(
        rows.iter().map(strip).collect::<Vec<_>>(),
        [ok.clone(), ok, (429, "refused".to_owned(), Some("budget:key:tokens".to_owned()), 0, 0)]
    );
    assert_eq!(rows[2].5, 0.0);
}

/// This process's resident set size, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// A small xorshift: random-looking user names without a dependency.
fn user_names(count: usize) -> Vec<String> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|index| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!("user-{state:016x}-{index}")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_identities_pass_and_the_limit_state_stays_bounded() {
    let mock = MockUpstream::start().await;
    // One request per user per minute; at most 1000 buckets in memory.
    let yaml = "  auth:
    enabled: true
    keys:
      - {id: fanout, key: lk-fanout, allow_identity_headers: true}
  rate_limits:
    - {scope: user, requests_per_minute: 1}
  state:
    max_entries: 1000
";
    let gateway = gateway(&mock, yaml, "").await;
    let users = user_names(10_000);
    let send = |user: String| {
        let gateway = &gateway;
        async move {
            let headers = [("authorization", "Bearer lk-fanout"), ("x-loom-user", user.as_str())];
            post(gateway, "/v1/chat/completions", &headers, CHAT).await.status
        }
    };
    // In batches of 1000, emptying the mock's request log (it keeps every request) so that
    // only the gateway's memory is measured; the first two warm up arenas and pools.
    let (mut upstream_requests, mut rss) = (0, Vec::new());
    for batch in users.chunks(1000) {
        let statuses: Vec<_> =
            futures_util::stream::iter(batch.iter().cloned()).map(send).buffer_unordered(16).collect().await;
        let refused = statuses.iter().filter(|status| **status != 200).count();
        assert_eq!(refused, 0, "every new identity has its own full bucket");
        upstream_requests += mock.take_requests().len();
        rss.push(rss_kib());
    }
    assert_eq!(upstream_requests, 10_000);
    let grown_mib = rss[9].saturating_sub(rss[1]) / 1024;
    assert!(grown_mib < 16, "RSS grew {grown_mib} MiB over 8000 identities: {rss:?} KiB");

    // Bounded, not forgetful of the recent: the last user is still limited...
    let last = users.last().cloned().unwrap_or_default();
    let headers = [("authorization", "Bearer lk-fanout"), ("x-loom-user", last.as_str())];
    let response = post(&gateway, "/v1/chat/completions", &headers, CHAT).await;
    assert_eq!(response.status, 429, "{}", response.text());
    // ... while the first user's bucket was evicted to keep within 1000 (a fresh bucket).
    let headers = [("authorization", "Bearer lk-fanout"), ("x-loom-user", users[0].as_str())];
    let response = post(&gateway, "/v1/chat/completions", &headers, CHAT).await;
    assert_eq!(response.status, 200, "{}", response.text());
}

/// Starts a gateway the way `loom` does, through `Gateway::start` (which seeds in-memory
/// budgets from the ledger; `TestGateway` serves on listeners of its own and does not).
async fn start_like_loom(yaml: &str) -> loom_gateway::RunningGateway {
    let config = loom_gateway::config::LoomConfig::from_yaml_str(yaml, &|_| None).expect("config");
    loom_gateway::Gateway::from_config(&config).expect("gateway").start().await.expect("gateway starts")
}

/// POSTs a JSON body with `headers` to `addr`: (status, body as JSON).
async fn post_to(addr: std::net::SocketAddr, path: &str, headers: Headers<'_>, body: &str) -> (u16, Value) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut request =
        http::Request::post(format!("http://{addr}{path}")).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request =
        request.body(http_body_util::Full::new(bytes::Bytes::from(body.to_owned()))).expect("request");
    let response = tokio::time::timeout(Duration::from_secs(20), client.request(request))
        .await
        .expect("answered in time")
        .expect("request sent");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

/// Spends 30 tokens with `lk-app` (key `app`, team `web`) under `budgets` (YAML lines
/// under `ai_gateway:`, 30 tokens at most), checks the next request is refused with a
/// message starting `refusal`, restarts the gateway on the same ledger, and checks the
/// next request is refused with the same body.
async fn refused_again_after_a_restart(budgets: &str, refusal: &str) {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = ledger_dir();
    let yaml = format!(
        "{}server:\n  listen: 127.0.0.1:0\nadmin:\n  enabled: false\n",
        openai_config(
            &mock.base_url(),
            "",
            &format!(
                "{budgets}  token_accounting:\n    ledger_path: {}\n    flush_interval: 50ms\n",
                ledger.display()
            )
        )
    );
    let auth = [("authorization", "Bearer lk-app")];
    let first = start_like_loom(&yaml).await;
    let first_addr = first.addr().expect("front door address");
    // Each request reserves 7 + 8 = 15 tokens and uses 9 + 6 = 15 (see the test above).
    for _ in 0..2 {
        let (status, body) =
            post_to(first_addr, "/v1/chat/completions", &auth, &chat_with_max_tokens(8)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, expected) =
        post_to(first_addr, "/v1/chat/completions", &auth, &chat_with_max_tokens(8)).await;
    assert_eq!(status, 429, "{expected}");
    let message = expected["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(refusal), "{expected}");
    // Shutting down commits the ledger.
    first.shutdown().await;

    // A fresh in-memory state, seeded from the ledger with the 30 tokens spent: the next
    // request is refused in the same words.
    let second = start_like_loom(&yaml).await;
    let second_addr = second.addr().expect("front door address");
    let (status, body) = post_to(second_addr, "/v1/chat/completions", &auth, &chat_with_max_tokens(8)).await;
    assert_eq!((status, body), (429, expected));
    assert_eq!(mock.request_count(), 2);
    second.shutdown().await;
}

// Rolling windows, so no period ends between the two gateways.

#[tokio::test]
async fn a_keys_team_budget_still_refuses_after_a_restart() {
    refused_again_after_a_restart(
        "  auth:
    enabled: true
    keys:
      - {id: app, key: lk-app, team: web, budgets: [{scope: team, period: 24h, max_tokens: 30}]}
",
        "Budget exceeded: key app team web rolling 1day tokens (30 tokens of 30 tokens used)",
    )
    .await;
}

#[tokio::test]
async fn a_keys_own_budget_still_refuses_after_a_restart() {
    refused_again_after_a_restart(
        "  auth:
    enabled: true
    keys:
      - {id: app, key: lk-app, team: web, budgets: [{scope: key, period: 24h, max_tokens: 30}]}
",
        "Budget exceeded: key app rolling 1day tokens (30 tokens of 30 tokens used)",
    )
    .await;
}

#[tokio::test]
async fn a_global_team_budget_still_refuses_after_a_restart() {
    refused_again_after_a_restart(
        "  auth:
    enabled: true
    keys:
      - {id: app, key: lk-app, team: web}
  budgets:
    - {scope: team, period: 24h, max_tokens: 30}
",
        "Budget exceeded: team web rolling 1day tokens (30 tokens of 30 tokens used)",
    )
    .await;
}
