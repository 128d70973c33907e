//! The response cache over the real HTTP surface: exact hits whole and streamed in both
//! client formats, what is never stored, what clients control, tenants kept apart,
//! accounting, metrics and the admin API.

use http::Method;
use loom_e2e::{TestGateway, TestResponse, openai_config, read_whole, sse_json};
use loom_test_support::{MockUpstream, Reply, fixtures};
use serde_json::{Value, json};

const CACHE: &str = "  cache:\n    enabled: true\n";

const QUESTION: &str =
    r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "What is the capital of France?"}]}"#;

fn streamed(body: &str, include_usage: bool) -> String {
    let mut body: Value = serde_json::from_str(body).unwrap();
    body["stream"] = json!(true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body.to_string()
}

/// The answer without what must differ between two answers (id, created).
fn without_identity(mut answer: Value) -> Value {
    let object = answer.as_object_mut().unwrap();
    object.remove("id");
    object.remove("created");
    answer
}

async fn admin(gateway: &TestGateway, method: Method, path: &str) -> TestResponse {
    let url = format!("http://{}{path}", gateway.admin_addr);
    read_whole(gateway.send(method, &url, &[], bytes::Bytes::new()).await).await
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_repeated_question_is_answered_from_the_cache_with_a_fresh_id() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", CACHE)).await;

    let first = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-loom-cache").as_deref(), Some("miss"));
    let second = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.header("x-loom-cache").as_deref(), Some("hit"));
    assert_eq!(mock.request_count(), 1, "the hit never reached the upstream");

    let (first, second) = (first.json(), second.json());
    assert_eq!(without_identity(second.clone()), without_identity(first.clone()));
    assert_eq!(first["id"], fixtures::CHAT_ID);
    assert_ne!(second["id"], first["id"]);
    assert!(second["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(second["created"].as_u64().unwrap() > fixtures::CREATED);

    // Another question, or the same one with another output-changing parameter, misses.
    let other = gateway
        .post(
            "/v1/chat/completions",
            r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "And of Spain?"}]}"#,
        )
        .await;
    assert_eq!(other.header("x-loom-cache").as_deref(), Some("miss"));
    let mut limited: Value = serde_json::from_str(QUESTION).unwrap();
    limited["max_tokens"] = json!(5);
    let limited = gateway.post("/v1/chat/completions", &limited.to_string()).await;
    assert_eq!(limited.header("x-loom-cache").as_deref(), Some("miss"));
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn a_streamed_answer_is_stored_when_it_ends_and_replayed_whole_or_streamed() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", CACHE)).await;
    mock.push_reply(Reply::sse(fixtures::chat_stream_steps("gpt-4o", true)));

    let first = gateway.post("/v1/chat/completions", &streamed(QUESTION, true)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-loom-cache").as_deref(), Some("miss"));
    let missed = sse_json(&first.text());

    // Streamed again: a well-formed stream with the same text and usage, a fresh id.
    let second = gateway.post("/v1/chat/completions", &streamed(QUESTION, true)).await;
    assert_eq!(second.header("x-loom-cache").as_deref(), Some("hit"));
    assert_eq!(second.header("content-type").as_deref(), Some("text/event-stream"));
    assert!(second.text().trim_end().ends_with("data: [DONE]"), "{}", second.text());
    let replayed = sse_json(&second.text());
    let text = |chunks: &[Value]| -> String {
        chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str()).collect()
    };
    assert_eq!(text(&replayed), fixtures::CONTENT);
    assert_eq!(text(&replayed), text(&missed));
    assert_eq!(replayed.last().unwrap()["usage"], missed.last().unwrap()["usage"]);
    assert_eq!(replayed[0]["choices"][0]["delta"]["role"], "assistant");
    let finish: Vec<&Value> = replayed.iter().map(|chunk| &chunk["choices"][0]["finish_reason"]).collect();
    assert!(finish.contains(&&json!("stop")));
    let id = replayed[0]["id"].as_str().unwrap();
    assert_ne!(id, fixtures::CHAT_ID);
    assert!(replayed.iter().all(|chunk| chunk["id"] == id && chunk["object"] == "chat.completion.chunk"));

    // Without include_usage, no usage chunk: the client did not ask.
    let no_usage = gateway.post("/v1/chat/completions", &streamed(QUESTION, false)).await;
    assert_eq!(no_usage.header("x-loom-cache").as_deref(), Some("hit"));
    assert!(sse_json(&no_usage.text()).iter().all(|chunk| chunk.get("usage").is_none_or(Value::is_null)));

    // Whole: the assembled answer.
    let whole = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(whole.header("x-loom-cache").as_deref(), Some("hit"));
    let whole = whole.json();
    assert_eq!(whole["choices"][0]["message"]["content"], fixtures::CONTENT);
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    assert_eq!(whole["usage"]["prompt_tokens"], fixtures::PROMPT_TOKENS);
    assert_eq!(whole["usage"]["completion_tokens"], fixtures::COMPLETION_TOKENS);
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn anthropic_clients_get_hits_in_their_own_format() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", CACHE)).await;
    let body =
        r#"{"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi there"}]}"#;
    let first = gateway.post("/v1/messages", body).await;
    assert_eq!(first.header("x-loom-cache").as_deref(), Some("miss"));
    let second = gateway.post("/v1/messages", body).await;
    assert_eq!(second.header("x-loom-cache").as_deref(), Some("hit"));
    let (first, second) = (first.json(), second.json());
    assert_eq!(second["type"], "message");
    assert_eq!(second["content"], first["content"]);
    assert_eq!(second["usage"], first["usage"]);
    assert_eq!(second["stop_reason"], "end_turn");
    assert_ne!(second["id"], first["id"]);

    let mut stream: Value = serde_json::from_str(body).unwrap();
    stream["stream"] = json!(true);
    let streamed = gateway.post("/v1/messages", &stream.to_string()).await;
    assert_eq!(streamed.header("x-loom-cache").as_deref(), Some("hit"));
    let text = streamed.text();
    let events: Vec<&str> = text.lines().filter_map(|line| line.strip_prefix("event: ")).collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    assert!(events.contains(&"content_block_delta"));
    assert!(text.contains(fixtures::CONTENT), "{text}");
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn errors_and_unfinished_answers_are_never_stored() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", CACHE)).await;

    mock.push_reply(Reply::openai_error(500, "server_error", None, "The server had an error"));
    let failed = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(failed.status, 502, "{}", failed.text());
    let retried = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(retried.status, 200);
    assert_eq!(retried.header("x-loom-cache").as_deref(), Some("miss"), "the 500 was not stored");

    let truncated_question =
        r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "Write a long poem"}]}"#;
    let mut truncated = fixtures::chat_completion("gpt-4o");
    truncated["choices"][0]["finish_reason"] = json!("length");
    mock.push_reply(Reply::json(truncated));
    assert_eq!(gateway.post("/v1/chat/completions", truncated_question).await.status, 200);
    let again = gateway.post("/v1/chat/completions", truncated_question).await;
    assert_eq!(again.header("x-loom-cache").as_deref(), Some("miss"), "a truncated answer was not stored");

    // A stream cut before its end is not stored.
    let cut_question = r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "Cut me off"}]}"#;
    let mut steps = fixtures::chat_stream_steps("gpt-4o", true);
    steps.truncate(3);
    mock.push_reply(Reply::sse(steps));
    let cut = gateway.post("/v1/chat/completions", &streamed(cut_question, true)).await;
    assert_eq!(cut.status, 200);
    let after_cut = gateway.post("/v1/chat/completions", cut_question).await;
    assert_eq!(after_cut.header("x-loom-cache").as_deref(), Some("miss"));
    assert_eq!(mock.request_count(), 6);
}

