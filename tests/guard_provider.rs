//! Provider-scoped rate limits end to end: checked once the router has picked a
//! provider, a provider at its limit is skipped for the next one without counting
//! against its health, and a client whose every provider is at its limit gets the 429.

use std::path::PathBuf;
use std::time::Duration;

use loom_e2e::{TestGateway, TestResponse};
use loom_test_support::MockUpstream;
use rusqlite::Connection;
use serde_json::{Value, json};

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;

/// A primary and a backup provider, each at its own mock, routed by priority.
struct Pair {
    primary: MockUpstream,
    backup: MockUpstream,
    gateway: TestGateway,
}

impl Pair {
    /// The gateway over `primary` (priority 1) and `backup` (priority 2) with failover on,
    /// and `extra` lines under `ai_gateway:`.
    async fn start(extra: &str) -> Pair {
        let (primary, backup) = (MockUpstream::start().await, MockUpstream::start().await);
        let provider = |name: &str, mock: &MockUpstream| {
            format!(
                "    - name: {name}\n      type: openai\n      api_key: sk-{name}\n      base_url: {}\n",
                mock.base_url()
            )
        };
        let yaml = format!(
            "ai_gateway:\n  providers:\n{}{}  routing:\n    strategy: priority\n    failover:\n      enabled: true\n      backoff: 1ms\n    providers:\n      - {{name: primary, priority: 1}}\n      - {{name: backup, priority: 2}}\n{extra}",
            provider("primary", &primary),
            provider("backup", &backup),
        );
        let gateway = TestGateway::start(&yaml).await;
        Pair { primary, backup, gateway }
    }

    async fn chat(&self, headers: &[(&str, &str)]) -> TestResponse {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.gateway.post_with("/v1/chat/completions", &all, CHAT).await
    }

    /// How many requests (primary, backup) received.
    fn requests(&self) -> (usize, usize) {
        (self.primary.request_count(), self.backup.request_count())
    }

    /// The `/ai/providers` entry of `name`.
    async fn provider_state(&self, name: &str) -> Value {
        let list = self.gateway.admin_get("/ai/providers").await.json();
        let entries = list["providers"].as_array().cloned().unwrap_or_default();
        entries.into_iter().find(|entry| entry["name"] == name).unwrap_or(Value::Null)
    }

    /// The value of one `/metrics` sample line, by its name and labels.
    async fn metric(&self, sample: &str) -> Option<String> {
        let text = self.gateway.admin_get("/metrics").await.text();
        text.lines().find_map(|line| {
            line.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')).map(str::to_owned)
        })
    }
}

