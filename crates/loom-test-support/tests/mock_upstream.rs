//! Drives the mock upstream with a real hyper client over loopback.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use loom_test_support::{Gate, MockUpstream, Reply, SseStep, fixtures};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(client: &HttpClient, method: Method, url: &str, body: Option<&Value>) -> Response<Incoming> {
    let mut builder = Request::builder().method(method).uri(url);
    let bytes = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    let request = builder.body(Full::new(bytes)).unwrap();
    tokio::time::timeout(WAIT, client.request(request))
        .await
        .expect("request timed out")
        .expect("request failed")
}

async fn post(client: &HttpClient, url: &str, body: &Value) -> Response<Incoming> {
    send(client, Method::POST, url, Some(body)).await
}

async fn text(response: Response<Incoming>) -> String {
    let bytes = tokio::time::timeout(WAIT, response.into_body().collect())
        .await
        .expect("body timed out")
        .expect("body failed")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn json_body(response: Response<Incoming>) -> Value {
    serde_json::from_str(&text(response).await).unwrap()
}

fn header(response: &Response<Incoming>, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// The `data:` payloads of an SSE body, in order.
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| event.strip_prefix("data: ").unwrap().to_owned())
        .collect()
}

/// Read body frames until `buf` holds `n` complete SSE events (or the time runs out).
async fn read_events(
    response: &mut Response<Incoming>,
    buf: &mut String,
    n: usize,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while buf.matches("\n\n").count() < n {
        match tokio::time::timeout_at(deadline, response.body_mut().frame()).await {
            Ok(Some(frame)) => {
                if let Ok(data) = frame.unwrap().into_data() {
                    buf.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
            Ok(None) | Err(_) => return false,
        }
    }
    true
}

fn chat_request(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn default_chat_completion_is_openai_shaped() {
    let mock = MockUpstream::start().await;
    let response = post(&client(), &mock.url("/chat/completions"), &chat_request("gpt-4o-mini")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("application/json"));
    assert_eq!(header(&response, "x-request-id").as_deref(), Some("req_mock_1"));
    let body = json_body(response).await;
    assert_eq!(body, fixtures::chat_completion("gpt-4o-mini"));
    assert_eq!(body["id"], "chatcmpl-mock");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["created"], 1_700_000_000);
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello from the mock upstream");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 9);
    assert_eq!(body["usage"]["completion_tokens"], 6);
    assert_eq!(body["usage"]["total_tokens"], 15);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(body["usage"]["completion_tokens_details"]["reasoning_tokens"], 0);
    assert!(body["system_fingerprint"].is_string());
}

#[tokio::test]
async fn model_with_escapes_is_echoed_verbatim() {
    let mock = MockUpstream::start().await;
    let model = "weird \"model\" \\ ünï";
    let body = json_body(post(&client(), &mock.url("/chat/completions"), &chat_request(model)).await).await;
    assert_eq!(body, fixtures::chat_completion(model));
}

#[tokio::test]
async fn default_chat_stream_is_the_exact_openai_sequence() {
    let mock = MockUpstream::start().await;
    let mut request = chat_request("gpt-4o");
    request["stream"] = json!(true);
    let response = post(&client(), &mock.url("/chat/completions"), &request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("text/event-stream"));
    let body = text(response).await;

    let expected: String = fixtures::chat_stream_chunks("gpt-4o", false)
        .iter()
        .map(|chunk| format!("data: {chunk}\n\n"))
        .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
        .collect();
    assert_eq!(body, expected);

    let data = sse_data(&body);
    assert_eq!(data.len(), 8);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..7].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let pieces: Vec<&str> =
        chunks[1..6].iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
    assert_eq!(pieces, ["Hello", " from", " the", " mock", " upstream"]);
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "chatcmpl-mock");
        assert_eq!(chunk["model"], "gpt-4o");
        assert!(chunk.get("usage").is_none(), "no usage without include_usage");
    }
    assert_eq!(mock.dropped_streams(), 0, "a finished stream is not dropped");
}

