//! The client x provider matrix, end to end over the real HTTP surface.
//!
//! {OpenAI-format client, Anthropic-format client} x {openai, azure, anthropic, gemini,
//! vertex, local (format openai), local (format anthropic)} x {whole, streamed} x
//! {plain text, tool call, image input}: 84 cases. One test per provider runs its 12
//! cases against one gateway and one mock upstream, in order, and checks for each:
//!
//! - the exact upstream request: method, path (and query), the provider's auth header,
//!   and the whole JSON body (text, image and tools in the provider's own shape);
//! - the exact answer in the client's format, reduced to an [`Answer`] (text, reasoning,
//!   signature, tool calls with parsed arguments, finish/stop reason, usage) after
//!   checking the envelope: for streams the event structure, that usage arrives once
//!   and at the end, and the terminator (`data: [DONE]` / `message_stop`).
//!
//! A failing case does not stop the others: every case runs, and the test fails at the
//! end listing the failed case names (each assertion message names its case too).
//!
//! Each provider test also checks that an OpenAI client streaming without
//! `stream_options.include_usage` gets no usage, and one request the provider cannot
//! honour: a 400 naming the field, with nothing sent upstream when Loom can tell
//! beforehand.
//!
//! The last tests are bugs the matrix found, kept as regression tests now that they are fixed.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use http::Method;
use loom_e2e::{TestGateway, TestResponse, read_whole, sse_data};
use loom_test_support::{
    MockUpstream, RecordedRequest, Reply, anthropic_fixtures, fixtures, gemini_fixtures,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// The axes
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Client {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    OpenAi,
    Azure,
    Anthropic,
    Gemini,
    Vertex,
    LocalOpenAi,
    LocalAnthropic,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Whole,
    Stream,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Input {
    Text,
    Tool,
    Image,
}

/// The wire format a provider speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wire {
    OpenAi,
    Anthropic,
    Gemini,
}

const CLIENTS: [Client; 2] = [Client::OpenAi, Client::Anthropic];
const MODES: [Mode; 2] = [Mode::Whole, Mode::Stream];
const INPUTS: [Input; 3] = [Input::Text, Input::Tool, Input::Image];

// Keys and tokens the providers are configured with.
const OPENAI_KEY: &str = "sk-matrix-openai-0123456789";
const AZURE_KEY: &str = "azure-matrix-key-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-matrix-0123456789";
const GEMINI_KEY: &str = "AIzaMatrixKey0123456789";
const VERTEX_TOKEN: &str = "ya29.matrix-access-token";
const LOCAL_OPENAI_KEY: &str = "local-openai-key-0123";
const LOCAL_ANTHROPIC_KEY: &str = "local-anthropic-key-0123";
const AZURE_API_VERSION: &str = "2024-10-21";
const AZURE_DEPLOYMENT: &str = "gpt4o-prod";
const VERTEX_PROJECT: &str = "loom-matrix";
const VERTEX_LOCATION: &str = "europe-west4";
/// `default_max_tokens` of the `anthropic` provider; `local-anthropic` keeps Loom's 4096.
const ANTHROPIC_DEFAULT_MAX_TOKENS: u64 = 1000;
const LOOM_DEFAULT_MAX_TOKENS: u64 = 4096;
/// `max_tokens` every Anthropic-format client sends.
const CLIENT_MAX_TOKENS: u64 = 256;

// The content of the cases.
const TEXT_PROMPT: &str = "Say hello";
const TOOL_PROMPT: &str = "What is the weather in Paris?";
const IMAGE_PROMPT: &str = "What is in this image?";
const IMAGE_MEDIA_TYPE: &str = "image/png";
const IMAGE_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const TOOL_NAME: &str = "get_weather";
const TOOL_DESCRIPTION: &str = "Current weather in a city";

// The answers the mock upstreams give.
const CLAUDE_PIECES: [&str; 3] = ["Hello", " from", " Claude"];
const GEMINI_PIECES: [&str; 3] = ["Hello", " from", " Gemini"];
const CLAUDE_THINKING: &str = "The user wants the weather in Paris.";
const CLAUDE_SIGNATURE: &str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds=";
const CLAUDE_TOOL_ID: &str = "toolu_01A09q90qw90lq917835lq9";
const GEMINI_SIGNATURE: &str = "Cs4BAdHtim9sig";
/// The id Loom gives Gemini's first id-less function call.
const GEMINI_TOOL_ID: &str = "call_loom_0";

impl Client {
    fn label(self) -> &'static str {
        match self {
            Client::OpenAi => "openai-client",
            Client::Anthropic => "anthropic-client",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Client::OpenAi => "/v1/chat/completions",
            Client::Anthropic => "/v1/messages",
        }
    }
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Whole => "whole",
            Mode::Stream => "stream",
        }
    }
}

impl Input {
    fn label(self) -> &'static str {
        match self {
            Input::Text => "text",
            Input::Tool => "tool-call",
            Input::Image => "image",
        }
    }
}