#[tokio::test]
async fn clients_control_the_cache_with_headers_and_sampled_requests_bypass_it() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", CACHE)).await;
    let json = [("content-type", "application/json")];
    let with = |header: (&'static str, &'static str)| [json[0], header];

    let no_store =
        gateway.post_with("/v1/chat/completions", &with(("cache-control", "no-store")), QUESTION).await;
    assert_eq!(no_store.header("x-loom-cache").as_deref(), Some("miss"));
    let stored = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(stored.header("x-loom-cache").as_deref(), Some("miss"), "no-store kept nothing");
    assert_eq!(
        gateway.post("/v1/chat/completions", QUESTION).await.header("x-loom-cache").as_deref(),
        Some("hit")
    );

    let refreshed =
        gateway.post_with("/v1/chat/completions", &with(("cache-control", "no-cache")), QUESTION).await;
    assert_eq!(refreshed.header("x-loom-cache").as_deref(), Some("miss"));
    let bypassed =
        gateway.post_with("/v1/chat/completions", &with(("x-loom-cache", "bypass")), QUESTION).await;
    assert_eq!(bypassed.header("x-loom-cache").as_deref(), Some("bypass"));
    assert_eq!(mock.request_count(), 4);

    let mut sampled: Value = serde_json::from_str(QUESTION).unwrap();
    sampled["temperature"] = json!(0.7);
    for _ in 0..2 {
        let answer = gateway.post("/v1/chat/completions", &sampled.to_string()).await;
        assert_eq!(answer.header("x-loom-cache").as_deref(), Some("bypass"));
    }
    let mut logprobs: Value = serde_json::from_str(QUESTION).unwrap();
    logprobs["logprobs"] = json!(true);
    let answer = gateway.post("/v1/chat/completions", &logprobs.to_string()).await;
    assert_eq!(
        answer.header("x-loom-cache").as_deref(),
        Some("bypass"),
        "log probabilities are never replayed"
    );
    sampled["temperature"] = json!(0);
    gateway.post("/v1/chat/completions", &sampled.to_string()).await;
    let greedy = gateway.post("/v1/chat/completions", &sampled.to_string()).await;
    assert_eq!(greedy.header("x-loom-cache").as_deref(), Some("hit"), "temperature 0 is cacheable");
    assert_eq!(mock.request_count(), 8);
}

