//! Property-based fuzzing of both front doors' request parsers: whatever a client sends,
//! parsing never panics and ends in a request or an `invalid_request` error; a request
//! that parses also translates to every provider format without panicking.
//!
//! The inputs are arbitrary bytes, valid bodies cut short or with a byte changed, and
//! JSON built from the real field names, so most cases get past the JSON syntax check
//! into the field checks, and many on into the translation.

use loom_core::{ChatRequest, ErrorKind, LoomError};
use loom_gateway::anthropic_format::{parse_count_tokens, parse_messages};
use loom_gateway::openai_format::{parse_chat, parse_embeddings};
use loom_providers::anthropic::request::to_anthropic;
use loom_providers::gemini::request::to_gemini;
use proptest::prelude::*;
use serde_json::{Value, json};

mod fuzz_support;

use fuzz_support::{Field, always, config};

/// Field names of OpenAI and Anthropic requests, messages, content parts and tools.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "name",
    "tools",
    "tool_choice",
    "tool_calls",
    "tool_call_id",
    "tool_use_id",
    "function",
    "parameters",
    "arguments",
    "type",
    "text",
    "image_url",
    "url",
    "detail",
    "input_audio",
    "file",
    "file_id",
    "file_data",
    "filename",
    "source",
    "media_type",
    "data",
    "stream",
    "stream_options",
    "include_usage",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "stop",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "user",
    "metadata",
    "user_id",
    "system",
    "thinking",
    "budget_tokens",
    "reasoning_effort",
    "response_format",
    "json_schema",
    "schema",
    "logit_bias",
    "logprobs",
    "input",
    "input_schema",
    "encoding_format",
    "dimensions",
    "id",
    "is_error",
    "signature",
    "cache_control",
    "refusal",
    "citations",
    "disable_parallel_tool_use",
];

/// String values those fields take: roles, part and tool types, choices, formats.
const WORDS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "text",
    "image",
    "image_url",
    "input_audio",
    "file",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "auto",
    "any",
    "none",
    "required",
    "enabled",
    "disabled",
    "base64",
    "url",
    "float",
    "json_object",
    "json_schema",
    "ephemeral",
    "high",
    "low",
    "image/png",
    "application/pdf",
    "data:image/png;base64,iVBORw0KGgo=",
    "data:;base64,",
    "data:image/png;base64,%%%",
    "https://example.com/cat.png",
    "gpt-4o",
    "claude-sonnet-4",
    "gemini-2.0-flash",
    "o3-mini",
    "",
    "\u{0}",
    "é\u{1F600}",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(WORDS).prop_map(str::to_owned), 1 => any::<String>()]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(vec![0i64, 1, -1, 2, 4096, i64::from(u32::MAX), i64::MAX, i64::MIN])
            .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|float| serde_json::Number::from_f64(float).map_or(Value::Null, Value::Number)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        word().prop_map(Value::String),
    ]
}

/// Any JSON value whose objects use the real field names.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(|fields| {
                Value::Object(fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
            }),
        ]
    })
}

/// `valid` mostly, sometimes any value: a field of the right shape, or (1 in 40) of a
/// wrong one. A body has dozens of fields, so most bodies stay valid and reach the checks
/// after the JSON is read.
fn mostly(valid: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![39 => valid, 1 => value()].boxed()
}

/// A field present in 5 objects of 8.
fn often(key: &'static str, value: BoxedStrategy<Value>) -> Field {
    fuzz_support::sometimes(key, 5.0 / 8.0, value)
}

/// An object of `fields`, plus maybe (1 in 30) a random field.
fn object(fields: Vec<Field>) -> BoxedStrategy<Value> {
    fuzz_support::object(fields, KEYS, value().boxed())
}

fn text() -> BoxedStrategy<Value> {
    mostly(word().prop_map(Value::String))
}

fn int() -> BoxedStrategy<Value> {
    mostly(prop_oneof![9 => (0u32..5000).prop_map(Value::from), 1 => number()])
}

fn boolean() -> BoxedStrategy<Value> {
    mostly(any::<bool>().prop_map(Value::Bool))
}