impl Kind {
    /// The provider's name in config (and in `x-loom-provider`).
    fn name(self) -> &'static str {
        match self {
            Kind::OpenAi => "openai",
            Kind::Azure => "azure",
            Kind::Anthropic => "anthropic",
            Kind::Gemini => "gemini",
            Kind::Vertex => "vertex",
            Kind::LocalOpenAi => "local-openai",
            Kind::LocalAnthropic => "local-anthropic",
        }
    }

    fn wire(self) -> Wire {
        match self {
            Kind::OpenAi | Kind::Azure | Kind::LocalOpenAi => Wire::OpenAi,
            Kind::Anthropic | Kind::LocalAnthropic => Wire::Anthropic,
            Kind::Gemini | Kind::Vertex => Wire::Gemini,
        }
    }

    /// The model clients ask for.
    fn model(self) -> &'static str {
        match self.wire() {
            Wire::OpenAi => "gpt-4o",
            Wire::Anthropic => "claude-sonnet-4-5",
            Wire::Gemini => "gemini-2.5-flash",
        }
    }

    /// The gateway config: this one provider, pointing at the mock.
    fn config(self, mock: &MockUpstream) -> String {
        let addr = mock.addr();
        let provider = match self {
            Kind::OpenAi => {
                format!("type: openai\n      api_key: {OPENAI_KEY}\n      base_url: http://{addr}/v1\n")
            }
            Kind::Azure => format!(
                "type: azure\n      api_key: {AZURE_KEY}\n      base_url: http://{addr}\n      \
                 api_version: \"{AZURE_API_VERSION}\"\n      deployments:\n        gpt-4o: {AZURE_DEPLOYMENT}\n"
            ),
            Kind::Anthropic => format!(
                "type: anthropic\n      api_key: {ANTHROPIC_KEY}\n      base_url: http://{addr}\n      \
                 default_max_tokens: {ANTHROPIC_DEFAULT_MAX_TOKENS}\n"
            ),
            Kind::Gemini => {
                format!("type: gemini\n      api_key: {GEMINI_KEY}\n      base_url: http://{addr}\n")
            }
            Kind::Vertex => format!(
                "type: vertex\n      base_url: http://{addr}\n      vertex:\n        project: {VERTEX_PROJECT}\n        \
                 location: {VERTEX_LOCATION}\n        access_token: {VERTEX_TOKEN}\n"
            ),
            Kind::LocalOpenAi => format!(
                "type: local\n      format: openai\n      api_key: {LOCAL_OPENAI_KEY}\n      base_url: http://{addr}/v1\n"
            ),
            Kind::LocalAnthropic => format!(
                "type: local\n      format: anthropic\n      api_key: {LOCAL_ANTHROPIC_KEY}\n      base_url: http://{addr}\n"
            ),
        };
        format!("ai_gateway:\n  providers:\n    - name: {}\n      {provider}", self.name())
    }

    /// The upstream path and query of a chat request.
    fn chat_target(self, mode: Mode) -> (String, Option<String>) {
        let gemini_method = match mode {
            Mode::Whole => "generateContent",
            Mode::Stream => "streamGenerateContent",
        };
        let gemini_query = (mode == Mode::Stream).then(|| "alt=sse".to_owned());
        match self {
            Kind::OpenAi | Kind::LocalOpenAi => ("/v1/chat/completions".to_owned(), None),
            Kind::Azure => (
                format!("/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"),
                Some(format!("api-version={AZURE_API_VERSION}")),
            ),
            Kind::Anthropic | Kind::LocalAnthropic => ("/v1/messages".to_owned(), None),
            Kind::Gemini => (format!("/v1beta/models/{}:{gemini_method}", self.model()), gemini_query),
            Kind::Vertex => (
                format!(
                    "/v1/projects/{VERTEX_PROJECT}/locations/{VERTEX_LOCATION}/publishers/google/models/{}:{gemini_method}",
                    self.model()
                ),
                gemini_query,
            ),
        }
    }

    /// Asserts the auth headers of this provider type (and that no other scheme leaks).
    fn check_auth(self, case: &str, request: &RecordedRequest) {
        let expected: &[(&str, Option<String>)] = &match self {
            Kind::OpenAi => [
                ("authorization", Some(format!("Bearer {OPENAI_KEY}"))),
                ("api-key", None),
                ("x-api-key", None),
                ("x-goog-api-key", None),
            ],
            Kind::LocalOpenAi => [
                ("authorization", Some(format!("Bearer {LOCAL_OPENAI_KEY}"))),
                ("api-key", None),
                ("x-api-key", None),
                ("x-goog-api-key", None),
            ],
            Kind::Azure => [
                ("api-key", Some(AZURE_KEY.to_owned())),
                ("authorization", None),
                ("x-api-key", None),
                ("x-goog-api-key", None),
            ],
            Kind::Anthropic => [
                ("x-api-key", Some(ANTHROPIC_KEY.to_owned())),
                ("anthropic-version", Some("2023-06-01".to_owned())),
                ("authorization", None),
                ("x-goog-api-key", None),
            ],
            Kind::LocalAnthropic => [
                ("x-api-key", Some(LOCAL_ANTHROPIC_KEY.to_owned())),
                ("anthropic-version", Some("2023-06-01".to_owned())),
                ("authorization", None),
                ("x-goog-api-key", None),
            ],
            Kind::Gemini => [
                ("x-goog-api-key", Some(GEMINI_KEY.to_owned())),
                ("authorization", None),
                ("api-key", None),
                ("x-api-key", None),
            ],
            Kind::Vertex => [
                ("authorization", Some(format!("Bearer {VERTEX_TOKEN}"))),
                ("x-goog-api-key", None),
                ("api-key", None),
                ("x-api-key", None),
            ],
        };
        for (name, value) in expected {
            assert_eq!(&request.header(name), value, "{case}: upstream header `{name}`");
        }
        assert_eq!(
            request.header("content-type").as_deref(),
            Some("application/json"),
            "{case}: upstream content-type"
        );
    }
}

/// One cell of the matrix.
#[derive(Clone, Copy, Debug)]
struct Case {
    client: Client,
    kind: Kind,
    mode: Mode,
    input: Input,
}

impl Case {
    fn name(&self) -> String {
        format!(
            "{} -> {} / {} / {}",
            self.client.label(),
            self.kind.name(),
            self.mode.label(),
            self.input.label()
        )
    }

    fn wire(&self) -> Wire {
        self.kind.wire()
    }

    fn stream(&self) -> bool {
        self.mode == Mode::Stream
    }
}

fn cases(kind: Kind) -> Vec<Case> {
    let mut cases = Vec::with_capacity(12);
    for client in CLIENTS {
        for mode in MODES {
            for input in INPUTS {
                cases.push(Case { client, kind, mode, input });
            }
        }
    }
    cases
}

// ---------------------------------------------------------------------------------------
// What the client sends, and what each provider must receive
// ---------------------------------------------------------------------------------------

fn weather_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
}

fn prompt(input: Input) -> &'static str {
    match input {
        Input::Text => TEXT_PROMPT,
        Input::Tool => TOOL_PROMPT,
        Input::Image => IMAGE_PROMPT,
    }
}

fn image_data_url() -> String {
    format!("data:{IMAGE_MEDIA_TYPE};base64,{IMAGE_BASE64}")
}

/// The OpenAI-format messages of a case.
fn openai_messages(input: Input) -> Value {
    match input {
        Input::Image => json!([{"role": "user", "content": [
            {"type": "text", "text": IMAGE_PROMPT},
            {"type": "image_url", "image_url": {"url": image_data_url()}}
        ]}]),
        _ => json!([{"role": "user", "content": prompt(input)}]),
    }
}