#[tokio::test]
async fn a_route_can_allow_sampled_answers_or_turn_the_cache_off() {
    let mock = MockUpstream::start().await;
    let routes = "routes:\n  - id: sampled\n    path: /sampled/v1/*\n    ai_gateway: true\n    cache: {sampled: true, ttl: 1m}\n  - id: plain\n    path: /v1/*\n    ai_gateway: true\n    cache: {enabled: false}\n";
    let gateway =
        TestGateway::start(&format!("{}{routes}", openai_config(&mock.base_url(), "", CACHE))).await;
    let mut sampled: Value = serde_json::from_str(QUESTION).unwrap();
    sampled["temperature"] = json!(0.7);
    gateway.post("/sampled/v1/chat/completions", &sampled.to_string()).await;
    let hit = gateway.post("/sampled/v1/chat/completions", &sampled.to_string()).await;
    assert_eq!(hit.header("x-loom-cache").as_deref(), Some("hit"));
    let off = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(off.header("x-loom-cache"), None, "caching is off on this route");
    assert_eq!(gateway.post("/v1/chat/completions", QUESTION).await.header("x-loom-cache"), None);
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn tenants_never_see_each_others_answers() {
    let mock = MockUpstream::start().await;
    let keys = "  auth:\n    enabled: true\n    keys:\n      - {id: a, key: lk-a, team: red}\n      - {id: b, key: lk-b, team: red}\n";
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", &format!("{CACHE}{keys}"))).await;
    let as_key = |key: &'static str| [("content-type", "application/json"), ("authorization", key)];
    let first = gateway.post_with("/v1/chat/completions", &as_key("Bearer lk-a"), QUESTION).await;
    assert_eq!(first.header("x-loom-cache").as_deref(), Some("miss"));
    let other = gateway.post_with("/v1/chat/completions", &as_key("Bearer lk-b"), QUESTION).await;
    assert_eq!(other.header("x-loom-cache").as_deref(), Some("miss"), "key b has its own namespace");
    let same = gateway.post_with("/v1/chat/completions", &as_key("Bearer lk-a"), QUESTION).await;
    assert_eq!(same.header("x-loom-cache").as_deref(), Some("hit"));
    assert_eq!(mock.request_count(), 2);

    // Namespaced by team, keys of one team share.
    let mock = MockUpstream::start().await;
    let team = "  cache:\n    enabled: true\n    namespace: team\n";
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", &format!("{team}{keys}"))).await;
    gateway.post_with("/v1/chat/completions", &as_key("Bearer lk-a"), QUESTION).await;
    let shared = gateway.post_with("/v1/chat/completions", &as_key("Bearer lk-b"), QUESTION).await;
    assert_eq!(shared.header("x-loom-cache").as_deref(), Some("hit"));
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn hits_are_accounted_at_no_cost_counted_and_managed_on_the_admin_port() {
    let mock = MockUpstream::start().await;
    let (_dir, ledger) = loom_e2e::ledger_dir("loom-cache-");
    let accounting = format!(
        "  token_accounting:\n    ledger_path: {}\n    flush_interval: 50ms\n    prices:\n      openai/gpt-4o: {{cost_per_1k_input: 0.0025, cost_per_1k_output: 0.01}}\n",
        ledger.display()
    );
    let gateway =
        TestGateway::start(&openai_config(&mock.base_url(), "", &format!("{CACHE}{accounting}"))).await;
    gateway.post("/v1/chat/completions", QUESTION).await;
    gateway.post("/v1/chat/completions", QUESTION).await;

    let rows: Vec<(i64, f64, i64, i64)> =
        loom_e2e::ledger_rows(&ledger, "cache_hit, cost, input_tokens, output_tokens", 2).await;
    let price = 9.0 * 0.0025 / 1000.0 + 6.0 * 0.01 / 1000.0;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0, rows[0].2, rows[0].3), (0, 9, 6));
    assert!((rows[0].1 - price).abs() < 1e-12, "{rows:?}");
    assert_eq!(rows[1], (1, 0.0, 9, 6), "a hit costs nothing and keeps its tokens");

    let metrics = gateway.admin_get("/metrics").await.text();
    assert_eq!(metric(&metrics, "loom_ai_cache_requests_total{status=\"hit\"}"), 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "loom_ai_cache_requests_total{status=\"miss\"}"), 1.0);
    assert_eq!(metric(&metrics, "loom_ai_cache_saved_tokens_total"), 15.0);
    assert!((metric(&metrics, "loom_ai_cache_saved_cost_total") - price).abs() < 1e-12, "{metrics}");
    assert_eq!(
        metric(&metrics, "loom_ai_tokens_total{provider=\"openai\",type=\"input\"}"),
        9.0,
        "{metrics}"
    );

    let stats = admin(&gateway, Method::GET, "/ai/cache").await;
    assert_eq!(stats.status, 200);
    let stats = stats.json();
    assert_eq!(stats["enabled"], true);
    assert_eq!(stats["namespace"], "key");
    assert_eq!(stats["stats"]["entries"], 1);
    assert_eq!((stats["stats"]["hits"].clone(), stats["stats"]["misses"].clone()), (json!(1), json!(1)));
    assert_eq!(stats["stats"]["hit_rate"], 0.5);
    assert!(stats["stats"]["memory_bytes"].as_u64().unwrap() > 0);

    let other_model = admin(&gateway, Method::DELETE, "/ai/cache?model=gpt-4o-mini").await;
    assert_eq!(other_model.json(), json!({"deleted": 0}));
    let cleared = admin(&gateway, Method::DELETE, "/ai/cache?namespace=user%3A-&model=gpt-4o").await;
    assert_eq!(cleared.json(), json!({"deleted": 1}));
    let after = gateway.post("/v1/chat/completions", QUESTION).await;
    assert_eq!(after.header("x-loom-cache").as_deref(), Some("miss"));
    let bad = admin(&gateway, Method::DELETE, "/ai/cache?tenant=x").await;
    assert_eq!(bad.status, 400);
    assert_eq!(admin(&gateway, Method::POST, "/ai/cache").await.status, 405);
}