#[tokio::test]
async fn a_provider_at_its_limit_is_skipped_for_the_next_without_hurting_its_health() {
    let pair =
        Pair::start("  rate_limits:\n    - {scope: provider, match: primary, requests_per_minute: 1}\n")
            .await;
    let first = pair.chat(&[]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-ratelimit-limit-requests").as_deref(), Some("1"));
    assert_eq!(first.header("x-ratelimit-remaining-requests").as_deref(), Some("0"));
    assert_eq!(pair.requests(), (1, 0));
    // The primary is at its limit: the backup answers at once, and the answer carries no
    // limit of its own (the backup has none).
    let second = pair.chat(&[]).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.header("x-ratelimit-limit-requests"), None, "{:?}", second.headers);
    assert_eq!(second.header("retry-after"), None);
    assert_eq!(pair.requests(), (1, 1));
    let primary = pair.provider_state("primary").await;
    assert_eq!(primary["breaker"]["consecutive_failures"], 0, "{primary}");
    assert_eq!(primary["breaker"]["state"], "closed", "{primary}");
    assert_eq!(
        pair.metric(r#"loom_ai_ratelimit_decisions_total{scope="provider",decision="refused"}"#)
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        pair.metric(r#"loom_ai_ratelimit_decisions_total{scope="provider",decision="allowed"}"#)
            .await
            .as_deref(),
        Some("1")
    );
}

/// A ledger file in a fresh temporary directory, removed when the returned guard drops.
fn ledger_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("loom-provider-limits-").tempdir().expect("temp dir");
    let path = dir.path().join("usage.db");
    (dir, path)
}

/// (status, outcome, refusal, provider, input, cost) of every ledger row, once there are `n`.
async fn ledger_rows(
    ledger: &PathBuf,
    n: usize,
) -> Vec<(i64, String, Option<String>, Option<String>, i64, f64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let rows: Vec<_> = if ledger.exists() {
            let connection = Connection::open(ledger).expect("ledger opens");
            let mut statement = connection
                .prepare(
                    "SELECT status, outcome, refusal, provider, input_tokens, cost FROM usage ORDER BY rowid",
                )
                .expect("query");
            statement
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
                })
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

#[tokio::test]
async fn a_key_whose_every_provider_is_at_its_limit_gets_429_recorded_as_refused() {
    let (_dir, ledger) = ledger_dir();
    let extra = format!(
        "  auth:
    enabled: true
    keys:
      - id: app
        key: lk-app
        limits: [{{scope: provider, requests_per_minute: 1}}]
  token_accounting:
    ledger_path: {}
    flush_interval: 50ms
",
        ledger.display()
    );
    let pair = Pair::start(&extra).await;
    let auth = [("authorization", "Bearer lk-app")];
    // Per provider, inside the key: one request each.
    for expected in [(1, 0), (1, 1)] {
        let response = pair.chat(&auth).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(pair.requests(), expected);
    }
    let refused = pair.chat(&auth).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(
        refused.json(),
        json!({"error": {
            "message": "Rate limit reached for provider `backup`: 1 requests per 1m0s",
            "type": "rate_limit_error",
            "param": null,
            "code": "rate_limit_exceeded"
        }})
    );
    assert_eq!(refused.header("x-ratelimit-limit-requests").as_deref(), Some("1"));
    assert_eq!(refused.header("x-ratelimit-remaining-requests").as_deref(), Some("0"));
    let retry_after: u64 = refused.header("retry-after").and_then(|value| value.parse().ok()).unwrap_or(0);
    assert!((1..=60).contains(&retry_after), "{:?}", refused.headers);
    assert_eq!(pair.requests(), (1, 1), "no provider was asked");
    let rows = ledger_rows(&ledger, 3).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        rows[2],
        (429, "refused".to_owned(), Some("rate_limit:provider:requests".to_owned()), None, 0, 0.0)
    );
    assert_eq!((rows[0].1.as_str(), rows[0].3.as_deref()), ("ok", Some("primary")));
    assert_eq!((rows[1].1.as_str(), rows[1].3.as_deref()), ("ok", Some("backup")));
}

#[tokio::test]
async fn a_provider_token_reservation_settles_to_the_real_usage() {
    // A 1000-token burst refilling at 1 token per second: what comes back within the
    // test's few seconds is settlement, not refill.
    let pair = Pair::start(
        "  rate_limits:\n    - {scope: provider, match: primary, tokens_per_minute: 60, burst: 1000}\n",
    )
    .await;
    let body = r#"{"model":"gpt-4o","max_tokens":500,"messages":[{"role":"user","content":"Hi"}]}"#;
    let send =
        || pair.gateway.post_with("/v1/chat/completions", &[("content-type", "application/json")], body);
    // 7 (rough input) + 500 reserved of 1000.
    let first = send().await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-ratelimit-remaining-tokens").as_deref(), Some("493"));
    // Unsettled, a second 507 would not fit the primary; settled to the 15 tokens used, it
    // does (the backup answers until the settlement lands).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let second = loop {
        let response = send().await;
        assert_eq!(response.status, 200, "{}", response.text());
        if response.header("x-ratelimit-remaining-tokens").is_some() || tokio::time::Instant::now() > deadline
        {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let remaining: u64 =
        second.header("x-ratelimit-remaining-tokens").and_then(|value| value.parse().ok()).unwrap_or(0);
    assert!((478..=481).contains(&remaining), "1000 - 15 used - 507 reserved (+ refill): {remaining}");
    assert_eq!(pair.primary.request_count(), 2);
}