/// The Anthropic-format messages of a case.
fn anthropic_messages(input: Input) -> Value {
    match input {
        Input::Image => json!([{"role": "user", "content": [
            {"type": "text", "text": IMAGE_PROMPT},
            {"type": "image", "source": {"type": "base64", "media_type": IMAGE_MEDIA_TYPE, "data": IMAGE_BASE64}}
        ]}]),
        _ => json!([{"role": "user", "content": prompt(input)}]),
    }
}

fn openai_tools() -> Value {
    json!([{"type": "function", "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION,
        "parameters": weather_schema()}}])
}

fn anthropic_tools() -> Value {
    json!([{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": weather_schema()}])
}

fn gemini_tools() -> Value {
    json!([{"functionDeclarations": [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION,
        "parametersJsonSchema": weather_schema()}]}])
}

/// The client's request body. OpenAI clients name the tool in `tool_choice` and ask
/// for stream usage; Anthropic clients force "any" tool.
fn client_body(case: &Case) -> Value {
    let model = case.kind.model();
    match case.client {
        Client::OpenAi => {
            let mut body = json!({"model": model, "messages": openai_messages(case.input)});
            if case.input == Input::Tool {
                body["tools"] = openai_tools();
                body["tool_choice"] = json!({"type": "function", "function": {"name": TOOL_NAME}});
            }
            if case.stream() {
                body["stream"] = json!(true);
                body["stream_options"] = json!({"include_usage": true});
            }
            body
        }
        Client::Anthropic => {
            let mut body = json!({"model": model, "max_tokens": CLIENT_MAX_TOKENS, "messages": anthropic_messages(case.input)});
            if case.input == Input::Tool {
                body["tools"] = anthropic_tools();
                body["tool_choice"] = json!({"type": "any"});
            }
            if case.stream() {
                body["stream"] = json!(true);
            }
            body
        }
    }
}

/// The exact body the provider must receive.
fn expected_upstream_body(case: &Case) -> Value {
    let tool = case.input == Input::Tool;
    match (case.wire(), case.client) {
        // Same format: Loom passes the request on as the client wrote it.
        (Wire::OpenAi, Client::OpenAi) | (Wire::Anthropic, Client::Anthropic) => client_body(case),
        (Wire::OpenAi, Client::Anthropic) => {
            let mut body = json!({"model": case.kind.model(), "messages": openai_messages(case.input),
                "max_tokens": CLIENT_MAX_TOKENS});
            if tool {
                body["tools"] = openai_tools();
                body["tool_choice"] = json!("required");
            }
            if case.stream() {
                body["stream"] = json!(true);
                // Anthropic clients always get usage, so Loom asks upstream for it.
                body["stream_options"] = json!({"include_usage": true});
            }
            body
        }
        (Wire::Anthropic, Client::OpenAi) => {
            let max_tokens = match case.kind {
                Kind::Anthropic => ANTHROPIC_DEFAULT_MAX_TOKENS,
                _ => LOOM_DEFAULT_MAX_TOKENS,
            };
            let mut body = json!({"model": case.kind.model(), "max_tokens": max_tokens,
                "messages": anthropic_messages(case.input)});
            if tool {
                body["tools"] = anthropic_tools();
                body["tool_choice"] = json!({"type": "tool", "name": TOOL_NAME});
            }
            if case.stream() {
                body["stream"] = json!(true);
            }
            body
        }
        (Wire::Gemini, client) => {
            let parts = match case.input {
                Input::Image => json!([{"text": IMAGE_PROMPT},
                    {"inlineData": {"mimeType": IMAGE_MEDIA_TYPE, "data": IMAGE_BASE64}}]),
                input => json!([{"text": prompt(input)}]),
            };
            let mut body = json!({"contents": [{"role": "user", "parts": parts}]});
            if tool {
                body["tools"] = gemini_tools();
                body["toolConfig"] = match client {
                    Client::OpenAi => json!({"functionCallingConfig": {"mode": "ANY",
                        "allowedFunctionNames": [TOOL_NAME]}}),
                    Client::Anthropic => json!({"functionCallingConfig": {"mode": "ANY"}}),
                };
            }
            if client == Client::Anthropic {
                body["generationConfig"] = json!({"maxOutputTokens": CLIENT_MAX_TOKENS});
            }
            body
        }
    }
}

/// What the mock upstream answers, in the provider's own format.
fn upstream_reply(case: &Case) -> Reply {
    let model = case.kind.model();
    let tool = case.input == Input::Tool;
    match (case.wire(), case.mode, tool) {
        (Wire::OpenAi, Mode::Whole, false) => Reply::chat_completion(model),
        (Wire::OpenAi, Mode::Whole, true) => Reply::json(fixtures::chat_tool_call(model)),
        (Wire::OpenAi, Mode::Stream, false) => Reply::chat_stream(model, true),
        (Wire::OpenAi, Mode::Stream, true) => Reply::sse(fixtures::chat_tool_call_stream_steps(model)),
        (Wire::Anthropic, Mode::Whole, false) => {
            Reply::json(anthropic_fixtures::message(model, &CLAUDE_PIECES.concat()))
        }
        (Wire::Anthropic, Mode::Whole, true) => Reply::json(anthropic_fixtures::tool_use_message(model)),
        (Wire::Anthropic, Mode::Stream, false) => {
            Reply::sse(anthropic_fixtures::text_stream(model, &CLAUDE_PIECES))
        }
        (Wire::Anthropic, Mode::Stream, true) => Reply::sse(anthropic_fixtures::tool_use_stream(model)),
        (Wire::Gemini, Mode::Whole, false) => {
            Reply::json(gemini_fixtures::text_response(model, &GEMINI_PIECES.concat()))
        }
        (Wire::Gemini, Mode::Whole, true) => Reply::json(gemini_fixtures::function_call_response(model)),
        (Wire::Gemini, Mode::Stream, false) => {
            Reply::sse(gemini_fixtures::text_stream(model, &GEMINI_PIECES))
        }
        (Wire::Gemini, Mode::Stream, true) => Reply::sse(gemini_fixtures::function_call_stream(model)),
    }
}

// ---------------------------------------------------------------------------------------
// What the client must see
// ---------------------------------------------------------------------------------------

/// A tool call as the client sees it, arguments parsed.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    id: String,
    name: String,
    arguments: Value,
}

/// A client-visible answer, reduced to what must match exactly.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    /// All answer text, concatenated.
    text: String,
    /// Reasoning text (`reasoning_content` / thinking blocks).
    reasoning: String,
    /// Reasoning signatures (`thinking_blocks[].signature` / `reasoning_signature` / block signatures).
    signature: String,
    tool_calls: Vec<Call>,
    /// `finish_reason` (OpenAI clients) or `stop_reason` (Anthropic clients).
    finish: String,
    /// The usage object in the client's shape.
    usage: Value,
}

