//! Limits, budgets and keys shared by two gateways on one real redis-server
//! (`ai_gateway.state: {backend: redis}`), and what happens when Redis goes away.
//!
//! The server is `TEST_REDIS_SERVER` or `redis-server` on PATH (`.ci/run` installs it); a
//! missing binary fails the tests.

use std::time::Duration;

use http::Method;
use loom_core::Secret;
use loom_e2e::{TestGateway, TestResponse, openai_config, read_whole};
use loom_guard::{AuthConfig, Backend, GuardState, KeyStore, NewKey, StateConfig};
use loom_test_support::MockUpstream;
use loom_test_support::RedisServer;
use serde_json::json;

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;
/// Reserves 7 (rough input) + 8 tokens and uses 9 + 6 = 15 (the mock's usage).
const CHAT_15: &str = r#"{"model":"gpt-4o","max_tokens":8,"messages":[{"role":"user","content":"Hi"}]}"#;

/// `ai_gateway.state` on `server`, failing fast when it is gone.
fn state_yaml(server: &RedisServer) -> String {
    format!("  state:\n    backend: redis\n    url: {}\n    timeout: 200ms\n", server.url())
}

/// Two gateways with the same configuration (`gateway_yaml` under `ai_gateway:`).
async fn two_gateways(mock: &MockUpstream, gateway_yaml: &str) -> (TestGateway, TestGateway) {
    let yaml = openai_config(&mock.base_url(), "", gateway_yaml);
    (TestGateway::start(&yaml).await, TestGateway::start(&yaml).await)
}