#[tokio::test]
async fn include_usage_adds_usage_null_and_a_final_usage_chunk() {
    let mock = MockUpstream::start().await;
    let mut request = chat_request("gpt-4o");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let body = text(post(&client(), &mock.url("/chat/completions"), &request).await).await;
    let data = sse_data(&body);
    assert_eq!(data.len(), 9);
    assert_eq!(data[8], "[DONE]");
    let chunks: Vec<Value> = data[..8].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(chunks, fixtures::chat_stream_chunks("gpt-4o", true));
    for chunk in &chunks[..7] {
        assert!(chunk["usage"].is_null());
        assert!(chunk.get("usage").is_some(), "usage: null is present");
    }
    assert_eq!(chunks[7]["choices"], json!([]));
    assert_eq!(chunks[7]["usage"]["total_tokens"], 15);

    // include_usage: false behaves like no stream_options at all.
    request["stream_options"] = json!({"include_usage": false});
    let body = text(post(&client(), &mock.url("/chat/completions"), &request).await).await;
    assert_eq!(sse_data(&body).len(), 8);
}

#[tokio::test]
async fn embeddings_answer_one_vector_per_input() {
    let mock = MockUpstream::start().await;
    let client = client();
    let url = mock.url("/embeddings");

    let request = json!({"model": "text-embedding-3-small", "input": ["a", "b", "c"]});
    let body = json_body(post(&client, &url, &request).await).await;
    assert_eq!(body, fixtures::embeddings("text-embedding-3-small", 3));
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    for (i, item) in body["data"].as_array().unwrap().iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"].as_array().unwrap().len(), 4);
    }
    assert_ne!(body["data"][0]["embedding"], body["data"][1]["embedding"]);
    assert_eq!(body["usage"]["prompt_tokens"], body["usage"]["total_tokens"]);

    let request = json!({"model": "text-embedding-3-small", "input": "just one"});
    let body = json_body(post(&client, &url, &request).await).await;
    assert_eq!(body, fixtures::embeddings("text-embedding-3-small", 1));

    let request = json!({"model": "m", "input": [1, 2, 3]});
    let body = json_body(post(&client, &url, &request).await).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "a token array is one input");

    let request = json!({"model": "m", "input": ["x", "y"], "encoding_format": "base64"});
    let body = json_body(post(&client, &url, &request).await).await;
    assert_eq!(body, fixtures::embeddings_with("m", 2, true));
    // 4 little-endian f32s: [0.5, -0.25, 0.125, 1.0]
    assert_eq!(body["data"][0]["embedding"], "AAAAPwAAgL4AAAA+AACAPw==");

    let response = post(&client, &url, &json!({"model": "m"})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

async fn get_with(client: &HttpClient, url: &str, headers: &[(&str, &str)]) -> Response<Incoming> {
    let mut builder = Request::builder().method(Method::GET).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    client.request(builder.body(Full::new(Bytes::new())).unwrap()).await.expect("request failed")
}

#[tokio::test]
async fn model_lists_in_each_format_are_paged_scripted_and_recorded_apart() {
    let mock = MockUpstream::start().await;
    let client = client();
    mock.set_models(&["a", "b", "c"]);
    mock.set_models_page_size(2);
    let openai = json_body(send(&client, Method::GET, &mock.url("/models"), None).await).await;
    assert_eq!(openai, fixtures::models_list(&["a", "b", "c"]));

    let anthropic = [("anthropic-version", "2023-06-01")];
    let first = json_body(get_with(&client, &mock.url("/models?limit=1000"), &anthropic).await).await;
    assert_eq!(first, loom_test_support::anthropic_fixtures::models_page(&["a", "b"], true));
    assert_eq!(first["last_id"], "b");
    let url = mock.url("/models?limit=1000&after_id=b");
    let last = json_body(get_with(&client, &url, &anthropic).await).await;
    assert_eq!(last, loom_test_support::anthropic_fixtures::models_page(&["c"], false));

    let gemini = format!("http://{}/v1beta/models?pageSize=1000", mock.addr());
    let first = json_body(get_with(&client, &gemini, &[]).await).await;
    assert_eq!(first, loom_test_support::gemini_fixtures::models_page(&["a", "b"], Some("2")));
    assert_eq!(first["models"][0]["name"], "models/a");
    let last = json_body(get_with(&client, &format!("{gemini}&pageToken=2"), &[]).await).await;
    assert_eq!(last, loom_test_support::gemini_fixtures::models_page(&["c"], None));

    // A scripted list reply is used once; the queue of other requests is left alone.
    mock.push_reply(Reply::rate_limited(1));
    mock.push_models_reply(Reply::json_status(503, json!({"error": {"message": "down"}})));
    let response = send(&client, Method::GET, &mock.url("/models"), None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = send(&client, Method::GET, &mock.url("/models"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(mock.pending_replies(), 1);

    assert!(mock.wait_for_model_list_requests(7, WAIT).await);
    let listed = mock.model_list_requests();
    let paths: Vec<_> = listed.iter().map(|request| request.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/models",
            "/v1/models",
            "/v1/models",
            "/v1beta/models",
            "/v1beta/models",
            "/v1/models",
            "/v1/models"
        ]
    );
    assert_eq!(listed[2].query.as_deref(), Some("limit=1000&after_id=b"));
    assert_eq!(listed[2].header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert_eq!(mock.request_count(), 0);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn models_and_unknown_routes() {
    let mock = MockUpstream::start().await;
    let client = client();

    let response = send(&client, Method::GET, &mock.url("/models"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body, fixtures::models());
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["object"], "model");

    let response = send(&client, Method::GET, &mock.url("/models/gpt-4o"), None).await;
    assert_eq!(json_body(response).await, fixtures::model("gpt-4o"));

    let response = send(&client, Method::GET, &mock.url("/models/nope"), None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(response).await["error"]["code"], "model_not_found");

    let response = post(&client, &mock.url("/nope"), &json!({})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = json_body(response).await;
    assert_eq!(
        body,
        json!({"error": {
            "message": "Invalid URL (POST /v1/nope)",
            "type": "invalid_request_error",
            "param": null,
            "code": null
        }})
    );

    let response = send(&client, Method::GET, &mock.url("/chat/completions"), None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_chat_bodies_get_openai_400s() {
    let mock = MockUpstream::start().await;
    let client = client();
    let url = mock.url("/chat/completions");

    let request = Request::post(&url).body(Full::new(Bytes::from_static(b"{not json"))).unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("We could not parse the JSON body"));

    let response = post(&client, &url, &json!({"messages": []})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["error"]["message"], "you must provide a model parameter");

    let response = post(&client, &url, &json!({"model": 5})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn queued_replies_are_consumed_fifo_then_the_default() {
    let mock = MockUpstream::start().await;
    let client = client();
    let url = mock.url("/chat/completions");
    mock.push_reply(Reply::rate_limited(7));
    mock.push_reply(Reply::raw(200, "{\"id\": truncated"));
    mock.push_reply(Reply::chat_completion_with("queued-model", "scripted").with_header("x-extra", "1"));
    mock.push_reply(Reply::openai_error(
        401,
        "invalid_request_error",
        Some("invalid_api_key"),
        "Incorrect API key provided",
    ));
    assert_eq!(mock.pending_replies(), 4);

    let response = post(&client, &url, &chat_request("m")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "retry-after").as_deref(), Some("7"));
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["param"], Value::Null);

    let response = post(&client, &url, &chat_request("m")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("application/json"));
    assert_eq!(text(response).await, "{\"id\": truncated");

    let response = post(&client, &url, &chat_request("m")).await;
    assert_eq!(header(&response, "x-extra").as_deref(), Some("1"));
    let body = json_body(response).await;
    assert_eq!(body["model"], "queued-model");
    assert_eq!(body["choices"][0]["message"]["content"], "scripted");

    let response = post(&client, &url, &chat_request("m")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json_body(response).await,
        json!({"error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_api_key"
        }})
    );
    assert_eq!(mock.pending_replies(), 0);

    let response = post(&client, &url, &chat_request("m")).await;
    assert_eq!(json_body(response).await, fixtures::chat_completion("m"));
}

#[tokio::test]
async fn default_reply_can_be_replaced_and_restored() {
    let mock = MockUpstream::start().await;
    let client = client();
    let url = mock.url("/chat/completions");
    mock.set_default_reply(Reply::server_error());
    mock.push_reply(Reply::chat_completion("first"));

    let response = post(&client, &url, &chat_request("m")).await;
    assert_eq!(response.status(), StatusCode::OK, "the queue comes first");
    text(response).await;
    for _ in 0..2 {
        let response = post(&client, &url, &chat_request("m")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(json_body(response).await["error"]["type"], "server_error");
    }
    mock.clear_default_reply();
    let response = post(&client, &url, &chat_request("m")).await;
    assert_eq!(response.status(), StatusCode::OK);
    text(response).await;
}

#[tokio::test]
async fn gate_pauses_the_stream_after_the_first_frame() {
    let mock = MockUpstream::start().await;
    let gate = Gate::new();
    mock.push_reply(Reply::sse(vec![
        SseStep::Data("first".into()),
        SseStep::Gate(gate.clone()),
        SseStep::Event { event: "second".into(), data: "{}".into() },
        SseStep::Comment("ping".into()),
        SseStep::done(),
    ]));
    let mut response = post(&client(), &mock.url("/chat/completions"), &chat_request("m")).await;
    assert_eq!(header(&response, "content-type").as_deref(), Some("text/event-stream"));

    let mut buf = String::new();
    assert!(
        read_events(&mut response, &mut buf, 1, WAIT).await,
        "the first frame arrives while the gate is closed"
    );
    assert_eq!(buf, "data: first\n\n");
    assert!(!gate.is_open());
    assert_eq!(gate.waiting(), 1, "the stream is parked at the gate");
    assert!(
        !read_events(&mut response, &mut buf, 2, Duration::from_millis(200)).await,
        "nothing passes a closed gate"
    );

    gate.open();
    let rest = text(response).await;
    assert_eq!(
        format!("{buf}{rest}"),
        "data: first\n\nevent: second\ndata: {}\n\n: ping\n\ndata: [DONE]\n\n"
    );
    assert_eq!(mock.dropped_streams(), 0);
}

#[tokio::test]
async fn gate_opened_before_the_stream_reaches_it_does_not_block() {
    let mock = MockUpstream::start().await;
    let gate = Gate::new();
    gate.open();
    mock.push_reply(Reply::sse(vec![
        SseStep::Gate(gate.clone()),
        SseStep::Data("x".into()),
        SseStep::Gate(gate),
        SseStep::done(),
    ]));
    let response = post(&client(), &mock.url("/chat/completions"), &chat_request("m")).await;
    assert_eq!(text(response).await, "data: x\n\ndata: [DONE]\n\n");
}

#[tokio::test]
async fn dropped_stream_is_counted() {
    let mock = MockUpstream::start().await;
    let gate = Gate::new();
    mock.push_reply(Reply::sse(vec![
        SseStep::Data("first".into()),
        SseStep::Gate(gate.clone()),
        SseStep::done(),
    ]));
    let mut response = post(&client(), &mock.url("/chat/completions"), &chat_request("m")).await;
    let mut buf = String::new();
    assert!(read_events(&mut response, &mut buf, 1, WAIT).await);
    assert_eq!(mock.dropped_streams(), 0);
    drop(response);
    assert!(mock.wait_for_dropped_stream(WAIT).await);
    assert_eq!(mock.dropped_streams(), 1);
    assert_eq!(gate.waiting(), 0, "the dropped stream no longer waits");

    // The server keeps serving afterwards.
    let response = post(&client(), &mock.url("/chat/completions"), &chat_request("m")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn hang_does_not_block_other_requests() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::Hang);
    let client = client();
    let hung = {
        let client = client.clone();
        let url = mock.url("/chat/completions");
        tokio::spawn(async move {
            let request =
                Request::post(url).body(Full::new(Bytes::from(chat_request("m").to_string()))).unwrap();
            client.request(request).await
        })
    };
    assert!(mock.wait_for_requests(1, WAIT).await);

    let started = Instant::now();
    let response = post(&client, &mock.url("/chat/completions"), &chat_request("m")).await;
    assert_eq!(response.status(), StatusCode::OK);
    text(response).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(mock.request_count(), 2);
    assert!(!hung.is_finished(), "the hung request never gets an answer");
    hung.abort();
}

#[tokio::test]
async fn delay_waits_before_answering() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::delayed(Duration::from_millis(150), Reply::rate_limited(1)));
    let started = Instant::now();
    let response = post(&client(), &mock.url("/chat/completions"), &chat_request("m")).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sse_delay_steps_pause_between_frames() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::sse(vec![
        SseStep::Data("a".into()),
        SseStep::Delay(Duration::from_millis(100)),
        SseStep::Data("b".into()),
    ]));
    let started = Instant::now();
    let response = post(&client(), &mock.url("/chat/completions"), &chat_request("m")).await;
    assert_eq!(text(response).await, "data: a\n\ndata: b\n\n");
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn close_drops_the_connection_without_an_answer() {
    let mock = MockUpstream::start().await;
    mock.push_reply(Reply::Close);
    let client = client();
    let request = Request::post(mock.url("/chat/completions"))
        .body(Full::new(Bytes::from(chat_request("m").to_string())))
        .unwrap();
    let result = tokio::time::timeout(WAIT, client.request(request)).await.expect("Close must not hang");
    assert!(result.is_err(), "no response for Reply::Close");
    assert_eq!(mock.request_count(), 1);

    let response = post(&client, &mock.url("/chat/completions"), &chat_request("m")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn reset_mid_body_sends_the_head_and_part_of_the_body_then_drops_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mock = MockUpstream::start().await;
    let partial = r#"{"id":"chatcmpl-1","choices":[{"#;
    mock.push_reply(Reply::reset_mid_body(200, partial).with_header("x-scripted", "yes"));
    let mut tcp = tokio::net::TcpStream::connect(mock.addr()).await.unwrap();
    let body = chat_request("m").to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // No `connection: close`: the read ends only because the mock drops the connection.
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response)).await.expect("the mock closes").unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, sent) = response.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", partial.len() * 2 + 64)), "{head}");
    assert!(head.contains("\r\ncontent-type: application/json\r\n"), "{head}");
    assert!(head.contains("\r\nx-scripted: yes"), "{head}");
    assert_eq!(sent, partial);

    // A real client sees the head, then a body that fails.
    mock.push_reply(Reply::reset_mid_body(200, partial));
    let response = post(&client(), &mock.url("/chat/completions"), &chat_request("m")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let read = tokio::time::timeout(WAIT, response.into_body().collect()).await.expect("body ends");
    assert!(read.is_err(), "the body is cut off");
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_headers_and_body() {
    let mock = MockUpstream::start().await;
    let client = client();
    let request = Request::post(format!("{}?api-version=2024-10-21", mock.url("/chat/completions")))
        .header("authorization", "Bearer sk-test")
        .header("x-custom", "yes")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat_request("first").to_string())))
        .unwrap();
    text(client.request(request).await.unwrap()).await;
    text(send(&client, Method::GET, &mock.url("/models/gpt-4o"), None).await).await;

    assert!(mock.wait_for_requests(2, WAIT).await);
    assert!(!mock.wait_for_requests(3, Duration::from_millis(50)).await);
    assert_eq!(mock.request_count(), 2);
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);

    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(first.header("authorization").as_deref(), Some("Bearer sk-test"));
    assert_eq!(first.header("X-Custom").as_deref(), Some("yes"));
    assert_eq!(first.header("missing"), None);
    assert_eq!(first.json(), chat_request("first"));
    assert_eq!(first.version, Version::HTTP_11);

    let second = &requests[1];
    assert_eq!(second.method, "GET");
    assert_eq!(second.path, "/v1/models/gpt-4o");
    assert_eq!(second.query, None);
    assert!(second.body.is_empty());
    assert!(second.try_json().is_err());

    assert_eq!(mock.last_request().unwrap().path, "/v1/models/gpt-4o");
    assert_eq!(mock.take_requests().len(), 2);
    assert!(mock.requests().is_empty());
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let mock = MockUpstream::start().await;
    let client = client();
    for _ in 0..3 {
        text(post(&client, &mock.url("/chat/completions"), &chat_request("m")).await).await;
    }
    assert_eq!(mock.request_count(), 3);
    assert_eq!(mock.connection_count(), 1);
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let mock = MockUpstream::start().await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let mut request = chat_request("m");
    request["stream"] = json!(true);
    let response = post(&client, &mock.url("/chat/completions"), &request).await;
    assert_eq!(response.version(), Version::HTTP_2);
    assert!(text(response).await.ends_with("data: [DONE]\n\n"));
    assert_eq!(mock.requests()[0].version, Version::HTTP_2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections() {
    let mock = MockUpstream::start_unrecorded().await;
    let url = mock.url("/chat/completions");
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                // A client per task forces a connection per task.
                let client = client();
                let mut request = chat_request(&format!("model-{i}"));
                request["stream"] = json!(i % 2 == 0);
                let response = post(&client, &url, &request).await;
                assert_eq!(response.status(), StatusCode::OK);
                text(response).await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let body = task.await.unwrap();
        assert!(body.contains(&format!("\"model-{i}\"")));
    }
    assert_eq!(mock.request_count(), 200);
    assert!(mock.requests().is_empty(), "nothing recorded when unrecorded");
    assert!(mock.connection_count() >= 200);
}

#[tokio::test]
async fn server_stops_when_the_last_handle_drops() {
    let mock = MockUpstream::start().await;
    let addr = mock.addr();
    let clone = mock.clone();
    drop(mock);
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok(), "a clone keeps it alive");
    drop(clone);
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "listener still open after the last drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let mock = MockUpstream::start().await;
    mock.shutdown();
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(mock.addr()).await.is_ok() {
        assert!(Instant::now() < deadline, "listener still open after shutdown");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn start_on_binds_the_given_address() {
    let mock = MockUpstream::start_on("127.0.0.1:0".parse().unwrap(), true).await.unwrap();
    assert_eq!(mock.base_url(), format!("http://{}/v1", mock.addr()));
    assert_ne!(mock.addr().port(), 0);
    let taken = MockUpstream::start_on(mock.addr(), true).await;
    assert!(taken.is_err(), "a port in use is an error, not a panic");
}

#[tokio::test]
async fn dropped_http2_stream_is_counted() {
    let mock = MockUpstream::start().await;
    assert!(!mock.wait_for_dropped_stream(Duration::from_millis(50)).await);
    let gate = Gate::new();
    mock.push_reply(Reply::sse(vec![
        SseStep::Data("first".into()),
        SseStep::Gate(gate.clone()),
        SseStep::done(),
    ]));
    let client: HttpClient = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let mut response = post(&client, &mock.url("/chat/completions"), &chat_request("m")).await;
    let mut buf = String::new();
    assert!(read_events(&mut response, &mut buf, 1, WAIT).await);
    drop(response);
    assert!(mock.wait_for_dropped_stream(WAIT).await);
    // The HTTP/2 connection itself survives the reset stream.
    let response = post(&client, &mock.url("/models"), &json!({})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(mock.connection_count(), 1);
}