fn weather_call(id: &str) -> Vec<Call> {
    vec![Call { id: id.to_owned(), name: TOOL_NAME.to_owned(), arguments: json!({"city": "Paris"}) }]
}

/// The answer a case's client must get.
fn expected_answer(case: &Case) -> Answer {
    let tool = case.input == Input::Tool;
    let openai = case.client == Client::OpenAi;
    let finish = match (openai, tool) {
        (true, false) => "stop",
        (true, true) => "tool_calls",
        (false, false) => "end_turn",
        (false, true) => "tool_use",
    }
    .to_owned();
    let (text, reasoning, signature, tool_calls, usage) = match (case.wire(), tool) {
        (Wire::OpenAi, false) => (
            fixtures::CONTENT.to_owned(),
            "",
            "",
            vec![],
            if openai {
                fixtures::chat_usage()
            } else {
                json!({"input_tokens": 9, "output_tokens": 6, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0})
            },
        ),
        (Wire::OpenAi, true) => (
            String::new(),
            "",
            "",
            weather_call(fixtures::TOOL_CALL_ID),
            if openai {
                fixtures::chat_usage()
            } else {
                json!({"input_tokens": 9, "output_tokens": 6, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0})
            },
        ),
        (Wire::Anthropic, false) => (
            CLAUDE_PIECES.concat(),
            "",
            "",
            vec![],
            if openai {
                json!({"prompt_tokens": 16, "completion_tokens": 6, "total_tokens": 22,
                    "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 0}})
            } else {
                json!({"input_tokens": 12, "output_tokens": 6, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 4})
            },
        ),
        (Wire::Anthropic, true) => (
            // The whole fixture says "Let me check." before calling; the streamed one does not.
            if case.stream() { String::new() } else { "Let me check.".to_owned() },
            CLAUDE_THINKING,
            CLAUDE_SIGNATURE,
            weather_call(CLAUDE_TOOL_ID),
            if openai {
                json!({"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70})
            } else {
                json!({"input_tokens": 40, "output_tokens": 30})
            },
        ),
        (Wire::Gemini, false) => {
            // Whole: 5 output tokens; streamed: 2 per piece, cumulative.
            let output = if case.stream() { 2 * GEMINI_PIECES.len() as u64 } else { 5 };
            (
                GEMINI_PIECES.concat(),
                "",
                "",
                vec![],
                if openai {
                    json!({"prompt_tokens": 11, "completion_tokens": output, "total_tokens": 11 + output})
                } else {
                    json!({"input_tokens": 11, "output_tokens": output})
                },
            )
        }
        (Wire::Gemini, true) => (
            String::new(),
            "",
            GEMINI_SIGNATURE,
            weather_call(GEMINI_TOOL_ID),
            if openai {
                json!({"prompt_tokens": 30, "completion_tokens": 28, "total_tokens": 58,
                    "prompt_tokens_details": {"cached_tokens": 10},
                    "completion_tokens_details": {"reasoning_tokens": 20}})
            } else {
                json!({"input_tokens": 20, "output_tokens": 28, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 10})
            },
        ),
    };
    Answer {
        text,
        reasoning: reasoning.to_owned(),
        signature: signature.to_owned(),
        tool_calls,
        finish,
        usage,
    }
}

fn parse_arguments(case: &str, arguments: &str) -> Value {
    if arguments.is_empty() {
        return json!({});
    }
    serde_json::from_str(arguments)
        .unwrap_or_else(|error| panic!("{case}: tool arguments are not JSON ({error}): {arguments:?}"))
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Reads a whole OpenAI `chat.completion`.
fn openai_whole(case: &str, response: &TestResponse) -> Answer {
    assert_eq!(response.header("content-type").as_deref(), Some("application/json"), "{case}");
    let body = response.json();
    assert_eq!(body["object"], "chat.completion", "{case}: {body}");
    let choices = body["choices"].as_array().unwrap_or_else(|| panic!("{case}: no choices: {body}"));
    assert_eq!(choices.len(), 1, "{case}: {body}");
    assert_eq!(choices[0]["index"], 0, "{case}");
    let message = &choices[0]["message"];
    assert_eq!(message["role"], "assistant", "{case}: {body}");
    let content = &message["content"];
    assert!(content.is_null() || content.is_string(), "{case}: content must be a string or null: {body}");
    let mut tool_calls = Vec::new();
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        assert_eq!(call["type"], "function", "{case}: {call}");
        let arguments = call["function"]["arguments"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: arguments must be a JSON string: {call}"));
        tool_calls.push(Call {
            id: str_of(&call["id"]).to_owned(),
            name: str_of(&call["function"]["name"]).to_owned(),
            arguments: parse_arguments(case, arguments),
        });
    }
    let signature = message["thinking_blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|block| str_of(&block["signature"]).to_owned())
        .collect();
    Answer {
        text: str_of(content).to_owned(),
        reasoning: str_of(&message["reasoning_content"]).to_owned(),
        signature,
        tool_calls,
        finish: str_of(&choices[0]["finish_reason"]).to_owned(),
        usage: body["usage"].clone(),
    }
}

/// Reads an OpenAI chunk stream: `data:` events, one usage chunk last, then `[DONE]`.
fn openai_stream(case: &str, response: &TestResponse) -> Answer {
    assert_eq!(response.header("content-type").as_deref(), Some("text/event-stream"), "{case}");
    let text = response.text();
    let events = sse_data(&text);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{case}: stream must end in [DONE]: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"), "{case}: nothing may follow [DONE]: {text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|data| {
            serde_json::from_str(data)
                .unwrap_or_else(|error| panic!("{case}: chunk is not JSON ({error}): {data}"))
        })
        .collect();
    assert!(!chunks.is_empty(), "{case}: no chunks: {text}");
    let id = chunks[0]["id"].clone();
    let mut answer = Answer {
        text: String::new(),
        reasoning: String::new(),
        signature: String::new(),
        tool_calls: Vec::new(),
        finish: String::new(),
        usage: Value::Null,
    };
    // index -> (id, name, arguments so far)
    let mut calls: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    let last = chunks.len() - 1;
    for (position, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{case}: {chunk}");
        assert_eq!(chunk["id"], id, "{case}: every chunk has the same id: {chunk}");
        if position == last {
            assert_eq!(chunk["choices"], json!([]), "{case}: the usage chunk has no choices: {chunk}");
            assert!(chunk["usage"].is_object(), "{case}: usage must arrive in the last chunk: {text}");
            answer.usage = chunk["usage"].clone();
            continue;
        }
        assert!(chunk["usage"].is_null(), "{case}: usage only in the last chunk: {chunk}");
        let choices = chunk["choices"].as_array().unwrap_or_else(|| panic!("{case}: {chunk}"));
        assert_eq!(choices.len(), 1, "{case}: {chunk}");
        let choice = &choices[0];
        assert_eq!(choice["index"], 0, "{case}: {chunk}");
        assert!(answer.finish.is_empty(), "{case}: a chunk after the finish reason: {chunk}");
        let delta = &choice["delta"];
        answer.text.push_str(str_of(&delta["content"]));
        answer.reasoning.push_str(str_of(&delta["reasoning_content"]));
        answer.signature.push_str(str_of(&delta["reasoning_signature"]));
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index =
                call["index"].as_u64().unwrap_or_else(|| panic!("{case}: tool call without index: {call}"));
            let entry = calls.entry(index).or_default();
            if let Some(call_id) = call["id"].as_str() {
                assert!(entry.0.is_empty(), "{case}: tool call {index} got a second id: {chunk}");
                assert_eq!(call["type"], "function", "{case}: {chunk}");
                entry.0 = call_id.to_owned();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                assert!(entry.1.is_empty(), "{case}: tool call {index} got a second name: {chunk}");
                entry.1 = name.to_owned();
            }
            assert!(!entry.0.is_empty(), "{case}: tool call {index} must start with its id: {chunk}");
            entry.2.push_str(str_of(&call["function"]["arguments"]));
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            answer.finish = finish.to_owned();
        }
    }
    assert!(!answer.finish.is_empty(), "{case}: no finish_reason: {text}");
    answer.tool_calls = calls
        .into_values()
        .map(|(id, name, arguments)| Call { id, name, arguments: parse_arguments(case, &arguments) })
        .collect();
    answer
}

/// Reads a whole Anthropic `message`.
fn anthropic_whole(case: &str, response: &TestResponse) -> Answer {
    assert_eq!(response.header("content-type").as_deref(), Some("application/json"), "{case}");
    let body = response.json();
    assert_eq!(body["type"], "message", "{case}: {body}");
    assert_eq!(body["role"], "assistant", "{case}: {body}");
    let mut answer = Answer {
        text: String::new(),
        reasoning: String::new(),
        signature: String::new(),
        tool_calls: Vec::new(),
        finish: str_of(&body["stop_reason"]).to_owned(),
        usage: body["usage"].clone(),
    };
    let blocks = body["content"].as_array().unwrap_or_else(|| panic!("{case}: no content: {body}"));
    for block in blocks {
        match str_of(&block["type"]) {
            "text" => answer.text.push_str(str_of(&block["text"])),
            "thinking" => {
                answer.reasoning.push_str(str_of(&block["thinking"]));
                answer.signature.push_str(str_of(&block["signature"]));
            }
            "tool_use" => {
                assert!(block["input"].is_object(), "{case}: tool input must be an object: {block}");
                answer.tool_calls.push(Call {
                    id: str_of(&block["id"]).to_owned(),
                    name: str_of(&block["name"]).to_owned(),
                    arguments: block["input"].clone(),
                });
            }
            other => panic!("{case}: unexpected block type `{other}`: {body}"),
        }
    }
    answer
}

/// (event name, data) pairs of an Anthropic SSE body.
fn anthropic_events(case: &str, text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let mut name = String::new();
            let mut data = String::new();
            for line in event.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = value.to_owned();
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            let data = serde_json::from_str(&data)
                .unwrap_or_else(|error| panic!("{case}: event data is not JSON ({error}): {data}"));
            (name, data)
        })
        .collect()
}

/// Reads an Anthropic event stream, checking its structure: `message_start` first,
/// content blocks opened, filled and closed in index order, then one `message_delta`
/// (stop reason and usage) and `message_stop`.
fn anthropic_stream(case: &str, response: &TestResponse) -> Answer {
    assert_eq!(response.header("content-type").as_deref(), Some("text/event-stream"), "{case}");
    let text = response.text();
    let events = anthropic_events(case, &text);
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "{case}: event name and data type differ: {data}");
        assert_ne!(name, "error", "{case}: error event: {text}");
    }
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.len() >= 3, "{case}: {names:?}");
    assert_eq!(names[0], "message_start", "{case}: {names:?}");
    assert_eq!(
        names[names.len() - 1],
        "message_stop",
        "{case}: the stream must end with message_stop: {names:?}"
    );
    assert_eq!(names[names.len() - 2], "message_delta", "{case}: {names:?}");
    assert_eq!(names.iter().filter(|name| **name == "message_delta").count(), 1, "{case}: {names:?}");
    let start = &events[0].1["message"];
    assert_eq!(start["type"], "message", "{case}: {start}");
    assert_eq!(start["role"], "assistant", "{case}: {start}");
    assert_eq!(start["content"], json!([]), "{case}: {start}");
    let delta = &events[events.len() - 2].1;
    let mut answer = Answer {
        text: String::new(),
        reasoning: String::new(),
        signature: String::new(),
        tool_calls: Vec::new(),
        finish: str_of(&delta["delta"]["stop_reason"]).to_owned(),
        usage: delta["usage"].clone(),
    };
    // (index, block type, partial tool input) of the open block.
    let mut open: Option<(u64, String, String)> = None;
    let mut next_index = 0;
    for (name, data) in &events[1..events.len() - 2] {
        match name.as_str() {
            "content_block_start" => {
                assert!(open.is_none(), "{case}: a block opened before the last one closed: {data}");
                assert_eq!(data["index"], next_index, "{case}: blocks are numbered in order: {data}");
                let block = &data["content_block"];
                let kind = str_of(&block["type"]).to_owned();
                match kind.as_str() {
                    "text" => answer.text.push_str(str_of(&block["text"])),
                    "thinking" => {
                        answer.reasoning.push_str(str_of(&block["thinking"]));
                        answer.signature.push_str(str_of(&block["signature"]));
                    }
                    "tool_use" => {
                        assert_eq!(block["input"], json!({}), "{case}: tool input streams as deltas: {data}");
                        answer.tool_calls.push(Call {
                            id: str_of(&block["id"]).to_owned(),
                            name: str_of(&block["name"]).to_owned(),
                            arguments: Value::Null,
                        });
                    }
                    other => panic!("{case}: unexpected block type `{other}`: {data}"),
                }
                open = Some((next_index, kind, String::new()));
            }
            "content_block_delta" => {
                let (index, kind, partial) =
                    open.as_mut().unwrap_or_else(|| panic!("{case}: a delta outside a block: {data}"));
                assert_eq!(data["index"], *index, "{case}: {data}");
                let delta = &data["delta"];
                match (kind.as_str(), str_of(&delta["type"])) {
                    ("text", "text_delta") => answer.text.push_str(str_of(&delta["text"])),
                    ("thinking", "thinking_delta") => answer.reasoning.push_str(str_of(&delta["thinking"])),
                    ("thinking", "signature_delta") => answer.signature.push_str(str_of(&delta["signature"])),
                    ("tool_use", "input_json_delta") => partial.push_str(str_of(&delta["partial_json"])),
                    (block, delta_type) => panic!("{case}: a `{delta_type}` in a `{block}` block: {data}"),
                }
            }
            "content_block_stop" => {
                let (index, kind, partial) =
                    open.take().unwrap_or_else(|| panic!("{case}: a stop outside a block: {data}"));
                assert_eq!(data["index"], index, "{case}: {data}");
                if kind == "tool_use" {
                    let call = answer.tool_calls.last_mut().expect("the open tool call");
                    call.arguments = parse_arguments(case, &partial);
                }
                next_index += 1;
            }
            other => {
                panic!("{case}: unexpected `{other}` event between message_start and message_delta: {data}")
            }
        }
    }
    assert!(open.is_none(), "{case}: a block is still open at message_delta: {names:?}");
    answer
}

