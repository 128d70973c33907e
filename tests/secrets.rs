//! Secrets never leave: upstream errors that echo a provider's API key or a configured
//! header value (raw, as `Bearer`, URL-encoded, base64) reach no client, whichever front
//! door, provider format, status, or stream phase; and `Retry-After` is clamped.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use loom_e2e::{TestGateway, TestResponse};
use loom_gateway::config::LoomConfig;
use loom_test_support::{MockUpstream, Reply, SseStep, anthropic_fixtures, fixtures, gemini_fixtures};
use serde_json::{Value, json};

/// Secrets without a key-shaped prefix, so only the configured-secret scrubbing can
/// catch them; `/`, `+` and `=` make every encoding differ from the raw value.
const OPENAI_KEY: &str = "loomtest/OpenAI+Key=0123456789abcdef";
const OPENAI_HEADER: &str = "hdr/OpenAI+Custom=42abcdefgh";
const ANTHROPIC_KEY: &str = "loomtest/Anthropic+Key=0123456789abcdef";
const ANTHROPIC_HEADER: &str = "hdr/Anthropic+Custom=42abcdefgh";
const ALL_SECRETS: [&str; 4] = [OPENAI_KEY, OPENAI_HEADER, ANTHROPIC_KEY, ANTHROPIC_HEADER];

const STATUSES: [u16; 7] = [400, 401, 403, 404, 422, 429, 500];

/// An OpenAI-format provider (`compat`, model `gpt-echo`) and an Anthropic one
/// (`claude`, model `claude-echo`), each with a key and an `x-custom-auth` header.
fn config(mock: &MockUpstream) -> String {
    format!(
        "server:
  workers: 1
ai_gateway:
  providers:
    - name: compat
      type: openai
      api_key: \"{OPENAI_KEY}\"
      base_url: {openai_url}
      models: [gpt-echo]
      headers:
        x-custom-auth: \"{OPENAI_HEADER}\"
    - name: claude
      type: anthropic
      api_key: \"{ANTHROPIC_KEY}\"
      base_url: http://{addr}
      models: [claude-echo]
      headers:
        x-custom-auth: \"{ANTHROPIC_HEADER}\"
  routing:
    health:
      failure_threshold: 1000000
",
        openai_url = mock.base_url(),
        addr = mock.addr(),
    )
}

/// The forms an upstream echoes a secret in.
fn echoed_forms(secret: &str) -> [String; 4] {
    [secret.to_owned(), format!("Bearer {secret}"), percent_encoded(secret), STANDARD.encode(secret)]
}

/// Every form of a secret that must not reach a client.
fn leaked_forms(secret: &str) -> Vec<String> {
    vec![
        secret.to_owned(),
        secret.replace('/', "\\/"),
        percent_encoded(secret),
        percent_encoded(secret).to_lowercase(),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
    ]
}

/// Every byte not alphanumeric as `%XX` (what URL and form encoders do to `/`, `+`, `=`).
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(
            |byte| {
                if byte.is_ascii_alphanumeric() { (byte as char).to_string() } else { format!("%{byte:02X}") }
            },
        )
        .collect()
}

/// An error body echoing `secret`: every form in the message, one form each (rotating
/// with `turn`) in `type`, `param` and `code`.
fn echo_error(secret: &str, turn: usize, anthropic: bool) -> Value {
    let forms = echoed_forms(secret);
    let pick = |offset: usize| forms[(turn + offset) % forms.len()].clone();
    let error = json!({
        "message": format!("Invalid credentials: {}", forms.join(" | ")),
        "type": pick(0),
        "param": pick(1),
        "code": pick(2),
    });
    if anthropic { json!({"type": "error", "error": error}) } else { json!({"error": error}) }
}

/// The message every echoed error becomes once scrubbed.
const SCRUBBED: &str = "Invalid credentials: [redacted] | Bearer [redacted] | [redacted] | [redacted]";

#[derive(Clone, Copy, Debug)]
enum Door {
    OpenAi,
    Anthropic,
}

#[derive(Clone, Copy, Debug)]
struct Provider {
    name: &'static str,
    model: &'static str,
    anthropic: bool,
    secrets: [&'static str; 2],
}

const PROVIDERS: [Provider; 2] = [
    Provider { name: "compat", model: "gpt-echo", anthropic: false, secrets: [OPENAI_KEY, OPENAI_HEADER] },
    Provider {
        name: "claude",
        model: "claude-echo",
        anthropic: true,
        secrets: [ANTHROPIC_KEY, ANTHROPIC_HEADER],
    },
];

async fn ask(gateway: &TestGateway, door: Door, model: &str, stream: bool) -> TestResponse {
    match door {
        Door::OpenAi => {
            let body =
                json!({"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": stream});
            gateway.post("/v1/chat/completions", &body.to_string()).await
        }
        Door::Anthropic => {
            let body = json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}], "stream": stream});
            gateway.post("/v1/messages", &body.to_string()).await
        }
    }
}

