//! The semantic cache with the real all-MiniLM-L6-v2 (`TEST_MINILM_DIR`, which `.ci/run`
//! sets): a paraphrase is a `semantic-hit` with its similarity, a negated question or a
//! changed number is a miss, other contexts never match, and on a real redis-server an
//! answer stored through one instance is a semantic hit on another.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use loom_e2e::{TestGateway, TestResponse, openai_config};
use loom_test_support::{MockUpstream, RedisServer};
use serde_json::json;

fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TEST_MINILM_DIR").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("skipped: TEST_MINILM_DIR is not set (.ci/run sets it)");
    }
    dir
}

fn yaml(mock: &MockUpstream, model: &std::path::Path, extra: &str) -> String {
    let cache = format!(
        "  embedder:\n    path: {}\n  cache:\n    enabled: true\n    semantic:\n      enabled: true\n{extra}",
        model.display()
    );
    openai_config(&mock.base_url(), "", &cache)
}

fn ask(question: &str) -> String {
    json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": question}]})
        .to_string()
}

async fn post(gateway: &TestGateway, question: &str, headers: &[(&str, &str)]) -> TestResponse {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let response = gateway.post_with("/v1/chat/completions", &all, &ask(question)).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response
}

/// Waits (bounded) until the index holds `n` questions: answers are indexed off the
/// request path, a moment after they are stored.
async fn indexed(gateway: &TestGateway, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = gateway.admin_get("/ai/cache").await.json();
        if stats["stats"]["semantic_entries"].as_u64() >= Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "the index never held {n} questions: {stats}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status(response: &TestResponse) -> String {
    response.header("x-loom-cache").unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paraphrases_hit_and_questions_that_differ_in_meaning_miss() {
    let Some(model) = model_dir() else { return };
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&yaml(&mock, &model, "")).await;

    assert_eq!(status(&post(&gateway, "How do I reset my password?", &[]).await), "miss");
    indexed(&gateway, 1).await;
    let paraphrase = post(&gateway, "How can I reset my password?", &[]).await;
    assert_eq!(status(&paraphrase), "semantic-hit");
    let similarity: f32 = paraphrase.header("x-loom-cache-similarity").expect("similarity").parse().unwrap();
    assert!((0.84..1.0).contains(&similarity), "{similarity}");
    assert_eq!(paraphrase.json()["choices"][0]["message"]["content"], loom_test_support::fixtures::CONTENT);
    assert_eq!(mock.request_count(), 1);

    // Close in embedding space, different questions: the guard refuses them.
    assert_eq!(status(&post(&gateway, "Is Python dynamically typed?", &[]).await), "miss");
    indexed(&gateway, 2).await;
    assert_eq!(status(&post(&gateway, "Is Python not dynamically typed?", &[]).await), "miss");
    assert_eq!(status(&post(&gateway, "Convert 10 miles to km", &[]).await), "miss");
    indexed(&gateway, 4).await;
    assert_eq!(status(&post(&gateway, "Convert 12 miles to km", &[]).await), "miss");
    assert_eq!(mock.request_count(), 5);

    // The same question under another system prompt is another partition.
    let other = json!({"model": "gpt-4o", "messages": [{"role": "system", "content": "Answer at length."},
        {"role": "user", "content": "How can I reset my password?"}]});
    let other = gateway.post("/v1/chat/completions", &other.to_string()).await;
    assert_eq!(status(&other), "miss");

    let metrics = gateway.admin_get("/metrics").await.text();
    assert!(metrics.contains("loom_ai_cache_requests_total{status=\"semantic_hit\"} 1"), "{metrics}");
    indexed(&gateway, 6).await;
    let stats = gateway.admin_get("/ai/cache").await.json();
    assert_eq!(stats["stats"]["semantic_hits"], 1);
    assert_eq!(stats["stats"]["semantic_entries"], 6, "{stats}");
    assert_eq!(stats["stats"]["semantic_dropped_changes"], 0, "{stats}");
    assert!(stats["stats"]["semantic_memory_bytes"].as_u64().unwrap() >= 6 * 384 * 4, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_without_semantic_lookups_only_hits_exactly() {
    let Some(model) = model_dir() else { return };
    let mock = MockUpstream::start().await;
    let routes = "routes:\n  - id: exact\n    path: /v1/*\n    ai_gateway: true\n    cache: {semantic: {enabled: false}}\n";
    let gateway = TestGateway::start(&format!("{}{routes}", yaml(&mock, &model, ""))).await;
    post(&gateway, "How do I reset my password?", &[]).await;
    assert_eq!(status(&post(&gateway, "How can I reset my password?", &[]).await), "miss");
    assert_eq!(status(&post(&gateway, "How do I reset my password?", &[]).await), "hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semantic_entry_stored_through_one_instance_is_found_by_another() {
    let Some(model) = model_dir() else { return };
    let server = RedisServer::start();
    let mock = MockUpstream::start().await;
    let state = format!(
        "  state:\n    backend: redis\n    url: {}\n    key_prefix: loomsem\n    timeout: 200ms\n",
        server.url()
    );
    let first = TestGateway::start(&yaml(&mock, &model, &state)).await;
    let second = TestGateway::start(&yaml(&mock, &model, &state)).await;

    assert_eq!(status(&post(&first, "What is the capital of Australia?", &[]).await), "miss");
    // The second instance learns of the entry from the stream; it asks without storing,
    // so its own misses leave nothing behind while it waits.
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = Instant::now();
    loop {
        let answer =
            post(&second, "What's the capital city of Australia?", &[("cache-control", "no-store")]).await;
        if status(&answer) == "semantic-hit" {
            break;
        }
        assert!(Instant::now() < deadline, "no semantic hit on the second instance");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("the second instance hit after {:?}", started.elapsed());
}