// ---------------------------------------------------------------------------------------
// Running the matrix
// ---------------------------------------------------------------------------------------

async fn run_case(mock: &MockUpstream, gateway: &TestGateway, case: &Case) {
    let name = case.name();
    let name = name.as_str();
    mock.take_requests();
    mock.push_reply(upstream_reply(case));
    let body = client_body(case);
    let response = match case.client {
        Client::OpenAi => gateway.post(case.client.path(), &body.to_string()).await,
        Client::Anthropic => {
            gateway
                .post_with(
                    case.client.path(),
                    &[("content-type", "application/json"), ("anthropic-version", "2023-06-01")],
                    &body.to_string(),
                )
                .await
        }
    };
    assert_eq!(response.status, 200, "{name}: {}", response.text());
    assert_eq!(response.header("x-loom-provider").as_deref(), Some(case.kind.name()), "{name}");

    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "{name}: exactly one upstream request");
    let upstream = &requests[0];
    let (path, query) = case.kind.chat_target(case.mode);
    assert_eq!(upstream.method, "POST", "{name}");
    assert_eq!(upstream.path, path, "{name}: upstream path");
    assert_eq!(upstream.query, query, "{name}: upstream query");
    case.kind.check_auth(name, upstream);
    assert_eq!(upstream.json(), expected_upstream_body(case), "{name}: upstream body");

    let got = match (case.client, case.mode) {
        (Client::OpenAi, Mode::Whole) => openai_whole(name, &response),
        (Client::OpenAi, Mode::Stream) => openai_stream(name, &response),
        (Client::Anthropic, Mode::Whole) => anthropic_whole(name, &response),
        (Client::Anthropic, Mode::Stream) => anthropic_stream(name, &response),
    };
    assert_eq!(got, expected_answer(case), "{name}: client-visible answer");
}

