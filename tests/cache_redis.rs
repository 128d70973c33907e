//! The response cache on a real redis-server (`ai_gateway.state: {backend: redis}`): an
//! answer stored through one instance is a hit on another, and with Redis down the cache
//! misses while every request is still answered.

use std::time::{Duration, Instant};

use loom_e2e::{TestGateway, openai_config};
use loom_test_support::{MockUpstream, RedisServer};

const QUESTION: &str =
    r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "Shared across instances?"}]}"#;

fn yaml(mock: &MockUpstream, server: &RedisServer) -> String {
    let extra = format!(
        "  cache:\n    enabled: true\n  state:\n    backend: redis\n    url: {}\n    key_prefix: loomtest\n    timeout: 200ms\n",
        server.url()
    );
    openai_config(&mock.base_url(), "", &extra)
}

/// Waits (bounded) until Redis holds `n` cache entries.
fn wait_for_entries(server: &RedisServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut connection = server.connection();
    loop {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg("{loomtest}:cache:e:*").query(&mut connection).expect("KEYS");
        if keys.len() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "Redis holds {} cache entries, not {n}", keys.len());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_stored_through_one_instance_is_a_hit_on_another() {
    let server = RedisServer::start();
    let mock = MockUpstream::start().await;
    let first = TestGateway::start(&yaml(&mock, &server)).await;
    let second = TestGateway::start(&yaml(&mock, &server)).await;

    let missed = first.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(missed.header("x-loom-cache").as_deref(), Some("miss"));
    tokio::task::block_in_place(|| wait_for_entries(&server, 1));
    let shared = second.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(shared.status, 200);
    assert_eq!(shared.header("x-loom-cache").as_deref(), Some("hit"));
    assert_eq!(shared.json()["choices"], missed.json()["choices"]);
    assert_eq!(mock.request_count(), 1);

    // Deleting through one instance's admin API deletes the shared entry too.
    let url = format!("http://{}/ai/cache", second.admin_addr);
    let deleted =
        loom_e2e::read_whole(second.send(http::Method::DELETE, &url, &[], bytes::Bytes::new()).await).await;
    assert_eq!(deleted.json(), serde_json::json!({"deleted": 1, "deleted_shared": 1}));
    let after = first.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(after.header("x-loom-cache").as_deref(), Some("hit"), "the first instance's own copy stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_cache_misses_and_requests_are_answered() {
    let mut server = RedisServer::start();
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&yaml(&mock, &server)).await;
    tokio::task::block_in_place(|| server.stop());
    // The shared store fails: a miss (counted as an error), answered by the provider.
    let first = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-loom-cache").as_deref(), Some("miss"));
    // Kept in this instance's memory all the same.
    let second = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-loom-cache").as_deref(), Some("hit"));
    let metrics = gateway.admin_get("/metrics").await.text();
    assert!(metrics.contains("loom_ai_cache_requests_total{status=\"error\"} 1"), "{metrics}");
    assert!(metrics.contains("loom_ai_cache_requests_total{status=\"hit\"} 1"), "{metrics}");
    assert_eq!(mock.request_count(), 1, "the second ask was answered from this instance's memory");
}