fn fixed(value: &'static str) -> BoxedStrategy<Value> {
    mostly(Just(Value::from(value)))
}

fn schema() -> BoxedStrategy<Value> {
    mostly(Just(json!({"type": "object", "properties": {"city": {"type": "string"}}})))
}

/// One of `choices`, mostly.
fn one_of(choices: &[&'static str]) -> BoxedStrategy<Value> {
    mostly(proptest::sample::select(choices.to_vec()).prop_map(Value::from))
}

fn list(item: BoxedStrategy<Value>, sizes: std::ops::Range<usize>) -> BoxedStrategy<Value> {
    mostly(proptest::collection::vec(item, sizes).prop_map(Value::Array))
}

/// An OpenAI content part, by its real `type`.
fn openai_part() -> BoxedStrategy<Value> {
    prop_oneof![
        object(vec![always("type", fixed("text")), always("text", text())]),
        object(vec![
            always("type", fixed("image_url")),
            always(
                "image_url",
                object(vec![always("url", text()), often("detail", one_of(&["auto", "low", "high"]))])
            ),
        ]),
        object(vec![
            always("type", fixed("input_audio")),
            always(
                "input_audio",
                object(vec![always("data", text()), always("format", one_of(&["wav", "mp3"]))])
            ),
        ]),
        object(vec![
            always("type", fixed("file")),
            always(
                "file",
                object(vec![often("file_id", text()), often("file_data", text()), often("filename", text())])
            ),
        ]),
    ]
    .boxed()
}

/// An Anthropic content block, by its real `type`.
fn anthropic_block() -> BoxedStrategy<Value> {
    let source = object(vec![
        always("type", one_of(&["base64", "url", "text", "file"])),
        often("media_type", one_of(&["image/png", "image/jpeg", "application/pdf", "text/plain"])),
        often("data", text()),
        often("url", text()),
    ]);
    prop_oneof![
        object(vec![
            always("type", fixed("text")),
            always("text", text()),
            often("cache_control", object(vec![always("type", fixed("ephemeral"))]))
        ]),
        object(vec![always("type", one_of(&["image", "document"])), always("source", source)]),
        object(vec![
            always("type", fixed("tool_use")),
            always("id", text()),
            always("name", text()),
            always("input", mostly(Just(json!({"city": "Paris"})))),
        ]),
        object(vec![
            always("type", fixed("tool_result")),
            always("tool_use_id", text()),
            often(
                "content",
                mostly(prop_oneof![
                    word().prop_map(Value::String),
                    Just(json!([{"type": "text", "text": "sunny"}]))
                ])
            ),
            often("is_error", boolean()),
        ]),
        object(vec![
            always("type", fixed("thinking")),
            always("thinking", text()),
            always("signature", text())
        ]),
        object(vec![always("type", fixed("redacted_thinking")), always("data", text())]),
    ]
    .boxed()
}

fn tool_calls() -> BoxedStrategy<Value> {
    let call = object(vec![
        always("id", text()),
        always("type", fixed("function")),
        always("function", object(vec![always("name", text()), always("arguments", text())])),
    ]);
    list(call, 0..3)
}

/// An OpenAI message: a role, text or parts, and the tool fields.
fn openai_message() -> BoxedStrategy<Value> {
    let content =
        mostly(prop_oneof![word().prop_map(Value::String), list(openai_part(), 0..4), Just(Value::Null)]);
    object(vec![
        always("role", one_of(&["user", "assistant", "system", "developer", "tool", "function"])),
        always("content", content),
        often("name", text()),
        often("tool_calls", tool_calls()),
        often("tool_call_id", text()),
    ])
}

/// An Anthropic message: `user` or `assistant`, text or blocks.
fn anthropic_message() -> BoxedStrategy<Value> {
    let content = mostly(prop_oneof![word().prop_map(Value::String), list(anthropic_block(), 0..4)]);
    object(vec![always("role", one_of(&["user", "assistant"])), always("content", content)])
}

fn openai_tools() -> BoxedStrategy<Value> {
    let tool = object(vec![
        always("type", one_of(&["function", "custom", "web_search"])),
        always(
            "function",
            object(vec![always("name", text()), often("description", text()), often("parameters", schema())]),
        ),
    ]);
    list(tool, 0..3)
}

fn anthropic_tools() -> BoxedStrategy<Value> {
    let tool = object(vec![
        always("name", text()),
        often("description", text()),
        often("input_schema", schema()),
        often("type", one_of(&["custom", "web_search_20250305", "bash_20250124"])),
    ]);
    list(tool, 0..3)
}

fn openai_tool_choice() -> BoxedStrategy<Value> {
    mostly(prop_oneof![
        one_of(&["auto", "none", "required"]),
        object(vec![
            always("type", fixed("function")),
            always("function", object(vec![always("name", text())]))
        ]),
    ])
}

fn anthropic_tool_choice() -> BoxedStrategy<Value> {
    object(vec![
        always("type", one_of(&["auto", "any", "tool", "none"])),
        often("name", text()),
        often("disable_parallel_tool_use", boolean()),
    ])
}

fn strings() -> BoxedStrategy<Value> {
    list(word().prop_map(Value::String).boxed(), 0..3)
}

/// An OpenAI chat or embeddings body: the real fields, of mostly the right shapes.
fn openai_request() -> BoxedStrategy<Value> {
    let input = mostly(prop_oneof![
        word().prop_map(Value::String),
        strings(),
        proptest::collection::vec(0u32..100_000, 0..4).prop_map(|ids| json!(ids)),
    ]);
    let main = object(vec![
        always("model", text()),
        always("messages", list(openai_message(), 1..4)),
        often("max_tokens", int()),
        often("stream", boolean()),
        often("tools", openai_tools()),
        often("tool_choice", openai_tool_choice()),
        often("input", input),
    ]);
    let more = object(vec![
        often("stop", mostly(prop_oneof![word().prop_map(Value::String), strings()])),
        often("temperature", mostly(number())),
        often("n", int()),
        often("max_completion_tokens", int()),
        often("stream_options", object(vec![always("include_usage", boolean())])),
        often(
            "response_format",
            object(vec![
                always("type", one_of(&["text", "json_object", "json_schema"])),
                often("json_schema", schema()),
            ]),
        ),
        often("reasoning_effort", one_of(&["minimal", "low", "medium", "high"])),
        often("encoding_format", one_of(&["float", "base64"])),
        often("dimensions", int()),
    ]);
    merged(main, more)
}

/// An Anthropic Messages or `count_tokens` body: the real fields, of mostly the right shapes.
fn anthropic_request() -> BoxedStrategy<Value> {
    let system = mostly(prop_oneof![word().prop_map(Value::String), list(anthropic_block(), 0..3)]);
    let main = object(vec![
        always("model", text()),
        always("messages", list(anthropic_message(), 1..4)),
        always("max_tokens", int()),
        often("system", system),
        often("stream", boolean()),
        often("tools", anthropic_tools()),
        often("tool_choice", anthropic_tool_choice()),
    ]);
    let more = object(vec![
        often("stop_sequences", strings()),
        often("temperature", mostly(number())),
        often("top_k", int()),
        often("metadata", object(vec![always("user_id", text())])),
        often(
            "thinking",
            object(vec![always("type", one_of(&["enabled", "disabled"])), often("budget_tokens", int())]),
        ),
    ]);
    merged(main, more)
}

/// `main`, with the fields of `more` in 3 bodies of 10: most requests set a handful.
fn merged(main: BoxedStrategy<Value>, more: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    (main, proptest::option::weighted(0.3, more))
        .prop_map(|(mut body, more)| {
            if let (Value::Object(body), Some(Value::Object(more))) = (&mut body, more) {
                body.extend(more);
            }
            body
        })
        .boxed()
}

/// Well-formed bodies of each front door, to be cut short or changed a byte.
const VALID_BODIES: &[&str] = &[
    r#"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"tool_choice":"auto","stream":true,"stream_options":{"include_usage":true},"max_tokens":64}"#,
    r#"{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"base64","dimensions":8}"#,
    r#"{"model":"claude-sonnet-4","max_tokens":1024,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},{"type":"text","text":"Hi"}]},{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"c2ln"},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny","is_error":false}]}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"get_weather"},"thinking":{"type":"enabled","budget_tokens":2048}}"#,
];

/// A valid body cut at `cut` (a fraction of its length) with the byte at `at` replaced by `byte`.
fn mangled() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(VALID_BODIES),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(body, cut, at, byte, replace)| {
            let mut bytes = body.as_bytes().to_vec();
            if replace {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            } else {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

/// Bodies of every kind: arbitrary bytes, mangled valid bodies, JSON-ish values, requests.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..256),
        1 => any::<String>().prop_map(String::into_bytes),
        2 => mangled(),
        2 => value().prop_map(|value| value.to_string().into_bytes()),
        3 => openai_request().prop_map(|value| value.to_string().into_bytes()),
        3 => anthropic_request().prop_map(|value| value.to_string().into_bytes()),
    ]
}

/// A parse error is the client's: an `invalid_request` (400) with a message.
fn assert_client_error(error: &LoomError) {
    assert_eq!(error.kind, ErrorKind::InvalidRequest, "{error:?}");
    assert_eq!(error.http_status(), 400);
    assert!(!error.message.is_empty());
    assert!(error.upstream.is_none());
}

/// A parsed request goes on to any provider: translating it never panics, and it
/// serializes again.
fn assert_translates(chat: &ChatRequest) {
    let _ = to_anthropic(chat, 4096);
    let _ = to_gemini(chat);
    assert!(serde_json::to_vec(chat).is_ok());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn openai_chat_bodies_parse_or_are_refused(body in body()) {
        match parse_chat(&body) {
            Ok(chat) => {
                prop_assert!(!chat.model.is_empty() && !chat.messages.is_empty());
                assert_translates(&chat);
            }
            Err(error) => assert_client_error(&error),
        }
    }

    #[test]
    fn openai_embeddings_bodies_parse_or_are_refused(body in body()) {
        match parse_embeddings(&body) {
            Ok(embeddings) => {
                prop_assert!(!embeddings.model.is_empty() && !embeddings.input.is_empty());
                prop_assert!(serde_json::to_vec(&embeddings).is_ok());
            }
            Err(error) => assert_client_error(&error),
        }
    }

    #[test]
    fn anthropic_messages_bodies_parse_or_are_refused(body in body()) {
        match parse_messages(&body) {
            Ok(chat) => {
                // (`messages` may come out empty: a user turn of `content: []` adds none.)
                prop_assert!(chat.max_tokens.is_some());
                assert_translates(&chat);
            }
            Err(error) => assert_client_error(&error),
        }
    }

    #[test]
    fn anthropic_count_tokens_bodies_parse_or_are_refused(body in body()) {
        match parse_count_tokens(&body) {
            Ok(chat) => assert_translates(&chat),
            Err(error) => assert_client_error(&error),
        }
    }
}

/// The generators reach past the syntax check: a good share of their bodies parse, for
/// each parser.
#[test]
fn the_generated_bodies_include_accepted_requests() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    const BODIES: usize = 512;
    let mut runner = TestRunner::deterministic();
    let strategy = body();
    let mut accepted = [0usize; 4];
    for _ in 0..BODIES {
        let body = strategy.new_tree(&mut runner).map(|tree| tree.current()).unwrap_or_default();
        accepted[0] += usize::from(parse_chat(&body).is_ok());
        accepted[1] += usize::from(parse_embeddings(&body).is_ok());
        accepted[2] += usize::from(parse_messages(&body).is_ok());
        accepted[3] += usize::from(parse_count_tokens(&body).is_ok());
    }
    eprintln!("ACCEPTED {accepted:?}");
    assert!(
        accepted.iter().all(|count| *count >= BODIES / 20),
        "accepted of {BODIES} (chat, embeddings, messages, count_tokens): {accepted:?}"
    );
}