/// Consumes replies a failed case left queued, so the next case gets its own.
async fn drain(mock: &MockUpstream, gateway: &TestGateway) {
    while mock.pending_replies() > 0 {
        let response = gateway.send(Method::POST, &mock.url("/drain"), &[], "{}").await;
        read_whole(response).await;
    }
    mock.take_requests();
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_else(|| "(non-text panic)".to_owned())
}

/// Runs the 12 cases of one provider; returns the gateway and mock for more checks.
async fn run_matrix(kind: Kind) -> (MockUpstream, TestGateway, Vec<String>) {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&kind.config(&mock)).await;
    let mut failures = Vec::new();
    let cases = cases(kind);
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let outcome = AssertUnwindSafe(run_case(&mock, &gateway, case)).catch_unwind().await;
        drain(&mock, &gateway).await;
        if let Err(panic) = outcome {
            failures.push(format!("{}: {}", case.name(), first_line(panic.as_ref())));
        }
    }
    let outcome = AssertUnwindSafe(stream_without_usage(&mock, &gateway, kind)).catch_unwind().await;
    drain(&mock, &gateway).await;
    if let Err(panic) = outcome {
        failures.push(format!("{}: {}", no_usage_case_name(kind), first_line(panic.as_ref())));
    }
    (mock, gateway, failures)
}

fn first_line(panic: &(dyn Any + Send)) -> String {
    panic_message(panic).lines().next().unwrap_or_default().to_owned()
}

fn no_usage_case_name(kind: Kind) -> String {
    format!("openai-client -> {} / stream / text without include_usage", kind.name())
}

/// An OpenAI client that does not set `stream_options.include_usage` gets no usage
/// chunk (and no `usage` on any chunk), even from providers that always report usage.
async fn stream_without_usage(mock: &MockUpstream, gateway: &TestGateway, kind: Kind) {
    let name = no_usage_case_name(kind);
    let name = name.as_str();
    let case = Case { client: Client::OpenAi, kind, mode: Mode::Stream, input: Input::Text };
    mock.take_requests();
    // Loom asks upstream for usage anyway (token accounting needs it) and hides it from
    // the client, so the upstream streams usage like in every other stream case.
    mock.push_reply(upstream_reply(&case));
    let body = json!({"model": kind.model(), "messages": openai_messages(Input::Text), "stream": true});
    let response = gateway.post(case.client.path(), &body.to_string()).await;
    assert_eq!(response.status, 200, "{name}: {}", response.text());
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "{name}: exactly one upstream request");
    assert_eq!(requests[0].json(), expected_upstream_body(&case), "{name}: upstream body");
    let text = response.text();
    let events = sse_data(&text);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{name}: stream must end in [DONE]: {text}"
    );
    let mut content = String::new();
    let mut finish = String::new();
    for data in &events[..events.len() - 1] {
        let chunk: Value =
            serde_json::from_str(data).unwrap_or_else(|error| panic!("{name}: {error}: {data}"));
        assert!(chunk["usage"].is_null(), "{name}: usage the client did not ask for: {chunk}");
        assert_eq!(chunk["choices"].as_array().map(Vec::len), Some(1), "{name}: {chunk}");
        content.push_str(str_of(&chunk["choices"][0]["delta"]["content"]));
        if let Some(reason) = chunk["choices"][0]["finish_reason"].as_str() {
            finish = reason.to_owned();
        }
    }
    let expected = expected_answer(&case);
    assert_eq!((content.as_str(), finish.as_str()), (expected.text.as_str(), "stop"), "{name}: answer");
}