/// Fails if any form of any configured secret is in the response, headers included.
fn assert_no_secret(response: &TestResponse, case: &str) {
    let mut visible = response.text();
    for (name, value) in &response.headers {
        visible.push_str(&format!("\n{name}: {}", String::from_utf8_lossy(value.as_bytes())));
    }
    for secret in ALL_SECRETS {
        for form in leaked_forms(secret) {
            assert!(!visible.contains(&form), "{case}: `{form}` leaked:\n{visible}");
        }
    }
}

/// What a client sees for an upstream status: (status, OpenAI type, Anthropic type).
fn expected(status: u16) -> (u16, &'static str, &'static str) {
    match status {
        400 | 404 | 422 => (status, "invalid_request_error", "invalid_request_error"),
        429 => (429, "rate_limit_error", "rate_limit_error"),
        _ => (502, "upstream_error", "api_error"),
    }
}

/// The error JSON a client gets in `door`'s format.
fn error_json(door: Door, message: &str, openai_type: &str, anthropic_type: &str) -> Value {
    match door {
        Door::OpenAi => {
            json!({"error": {"message": message, "type": openai_type, "param": null, "code": null}})
        }
        Door::Anthropic => json!({"type": "error", "error": {"type": anthropic_type, "message": message}}),
    }
}

/// The last event of an SSE body, which must be the stream's error event.
fn last_error_event(door: Door, text: &str, case: &str) -> Value {
    let last = text.split("\n\n").filter(|event| !event.trim().is_empty()).last().unwrap_or_default();
    let data = match door {
        Door::OpenAi => last.strip_prefix("data: "),
        Door::Anthropic => last.strip_prefix("event: error\ndata: "),
    };
    let data = data.unwrap_or_else(|| panic!("{case}: the stream does not end in an error event:\n{text}"));
    serde_json::from_str(data).unwrap_or_else(|error| panic!("{case}: {error}: {data}"))
}

