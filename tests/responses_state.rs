//! `previous_response_id` on the state backend: two gateways on one real redis-server
//! (`ai_gateway.state: {backend: redis}`) continue each other's conversations, and a
//! Redis that is gone costs the stored turn nothing but refuses a continuation with a 503.
//!
//! The server is `TEST_REDIS_SERVER` or `redis-server` on PATH (`.ci/run` installs it); a
//! missing binary fails the tests.

use loom_e2e::{TestGateway, TestResponse, openai_config};
use loom_test_support::{MockUpstream, RedisServer, fixtures};
use serde_json::{Value, json};

/// `ai_gateway.state` on `server` (failing fast when it is gone) and a 10-minute store.
fn redis_yaml(server: &RedisServer) -> String {
    format!(
        "  state:\n    backend: redis\n    url: {}\n    key_prefix: loomtest\n    timeout: 200ms\n  responses:\n    store_ttl: 10m\n",
        server.url()
    )
}

async fn post_as(gateway: &TestGateway, key: &str, body: &Value) -> TestResponse {
    let bearer = format!("Bearer {key}");
    let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    gateway.post_with("/v1/responses", &headers, &body.to_string()).await
}

/// The `response.completed` event's response of a Responses SSE body.
fn completed(text: &str) -> Value {
    let data = text
        .split("\n\n")
        .find(|event| event.starts_with("event: response.completed\n"))
        .and_then(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .unwrap_or_else(|| panic!("no response.completed in {text}"));
    serde_json::from_str::<Value>(data).expect("json")["response"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_continue_each_others_conversations() {
    let server = RedisServer::start();
    let mock = MockUpstream::start().await;
    let yaml = openai_config(&mock.base_url(), "", &redis_yaml(&server));
    let (a, b) = (TestGateway::start(&yaml).await, TestGateway::start(&yaml).await);

    let first = post_as(&a, "sk-ada", &json!({"model": "gpt-4o", "input": "I am Ada."})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first_id = first.json()["id"].as_str().expect("id").to_owned();

    // Kept on Redis under the prefix, expiring with the store's ttl, holding no key.
    let mut redis = server.connection();
    let key = format!("{{loomtest}}:resp:{first_id}");
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut redis).expect("TTL");
    assert!((590..=600).contains(&ttl), "ttl {ttl}");
    let stored: String = redis::cmd("GET").arg(&key).query(&mut redis).expect("GET");
    let stored: Value = serde_json::from_str(&stored).expect("json");
    assert_eq!(
        stored["messages"],
        json!([{"role": "user", "content": "I am Ada."}, {"role": "assistant", "content": fixtures::CONTENT}])
    );
    let scope = stored["scope"].as_str().expect("scope");
    assert!(scope.len() == 64 && scope.bytes().all(|byte| byte.is_ascii_hexdigit()), "{scope}");
    assert!(!stored.to_string().contains("sk-ada"), "{stored}");

    // The other gateway continues it, streamed; another key cannot.
    let continued =
        json!({"model": "gpt-4o", "input": "Who am I?", "previous_response_id": first_id, "stream": true});
    let stranger = post_as(&b, "sk-bob", &continued).await;
    assert_eq!(stranger.status, 404, "{}", stranger.text());
    assert_eq!(stranger.json()["error"]["code"], json!("previous_response_not_found"));
    let second = post_as(&b, "sk-ada", &continued).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        mock.requests()[1].json()["messages"],
        json!([
            {"role": "user", "content": "I am Ada."},
            {"role": "assistant", "content": fixtures::CONTENT},
            {"role": "user", "content": "Who am I?"}
        ])
    );

    // And the first gateway continues what the second kept from its stream.
    let second_id = completed(&second.text())["id"].as_str().expect("id").to_owned();
    let third = post_as(
        &a,
        "sk-ada",
        &json!({"model": "gpt-4o", "input": "Again?", "previous_response_id": second_id}),
    )
    .await;
    assert_eq!(third.status, 200, "{}", third.text());
    assert_eq!(mock.requests()[2].json()["messages"].as_array().map(Vec::len), Some(5));
    assert_eq!(mock.request_count(), 3, "the stranger reached no upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_turns_are_answered_and_continuations_get_a_503() {
    let mut server = RedisServer::start();
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&openai_config(&mock.base_url(), "", &redis_yaml(&server))).await;
    let kept = post_as(&gateway, "sk-ada", &json!({"model": "gpt-4o", "input": "I am Ada."})).await;
    assert_eq!(kept.status, 200, "{}", kept.text());
    let kept_id = kept.json()["id"].as_str().expect("id").to_owned();
    server.stop();

    // Storing fails quietly: the answer is whole.
    let unkept = post_as(&gateway, "sk-ada", &json!({"model": "gpt-4o", "input": "Hello?"})).await;
    assert_eq!(unkept.status, 200, "{}", unkept.text());
    assert_eq!(unkept.json()["output"][0]["content"][0]["text"], json!(fixtures::CONTENT));

    let continued = post_as(
        &gateway,
        "sk-ada",
        &json!({"model": "gpt-4o", "input": "Who am I?", "previous_response_id": kept_id}),
    )
    .await;
    assert_eq!(continued.status, 503, "{}", continued.text());
    assert_eq!(
        continued.json(),
        json!({"error": {
            "message": "The conversation state backend is unavailable, so `previous_response_id` cannot be continued now; try again later",
            "type": "overloaded_error", "param": "previous_response_id", "code": "conversation_state_unavailable"}})
    );
    assert_eq!(mock.request_count(), 2, "the continuation reached no upstream");
}