fn assert_no_failures(kind: Kind, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} `{}` cases failed (full messages above):\n  {}",
        failures.len(),
        kind.name(),
        failures.join("\n  ")
    );
}

/// Asserts an OpenAI-format 400 naming `param`, with nothing sent upstream.
async fn assert_rejected_locally(
    case: &str,
    mock: &MockUpstream,
    gateway: &TestGateway,
    path: &str,
    body: &Value,
    param: Option<&str>,
    message_part: &str,
) {
    mock.take_requests();
    let response = gateway.post(path, &body.to_string()).await;
    assert_eq!(response.status, 400, "{case}: {}", response.text());
    let error = &response.json()["error"];
    assert_eq!(error["type"], "invalid_request_error", "{case}: {error}");
    if let Some(param) = param {
        assert_eq!(error["param"], param, "{case}: the error names the field: {error}");
    }
    let message = str_of(&error["message"]);
    assert!(message.contains(message_part), "{case}: message `{message}` must mention `{message_part}`");
    assert!(mock.requests().is_empty(), "{case}: nothing may reach upstream");
}

// ---------------------------------------------------------------------------------------
// One test per provider
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn matrix_openai() {
    let (mock, gateway, failures) = run_matrix(Kind::OpenAi).await;

    // OpenAI decides itself what it cannot honour; Loom relays its 400 with the field named.
    let case = "openai-client -> openai / unsupported parameter";
    mock.push_reply(Reply::openai_error(
        400,
        "invalid_request_error",
        Some("unsupported_parameter"),
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
    ));
    let body =
        json!({"model": "o3-mini", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]});
    let response = gateway.post("/v1/chat/completions", &body.to_string()).await;
    assert_eq!(response.status, 400, "{case}: {}", response.text());
    let error = &response.json()["error"];
    assert_eq!(error["type"], "invalid_request_error", "{case}: {error}");
    assert_eq!(error["code"], "unsupported_parameter", "{case}: {error}");
    assert!(str_of(&error["message"]).contains("'max_tokens'"), "{case}: {error}");
    assert_eq!(mock.requests().len(), 1, "{case}");
    assert_eq!(mock.requests()[0].json(), body, "{case}: sent on unchanged");

    // Anthropic server tools cannot run on an OpenAI model.
    let case = "anthropic-client -> openai / server tool";
    mock.take_requests();
    let body = json!({"model": "gpt-4o", "max_tokens": 64, "messages": [{"role": "user", "content": "News?"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
    let response = gateway.post("/v1/messages", &body.to_string()).await;
    assert_eq!(response.status, 400, "{case}: {}", response.text());
    assert_eq!(response.json()["type"], "error", "{case}");
    assert_eq!(response.json()["error"]["type"], "invalid_request_error", "{case}");
    assert!(str_of(&response.json()["error"]["message"]).contains("web_search_20250305"), "{case}");
    assert!(mock.requests().is_empty(), "{case}: nothing may reach upstream");

    assert_no_failures(Kind::OpenAi, &failures);
}

#[tokio::test]
async fn matrix_azure() {
    let (mock, gateway, failures) = run_matrix(Kind::Azure).await;

    // The deployment comes from the model name and goes into the URL path: Loom refuses
    // names that are not URL-safe instead of building a path from them.
    let body = json!({"model": "gpt-4o/../../admin", "messages": [{"role": "user", "content": "Hi"}]});
    assert_rejected_locally(
        "openai-client -> azure / unsafe deployment name",
        &mock,
        &gateway,
        "/v1/chat/completions",
        &body,
        None,
        "deployment name `gpt-4o/../../admin`",
    )
    .await;

    assert_no_failures(Kind::Azure, &failures);
}

#[tokio::test]
async fn matrix_anthropic() {
    let (mock, gateway, failures) = run_matrix(Kind::Anthropic).await;

    let body = json!({"model": "claude-sonnet-4-5", "n": 2, "messages": [{"role": "user", "content": "Hi"}]});
    assert_rejected_locally(
        "openai-client -> anthropic / n: 2",
        &mock,
        &gateway,
        "/v1/chat/completions",
        &body,
        Some("n"),
        "`n`",
    )
    .await;
    let body = json!({"model": "claude-sonnet-4-5", "input": "x"});
    assert_rejected_locally(
        "openai-client -> anthropic / embeddings",
        &mock,
        &gateway,
        "/v1/embeddings",
        &body,
        None,
        "embeddings",
    )
    .await;

    assert_no_failures(Kind::Anthropic, &failures);
}

#[tokio::test]
async fn matrix_gemini() {
    let (mock, gateway, failures) = run_matrix(Kind::Gemini).await;

    let body = json!({"model": "gemini-2.5-flash", "logprobs": true,
        "messages": [{"role": "user", "content": "Hi"}]});
    assert_rejected_locally(
        "openai-client -> gemini / logprobs",
        &mock,
        &gateway,
        "/v1/chat/completions",
        &body,
        Some("logprobs"),
        "`logprobs`",
    )
    .await;

    assert_no_failures(Kind::Gemini, &failures);
}

#[tokio::test]
async fn matrix_vertex() {
    let (mock, gateway, failures) = run_matrix(Kind::Vertex).await;

    // Gemini may call several functions at once and has no switch to stop it.
    let body = json!({"model": "gemini-2.5-flash", "parallel_tool_calls": false, "tools": openai_tools(),
        "messages": [{"role": "user", "content": TOOL_PROMPT}]});
    assert_rejected_locally(
        "openai-client -> vertex / parallel_tool_calls: false",
        &mock,
        &gateway,
        "/v1/chat/completions",
        &body,
        Some("parallel_tool_calls"),
        "`parallel_tool_calls`",
    )
    .await;

    assert_no_failures(Kind::Vertex, &failures);
}

#[tokio::test]
async fn matrix_local_openai() {
    let (mock, gateway, failures) = run_matrix(Kind::LocalOpenAi).await;

    // A local server (vLLM's error shape: no `error` envelope) decides what it cannot
    // honour; Loom relays the 400 with its message.
    let case = "openai-client -> local-openai / n: 2 with greedy sampling";
    mock.push_reply(Reply::json_status(
        400,
        json!({"object": "error", "message": "`n` must be 1 when using greedy sampling, got 2.",
            "type": "BadRequestError", "param": "n", "code": 400}),
    ));
    let body =
        json!({"model": "gpt-4o", "n": 2, "temperature": 0, "messages": [{"role": "user", "content": "Hi"}]});
    let response = gateway.post("/v1/chat/completions", &body.to_string()).await;
    assert_eq!(response.status, 400, "{case}: {}", response.text());
    let error = &response.json()["error"];
    assert_eq!(error["type"], "invalid_request_error", "{case}: {error}");
    assert_eq!(
        error["message"],
        "provider `local-openai` returned HTTP 400: `n` must be 1 when using greedy sampling, got 2.",
        "{case}: {error}"
    );
    assert_eq!(mock.requests().len(), 1, "{case}");

    assert_no_failures(Kind::LocalOpenAi, &failures);
}

#[tokio::test]
async fn matrix_local_anthropic() {
    let (mock, gateway, failures) = run_matrix(Kind::LocalAnthropic).await;

    let body = json!({"model": "claude-sonnet-4-5", "response_format": {"type": "json_object"},
        "messages": [{"role": "user", "content": "Hi"}]});
    assert_rejected_locally(
        "openai-client -> local-anthropic / response_format json_object",
        &mock,
        &gateway,
        "/v1/chat/completions",
        &body,
        Some("response_format"),
        "`response_format`",
    )
    .await;
    let body = json!({"model": "claude-sonnet-4-5", "input": ["x"]});
    assert_rejected_locally(
        "openai-client -> local-anthropic / embeddings",
        &mock,
        &gateway,
        "/v1/embeddings",
        &body,
        None,
        "embeddings",
    )
    .await;

    assert_no_failures(Kind::LocalAnthropic, &failures);
}

// ---------------------------------------------------------------------------------------
// Bugs the matrix found, now fixed; each test keeps its bug from coming back.
// ---------------------------------------------------------------------------------------

/// `top_k` from an Anthropic-format client reaches the providers that take it.
///
/// It once did not: `anthropic_format.rs` `to_canonical` stored `top_k` in `chat.extra`,
/// then replaced the whole map with the request's other fields.
#[tokio::test]
async fn anthropic_client_top_k_reaches_the_provider() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&Kind::Anthropic.config(&mock)).await;
    mock.push_reply(Reply::json(anthropic_fixtures::message("claude-sonnet-4-5", "Hi")));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "top_k": 40,
        "messages": [{"role": "user", "content": "Hi"}]});
    let response = gateway.post("/v1/messages", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        mock.requests()[0].json(),
        body,
        "anthropic-client -> anthropic / top_k: Anthropic to Anthropic must be lossless (top_k is missing)"
    );
}