#[tokio::test]
async fn upstream_errors_echoing_secrets_reach_no_client_whole_or_streamed() {
    let mock = MockUpstream::start_unrecorded().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    for provider in PROVIDERS {
        for door in [Door::OpenAi, Door::Anthropic] {
            for status in STATUSES {
                for (turn, secret) in provider.secrets.iter().cycle().take(8).enumerate() {
                    mock.set_default_reply(Reply::json_status(
                        status,
                        echo_error(secret, turn, provider.anthropic),
                    ));
                    for stream in [false, true] {
                        let case = format!("{provider:?} {door:?} HTTP {status} stream:{stream} turn {turn}");
                        let response = ask(&gateway, door, provider.model, stream).await;
                        assert_no_secret(&response, &case);
                        let (client_status, openai_type, anthropic_type) = expected(status);
                        assert_eq!(response.status, client_status, "{case}: {}", response.text());
                        let message =
                            format!("provider `{}` returned HTTP {status}: {SCRUBBED}", provider.name);
                        assert_eq!(
                            response.json(),
                            error_json(door, &message, openai_type, anthropic_type),
                            "{case}"
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn errors_inside_a_stream_echoing_secrets_reach_no_client() {
    let mock = MockUpstream::start_unrecorded().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    for provider in PROVIDERS {
        for door in [Door::OpenAi, Door::Anthropic] {
            for (turn, secret) in provider.secrets.iter().cycle().take(8).enumerate() {
                let steps = if provider.anthropic {
                    let start = anthropic_fixtures::text_stream(provider.model, &[]).remove(0);
                    vec![start, SseStep::event("error", &echo_error(secret, turn, true))]
                } else {
                    let first = fixtures::chat_stream_chunks(provider.model, false).remove(0);
                    vec![SseStep::json(&first), SseStep::json(&echo_error(secret, turn, false))]
                };
                mock.set_default_reply(Reply::sse(steps));
                let case = format!("{provider:?} {door:?} turn {turn}");
                let response = ask(&gateway, door, provider.model, true).await;
                assert_no_secret(&response, &case);
                assert_eq!(response.status, 200, "{case}");
                // The error's type echoed a secret too: it is dropped, not passed on.
                let message = if provider.anthropic {
                    format!("provider `claude` reported error: {SCRUBBED}")
                } else {
                    format!("provider `compat` returned HTTP 502: {SCRUBBED}")
                };
                assert_eq!(
                    last_error_event(door, &response.text(), &case),
                    error_json(door, &message, "upstream_error", "api_error"),
                    "{case}"
                );
            }
        }
    }
}

#[tokio::test]
async fn header_values_do_not_print_in_the_provider_config() {
    let mock = MockUpstream::start_unrecorded().await;
    let config = LoomConfig::from_yaml_str(&config(&mock), &|_| None).unwrap();
    for provider in &config.ai_gateway.providers {
        let printed = format!("{provider:?}");
        for secret in ALL_SECRETS {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("x-custom-auth"), "{printed}");
    }
}

#[tokio::test]
async fn a_huge_upstream_retry_after_reaches_the_client_as_an_hour() {
    let mock = MockUpstream::start_unrecorded().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    for wait in ["99999999999999", "1e300"] {
        mock.set_default_reply(Reply::Json {
            status: 429,
            headers: vec![("retry-after".to_owned(), wait.to_owned())],
            body: fixtures::rate_limited("Rate limit reached for requests."),
        });
        for stream in [false, true] {
            let response = ask(&gateway, Door::OpenAi, "gpt-echo", stream).await;
            assert_eq!(response.status, 429, "{}", response.text());
            assert_eq!(response.header("retry-after").as_deref(), Some("3600"), "{wait} stream:{stream}");
        }
    }
}

/// A Vertex token minted at run time, without the `ya29.` prefix the key-shape heuristic knows.
const MINTED: &str = "minted/Vertex+Token=0123456789abcdef";

#[tokio::test]
async fn minted_vertex_tokens_and_key_material_reach_no_client() {
    let mock = MockUpstream::start_unrecorded().await;
    let key_file = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/vertex-test-service-account.json");
    let key: Value = serde_json::from_str(&std::fs::read_to_string(key_file).unwrap()).unwrap();
    let key_id = key["private_key_id"].as_str().unwrap();
    let pem_line = key["private_key"].as_str().unwrap().lines().nth(1).unwrap();
    let yaml = format!(
        "ai_gateway:\n  providers:\n    - name: vertex\n      type: vertex\n      base_url: http://{addr}\n      vertex:\n        project: loom-test\n        location: europe-west4\n        credentials_file: {key_file}\n        token_url: http://{addr}/token\n",
        addr = mock.addr()
    );
    let gateway = TestGateway::start(&yaml).await;
    let echo = format!("Bad token Bearer {MINTED} for key {key_id}: {pem_line}");
    mock.push_reply(Reply::json(json!({"access_token": MINTED, "expires_in": 3600, "token_type": "Bearer"})));
    mock.push_reply(Reply::json_status(
        401,
        json!({"error": {"code": 401, "message": echo, "status": format!("Bearer {MINTED}")}}),
    ));
    let mut steps = gemini_fixtures::text_stream("gemini-2.5-pro", &["One"]);
    steps.push(SseStep::json(
        &json!({"error": {"code": 429, "message": echo, "status": "RESOURCE_EXHAUSTED"}}),
    ));
    mock.push_reply(Reply::sse(steps));
    let scrubbed = "Bad token Bearer [redacted] for key [redacted]: [redacted]";

    let whole = ask(&gateway, Door::OpenAi, "gemini-2.5-pro", false).await;
    let streamed = ask(&gateway, Door::OpenAi, "gemini-2.5-pro", true).await;
    for (response, case) in [(&whole, "whole"), (&streamed, "streamed")] {
        let text = response.text();
        for leaked in leaked_forms(MINTED).iter().map(String::as_str).chain([key_id, pem_line]) {
            assert!(!text.contains(leaked), "{case}: `{leaked}` leaked:\n{text}");
        }
    }
    assert_eq!(whole.status, 502);
    assert_eq!(
        whole.json(),
        json!({"error": {
            "message": format!("provider `vertex` returned HTTP 401: {scrubbed}"),
            "type": "upstream_error", "param": null, "code": "401"
        }})
    );
    assert_eq!(streamed.status, 200);
    assert_eq!(
        last_error_event(Door::OpenAi, &streamed.text(), "streamed"),
        json!({"error": {
            "message": format!("provider `vertex` returned HTTP 429: {scrubbed}"),
            "type": "rate_limit_error", "param": null, "code": "429"
        }})
    );
}