#[tokio::test]
async fn a_providers_embeddings_endpoint_can_embed_the_questions() {
    let mock = MockUpstream::start().await;
    let cache = "  cache:\n    enabled: true\n    semantic:\n      enabled: true\n      embedder: {provider: openai, model: text-embedding-3-small, dimensions: 4}\n";
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", cache)).await;
    let ask = |question: &str| {
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": question}]}).to_string()
    };
    let first = gateway.post("/v1/chat/completions", &ask("How do I reset my password?")).await;
    assert_eq!(first.header("x-loom-cache").as_deref(), Some("miss"));
    let requests = mock.take_requests();
    assert_eq!(requests.len(), 2, "one embedding, one chat");
    assert_eq!(requests[0].path, "/v1/embeddings");
    assert_eq!(
        requests[0].json(),
        json!({"model": "text-embedding-3-small", "input": "How do I reset my password?"})
    );

    // Indexed off the request path, a moment after the answer is stored.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gateway.admin_get("/ai/cache").await.json()["stats"]["semantic_entries"] != 1 {
        assert!(std::time::Instant::now() < deadline, "the question was never indexed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The mock gives every text the same vector: the question guard decides.
    let paraphrase = gateway.post("/v1/chat/completions", &ask("How can I reset my password?")).await;
    assert_eq!(paraphrase.header("x-loom-cache").as_deref(), Some("semantic-hit"));
    assert_eq!(paraphrase.header("x-loom-cache-similarity").as_deref(), Some("1.0000"));
    let negated = gateway.post("/v1/chat/completions", &ask("How do I not reset my password?")).await;
    assert_eq!(negated.header("x-loom-cache").as_deref(), Some("miss"));
    let paths: Vec<String> = mock.take_requests().into_iter().map(|request| request.path).collect();
    assert_eq!(paths, ["/v1/embeddings", "/v1/embeddings", "/v1/chat/completions"]);

    // An embeddings endpoint that fails is a miss, never an error.
    mock.push_reply(Reply::openai_error(500, "server_error", None, "down"));
    let failed = gateway.post("/v1/chat/completions", &ask("What is a good password manager?")).await;
    assert_eq!(failed.status, 200, "{}", failed.text());
    assert_eq!(failed.header("x-loom-cache").as_deref(), Some("miss"));
}
