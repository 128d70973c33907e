//! Failover on broken answers: a 200 whose body is not the provider's format (HTML,
//! malformed or wrong-shaped JSON), is cut off mid-body, or is a stream whose first event
//! is invalid has reached no client yet, so the next provider is asked; a stream that
//! breaks after its first chunk is not retried.

use loom_e2e::{Pair, sse_data};
use loom_test_support::{Reply, SseStep, fixtures};
use serde_json::{Value, json};

const HELLO: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;
const HELLO_STREAM: &str = r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;

/// What the backup answers a whole request with.
const BACKUP_SAYS: &str = "The backup answers";

/// Broken whole answers after a 200, by name.
fn broken_answers() -> Vec<(&'static str, Reply)> {
    vec![
        (
            "html",
            Reply::Raw {
                status: 200,
                headers: vec![("content-type".to_owned(), "text/html".to_owned())],
                body: "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned(),
            },
        ),
        ("truncated JSON", Reply::raw(200, r#"{"choices": ["#)),
        ("wrong-shaped JSON", Reply::json(json!({"status": "ok", "result": {"text": "Hi"}}))),
        (
            "reset mid-body",
            Reply::reset_mid_body(200, r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"#),
        ),
    ]
}

/// The backup's whole answer, as its mock serializes it.
fn backup_answer() -> Value {
    let mut body = fixtures::chat_completion("gpt-4o");
    body["choices"][0]["message"]["content"] = Value::String(BACKUP_SAYS.to_owned());
    body
}

/// Asserts that the broken answer `name` of the primary fails over to the backup.
async fn fails_over_to_the_backup(name: &str) {
    let Some((_, broken)) = broken_answers().into_iter().find(|(each, _)| *each == name) else {
        panic!("no broken answer named {name}");
    };
    let pair = Pair::start(true, "").await;
    pair.primary.push_reply(broken);
    pair.backup.push_reply(Reply::json(backup_answer()));
    let response = pair.gateway.post("/v1/chat/completions", HELLO).await;
    assert_eq!(response.status, 200, "{name}: {}", response.text());
    assert_eq!(response.header("x-loom-provider").as_deref(), Some("backup"), "{name}");
    assert_eq!(response.text(), backup_answer().to_string(), "{name}: the backup's answer, unchanged");
    assert_eq!(pair.requests(), (1, 1), "{name}: one request each");
    assert_eq!(
        pair.provider_state("primary").await["breaker"]["consecutive_failures"],
        1,
        "{name}: counted against the primary"
    );
    assert_eq!(pair.provider_state("backup").await["breaker"]["consecutive_failures"], 0, "{name}");
}

#[tokio::test]
async fn an_html_answer_fails_over_to_the_backup() {
    fails_over_to_the_backup("html").await;
}

#[tokio::test]
async fn truncated_json_fails_over_to_the_backup() {
    fails_over_to_the_backup("truncated JSON").await;
}

#[tokio::test]
async fn wrong_shaped_json_fails_over_to_the_backup() {
    fails_over_to_the_backup("wrong-shaped JSON").await;
}

#[tokio::test]
async fn a_reset_mid_body_fails_over_to_the_backup() {
    fails_over_to_the_backup("reset mid-body").await;
}

#[tokio::test]
async fn a_broken_whole_answer_without_failover_is_a_502() {
    let mut messages = Vec::new();
    for (name, broken) in broken_answers() {
        let pair = Pair::start(false, "").await;
        pair.primary.push_reply(broken);
        let response = pair.gateway.post("/v1/chat/completions", HELLO).await;
        assert_eq!(response.status, 502, "{name}: {}", response.text());
        let error = response.json();
        let message = error["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert_eq!(
            error,
            json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": null}}),
            "{name}"
        );
        assert_eq!(pair.requests(), (1, 0), "{name}: no failover when it is off");
        messages.push(message);
    }
    let invalid = "provider `primary` sent an invalid response";
    assert_eq!(
        messages,
        [
            format!("{invalid}: unexpected JSON: an answer must be a JSON object"),
            format!("{invalid}: unexpected JSON: EOF while parsing a list at line 1 column 13"),
            format!("{invalid}: unexpected JSON: missing field `id` at line 1 column 38"),
            format!("{invalid}: reading the body failed: error reading a body from connection"),
        ]
    );
}

/// The `data:` payloads of the default stream for `gpt-4o`, `[DONE]` last.
fn backup_stream_data() -> Vec<String> {
    fixtures::chat_stream_chunks("gpt-4o", false)
        .iter()
        .map(Value::to_string)
        .chain(std::iter::once("[DONE]".to_owned()))
        .collect()
}

#[tokio::test]
async fn a_stream_whose_first_event_is_invalid_fails_over_to_the_backup() {
    let pair = Pair::start(true, "").await;
    let mut steps = vec![SseStep::Data("<html>upstream proxy error</html>".to_owned())];
    steps.extend(fixtures::chat_stream_steps("gpt-4o", false));
    pair.primary.push_reply(Reply::sse(steps));
    pair.backup.push_reply(Reply::chat_stream("gpt-4o", false));
    let response = pair.gateway.post("/v1/chat/completions", HELLO_STREAM).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-loom-provider").as_deref(), Some("backup"));
    assert_eq!(sse_data(&response.text()), backup_stream_data(), "the backup's stream, unchanged");
    assert_eq!(pair.requests(), (1, 1));
    assert_eq!(pair.provider_state("primary").await["breaker"]["consecutive_failures"], 1);
}

#[tokio::test]
async fn a_stream_whose_first_event_is_invalid_without_failover_is_a_502() {
    let pair = Pair::start(false, "").await;
    pair.primary.push_reply(Reply::sse(vec![SseStep::Data("{\"choices\": [".to_owned())]));
    let response = pair.gateway.post("/v1/chat/completions", HELLO_STREAM).await;
    assert_eq!(response.status, 502, "{}", response.text());
    let message = response.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        message,
        "provider `primary` sent an invalid response: unexpected JSON: EOF while parsing a list at line 1 column 13"
    );
    assert_eq!(pair.requests(), (1, 0));
}

#[tokio::test]
async fn a_stream_that_breaks_after_its_first_chunk_is_not_retried() {
    let pair = Pair::start(true, "").await;
    let first = fixtures::chat_stream_chunks("gpt-4o", false)[0].to_string();
    pair.primary.push_reply(Reply::sse(vec![
        SseStep::Data(first.clone()),
        SseStep::Data("<html>upstream proxy error</html>".to_owned()),
    ]));
    let response = pair.gateway.post("/v1/chat/completions", HELLO_STREAM).await;
    assert_eq!(response.status, 200, "the client had the first chunk: {}", response.text());
    assert_eq!(response.header("x-loom-provider").as_deref(), Some("primary"));
    let error = json!({"error": {
        "message": "provider `primary` sent an invalid response: unexpected JSON: a stream chunk must be a JSON object",
        "type": "upstream_error",
        "param": null,
        "code": null,
    }});
    let data = sse_data(&response.text());
    assert_eq!(data.len(), 2, "the first chunk, then the error: {data:?}");
    assert_eq!(data[0], first, "the first chunk reached the client unchanged");
    assert_eq!(serde_json::from_str::<Value>(&data[1]).ok(), Some(error), "then the error, in the stream");
    assert_eq!(pair.requests(), (1, 0), "the backup got no request");
}