/// An Anthropic-format client reaching the anthropic provider keeps
/// `stop_reason: "stop_sequence"` and `stop_sequence`, whole and streamed.
///
/// It once got `end_turn` with `stop_sequence: null`: the canonical finish reason had no
/// room for the sequence.
#[tokio::test]
async fn anthropic_client_keeps_stop_sequence_from_anthropic() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&Kind::Anthropic.config(&mock)).await;
    let mut answer = anthropic_fixtures::message("claude-sonnet-4-5", "1, 2, 3, ");
    answer["stop_reason"] = json!("stop_sequence");
    answer["stop_sequence"] = json!("4");
    mock.push_reply(Reply::json(answer));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stop_sequences": ["4"],
        "messages": [{"role": "user", "content": "Count to ten"}]});
    let response = gateway.post("/v1/messages", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let got = response.json();
    assert_eq!(
        (&got["stop_reason"], &got["stop_sequence"]),
        (&json!("stop_sequence"), &json!("4")),
        "anthropic-client -> anthropic / whole / stop sequence: {got}"
    );
}

/// An OpenAI-format upstream's tool call with empty `arguments` (what OpenAI-compatible
/// servers send for a function without parameters) reaches an Anthropic-format client as
/// `"input": {}`: Anthropic's `tool_use.input` is always an object.
///
/// It once arrived as `"input": ""`, since arguments that did not parse as JSON became a
/// string.
#[tokio::test]
async fn anthropic_client_gets_an_object_input_for_empty_tool_arguments() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&Kind::LocalOpenAi.config(&mock)).await;
    let mut answer = fixtures::chat_tool_call("gpt-4o");
    answer["choices"][0]["message"]["tool_calls"][0]["function"] =
        json!({"name": "get_time", "arguments": ""});
    mock.push_reply(Reply::json(answer));
    let body = json!({"model": "gpt-4o", "max_tokens": 64, "messages": [{"role": "user", "content": "Time?"}],
        "tools": [{"name": "get_time", "input_schema": {"type": "object", "properties": {}}}]});
    let response = gateway.post("/v1/messages", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let got = response.json();
    assert_eq!(
        got["content"],
        json!([{"type": "tool_use", "id": fixtures::TOOL_CALL_ID, "name": "get_time", "input": {}}]),
        "anthropic-client -> local-openai / whole / tool call without arguments: {got}"
    );
}

/// Anthropic server tools (web search, code execution, ...) pass through to the
/// anthropic provider; other providers refuse them (as `matrix_openai` checks).
///
/// They were once refused while parsing, before routing, for every provider.
#[tokio::test]
async fn anthropic_server_tools_pass_through_to_the_anthropic_provider() {
    let mock = MockUpstream::start().await;
    let gateway = TestGateway::start(&Kind::Anthropic.config(&mock)).await;
    mock.push_reply(Reply::json(anthropic_fixtures::message("claude-sonnet-4-5", "Here is the news.")));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
        "messages": [{"role": "user", "content": "News?"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]});
    let response = gateway.post("/v1/messages", &body.to_string()).await;
    assert_eq!(
        response.status,
        200,
        "anthropic-client -> anthropic / server tool must reach Anthropic: {}",
        response.text()
    );
    assert_eq!(
        mock.requests()[0].json()["tools"],
        body["tools"],
        "anthropic-client -> anthropic / server tool"
    );
}
