//! Provider-scoped rate limits end to end: checked once the router has picked a
//! provider, a provider at its limit is skipped for the next one without counting
//! against its health, and a client whose every provider is at its limit gets the 429.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loom_e2e::{Pair, TestResponse};
use serde_json::json;

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;

/// A chat request through `pair`'s gateway with `headers`.
async fn chat(pair: &Pair, headers: &[(&str, &str)]) -> TestResponse {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    pair.gateway.post_with("/v1/chat/completions", &all, CHAT).await
}

/// The value of one `/metrics` sample line of `pair`'s gateway, by its name and labels.
async fn metric(pair: &Pair, sample: &str) -> Option<String> {
    let text = pair.gateway.admin_get("/metrics").await.text();
    text.lines()
        .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')).map(str::to_owned))
}

#[tokio::test]
async fn a_provider_at_its_limit_is_skipped_for_the_next_without_hurting_its_health() {
    let pair = Pair::start(
        true,
        "  rate_limits:\n    - {scope: provider, match: primary, requests_per_minute: 1}\n",
    )
    .await;
    let first = chat(&pair, &[]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-ratelimit-limit-requests").as_deref(), Some("1"));
    assert_eq!(first.header("x-ratelimit-remaining-requests").as_deref(), Some("0"));
    assert_eq!(pair.requests(), (1, 0));
    // The primary is at its limit: the backup answers at once, and the answer carries no
    // limit of its own (the backup has none).
    let second = chat(&pair, &[]).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.header("x-ratelimit-limit-requests"), None, "{:?}", second.headers);
    assert_eq!(second.header("retry-after"), None);
    assert_eq!(pair.requests(), (1, 1));
    let primary = pair.provider_state("primary").await;
    assert_eq!(primary["breaker"]["consecutive_failures"], 0, "{primary}");
    assert_eq!(primary["breaker"]["state"], "closed", "{primary}");
    assert_eq!(
        metric(&pair, r#"loom_ai_ratelimit_decisions_total{scope="provider",decision="refused"}"#)
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        metric(&pair, r#"loom_ai_ratelimit_decisions_total{scope="provider",decision="allowed"}"#)
            .await
            .as_deref(),
        Some("1")
    );
}

/// A ledger file in a fresh temporary directory, removed when the returned guard drops.
fn ledger_dir() -> (tempfile::TempDir, PathBuf) {
    loom_e2e::ledger_dir("loom-provider-limits-")
}

/// (status, outcome, refusal, provider, input, cost) of every ledger row, once there are `n`.
async fn ledger_rows(
    ledger: &Path,
    n: usize,
) -> Vec<(i64, String, Option<String>, Option<String>, i64, f64)> {
    loom_e2e::ledger_rows(ledger, "status, outcome, refusal, provider, input_tokens, cost", n).await
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
    let pair = Pair::start(true, &extra).await;
    let auth = [("authorization", "Bearer lk-app")];
    // Per provider, inside the key: one request each.
    for expected in [(1, 0), (1, 1)] {
        let response = chat(&pair, &auth).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(pair.requests(), expected);
    }
    let refused = chat(&pair, &auth).await;
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
        true,
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