async fn chat(gateway: &TestGateway, key: Option<&str>, body: &str) -> TestResponse {
    let authorization = key.map(|key| format!("Bearer {key}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(authorization) = &authorization {
        headers.push(("authorization", authorization.as_str()));
    }
    gateway.post_with("/v1/chat/completions", &headers, body).await
}

async fn admin(gateway: &TestGateway, method: Method, path: &str, body: &str) -> TestResponse {
    let url = format!("http://{}{path}", gateway.admin_addr);
    let headers = [("content-type", "application/json")];
    read_whole(gateway.send(method, &url, &headers, body.to_owned()).await).await
}

/// Polls `gateway` with `key` until it answers `status`, for at most 3 s.
async fn until_status(gateway: &TestGateway, key: &str, status: u16) -> TestResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let response = chat(gateway, Some(key), CHAT).await;
        if response.status == status || tokio::time::Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The value of a counter sample in the Prometheus text of `/metrics` (0 when absent).
async fn counter(gateway: &TestGateway, sample: &str) -> u64 {
    let metrics = gateway.admin_get("/metrics").await.text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_parallel_requests_on_two_gateways_get_exactly_the_global_limit() {
    let server = RedisServer::start();
    let mock = MockUpstream::start().await;
    // A burst of 25 that refills one request a minute: nothing comes back during the test.
    let yaml = format!(
        "  rate_limits:\n    - {{scope: global, requests_per_minute: 1, burst: 25}}\n{}",
        state_yaml(&server)
    );
    let (a, b) = two_gateways(&mock, &yaml).await;
    let requests = (0..60).map(|index| {
        let gateway = if index % 2 == 0 { &a } else { &b };
        async move { chat(gateway, None, CHAT).await }
    });
    let responses = futures_util::future::join_all(requests).await;
    let allowed = responses.iter().filter(|response| response.status == 200).count();
    let refused: Vec<&TestResponse> = responses.iter().filter(|response| response.status == 429).collect();
    assert_eq!(
        (allowed, refused.len()),
        (25, 35),
        "{:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(mock.request_count(), 25);
    for response in refused {
        assert_eq!(response.json()["error"]["code"], "rate_limit_exceeded", "{}", response.text());
        assert_eq!(response.header("x-ratelimit-remaining-requests").as_deref(), Some("0"));
        assert!(response.header("retry-after").is_some(), "{:?}", response.headers);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_spent_on_one_gateway_is_refused_on_the_other() {
    let server = RedisServer::start();
    let mock = MockUpstream::start().await;
    let yaml = format!(
        "  auth:
    enabled: true
    keys:
      - id: app
        key: lk-app
        budgets: [{{scope: key, period: day, max_tokens: 40}}]
{}",
        state_yaml(&server)
    );
    let (a, b) = two_gateways(&mock, &yaml).await;
    for _ in 0..2 {
        let response = chat(&a, Some("lk-app"), CHAT_15).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    // 30 of 40 spent on A: another 15 does not fit on B.
    let refused = chat(&b, Some("lk-app"), CHAT_15).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    let error = &refused.json()["error"];
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("insufficient_quota"), Some("insufficient_quota"))
    );
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "Budget exceeded: key app daily tokens (30 tokens of 40 tokens used); it resets at "
        ),
        "{message}"
    );
    assert_eq!(mock.request_count(), 2);
    // And on A alike.
    assert_eq!(chat(&a, Some("lk-app"), CHAT_15).await.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_through_the_admin_api_on_one_gateway_works_on_the_other_until_revoked() {
    let server = RedisServer::start();
    let mock = MockUpstream::start().await;
    let yaml = format!("  auth:\n    enabled: true\n{}", state_yaml(&server));
    let (a, b) = two_gateways(&mock, &yaml).await;
    let created = admin(&a, Method::POST, "/ai/keys", r#"{"id":"ci","team":"eng"}"#).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json();
    assert_eq!(created["id"], "ci");
    let key = created["key"].as_str().expect("the plaintext key, shown once").to_owned();
    // Within a second on both (polled for up to 3 s).
    for gateway in [&a, &b] {
        let response = until_status(gateway, &key, 200).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let revoked = admin(&a, Method::DELETE, "/ai/keys/ci", "").await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    for gateway in [&a, &b] {
        let response = until_status(gateway, &key, 401).await;
        assert_eq!(response.status, 401, "{}", response.text());
        assert_eq!(response.json()["error"]["code"], "revoked_api_key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_in_the_shared_state_gets_401_revoked_api_key_in_both_formats() {
    let server = RedisServer::start();
    let mock = MockUpstream::start().await;
    let yaml = format!("  auth:\n    enabled: true\n{}", state_yaml(&server));
    let (a, b) = two_gateways(&mock, &yaml).await;
    // A third instance, through the library: what the admin API of any instance does.
    let config = StateConfig {
        backend: Backend::Redis,
        url: Some(Secret::new(server.url())),
        ..StateConfig::default()
    };
    let state = GuardState::redis(&config).expect("redis state");
    let auth = AuthConfig { enabled: true, ..AuthConfig::default() };
    let store = KeyStore::open(&auth, &state).await.expect("key store");
    let new: NewKey = serde_json::from_value(json!({"id": "ops", "user": "ann"})).expect("new key");
    let (key, _) = store.create(new).await.expect("created");
    for gateway in [&a, &b] {
        let response = until_status(gateway, &key, 200).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    store.revoke("ops").await.expect("revoked");
    for gateway in [&a, &b] {
        let response = until_status(gateway, &key, 401).await;
        assert_eq!(response.status, 401, "{}", response.text());
        assert_eq!(
            response.json(),
            json!({"error": {
                "message": "The API key was revoked",
                "type": "authentication_error",
                "param": null,
                "code": "revoked_api_key"
            }})
        );
        let headers = [
            ("content-type", "application/json"),
            ("x-api-key", key.as_str()),
            ("anthropic-version", "2023-06-01"),
        ];
        let response = gateway.post_with("/v1/messages", &headers, CHAT_15).await;
        assert_eq!(response.status, 401, "{}", response.text());
        assert_eq!(
            response.json(),
            json!({"type": "error", "error": {"type": "authentication_error", "message": "The API key was revoked"}})
        );
        assert!(!response.text().contains(&key));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_limits_fail_open_and_budgets_fail_closed_then_both_recover() {
    let mut server = RedisServer::start();
    let mock = MockUpstream::start().await;
    let yaml = format!(
        "  auth:
    enabled: true
    keys:
      - id: limited
        key: lk-limited
        limits: [{{scope: key, requests_per_minute: 1, burst: 2}}]
      - id: budgeted
        key: lk-budgeted
        budgets: [{{scope: key, period: day, max_tokens: 1000000}}]
{}",
        state_yaml(&server)
    );
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", &yaml)).await;
    let statuses = |responses: &[TestResponse]| {
        responses.iter().map(|response| response.status.as_u16()).collect::<Vec<_>>()
    };
    let mut before = Vec::new();
    for _ in 0..3 {
        before.push(chat(&gateway, Some("lk-limited"), CHAT).await);
    }
    assert_eq!(statuses(&before), [200, 200, 429]);
    assert_eq!(chat(&gateway, Some("lk-budgeted"), CHAT).await.status, 200);

    server.stop();
    let open = r#"loom_ai_state_errors_total{outcome="fail_open"}"#;
    let closed = r#"loom_ai_state_errors_total{outcome="fail_closed"}"#;
    let (open_before, closed_before) = (counter(&gateway, open).await, counter(&gateway, closed).await);
    // Rate limits fail open: the limit that refused a moment ago lets requests through.
    let mut during = Vec::new();
    for _ in 0..3 {
        during.push(chat(&gateway, Some("lk-limited"), CHAT).await);
    }
    assert_eq!(
        statuses(&during),
        [200, 200, 200],
        "{:?}",
        during.iter().map(TestResponse::text).collect::<Vec<_>>()
    );
    assert_eq!(counter(&gateway, open).await, open_before + 3);
    // Budgets fail closed.
    let refused = chat(&gateway, Some("lk-budgeted"), CHAT).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(
        refused.json(),
        json!({"error": {
            "message": "Rate limits and budgets cannot be checked right now (their state backend is unavailable)",
            "type": "overloaded_error",
            "param": null,
            "code": "state_unavailable"
        }})
    );
    assert_eq!(counter(&gateway, closed).await, closed_before + 1);
    // Nothing leaks the Redis URL, and the gateway still answers.
    assert!(!refused.text().contains("redis://"));
    assert_eq!(gateway.admin_get("/health").await.status, 200);

    // Back on the same port (empty): the limit holds again once the connection is back.
    server.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let limited = loop {
        let response = chat(&gateway, Some("lk-limited"), CHAT).await;
        if response.status == 429 || tokio::time::Instant::now() > deadline {
            break response;
        }
        assert_eq!(response.status, 200, "{}", response.text());
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(limited.status, 429, "the limit is enforced again: {}", limited.text());
    assert_eq!(limited.json()["error"]["code"], "rate_limit_exceeded");
    let budgeted = chat(&gateway, Some("lk-budgeted"), CHAT).await;
    assert_eq!(budgeted.status, 200, "{}", budgeted.text());
    let health = gateway.admin_get("/health").await;
    assert_eq!((health.status.as_u16(), health.json()), (200, json!({"status": "ok"})));
}
