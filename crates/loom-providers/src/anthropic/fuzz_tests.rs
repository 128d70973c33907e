//! Fuzzing the Anthropic stream decoder with arbitrary event sequences, read as
//! [`Inner::stream`](super::Inner) reads them: each event's data decoded by the upstream
//! into a [`StreamEvent`], then turned into chunks by the [`StreamTranslator`]. It never
//! panics, and every chunk serializes.

use proptest::prelude::*;

use super::stream::StreamTranslator;
use super::wire::StreamEvent;
use crate::fuzz_tests::{Format, config, stream_payloads, upstream};

/// A stream as Anthropic sends it (text, thinking, a tool call, the end), then an error.
const EXAMPLES: &[&str] = &[
    r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":5,"cache_creation_input_tokens":0}}}"#,
    r#"{"type":"ping"}"#,
    r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
    r#"{"type":"content_block_start","index":1,"content_block":{"type":"thinking","thinking":""}}"#,
    r#"{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
    r#"{"type":"content_block_delta","index":1,"delta":{"type":"signature_delta","signature":"c2ln"}}"#,
    r#"{"type":"content_block_start","index":2,"content_block":{"type":"redacted_thinking","data":"cmVk"}}"#,
    r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#,
    r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#,
    r#"{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{"type":"char_location","cited_text":"x"}}}"#,
    r#"{"type":"content_block_stop","index":0}"#,
    r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}"#,
    r#"{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":15}}"#,
    r#"{"type":"message_stop"}"#,
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
];

const KEYS: &[&str] = &[
    "type",
    "message",
    "id",
    "role",
    "model",
    "content",
    "stop_reason",
    "stop_sequence",
    "usage",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "index",
    "content_block",
    "text",
    "thinking",
    "signature",
    "data",
    "name",
    "input",
    "delta",
    "partial_json",
    "citation",
    "error",
];

const WORDS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
    "text",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "server_tool_use",
    "text_delta",
    "thinking_delta",
    "signature_delta",
    "input_json_delta",
    "citations_delta",
    "end_turn",
    "max_tokens",
    "tool_use",
    "overloaded_error",
    "assistant",
    "",
];

/// Anthropic's stream, with counts where real token counts are.
const FORMAT: Format =
    Format { script: EXAMPLES, examples: EXAMPLES, keys: KEYS, words: WORDS, huge_numbers: false };

/// Reads `events` as the stream does, up to the end or the first event that does not
/// decode or translate; every chunk serializes.
fn decode(events: Vec<String>) -> Result<(), TestCaseError> {
    let upstream = upstream();
    let mut translator = StreamTranslator::new(&upstream.name);
    for data in events {
        if translator.is_complete() {
            break;
        }
        if data.trim().is_empty() {
            continue;
        }
        let Ok(event) = upstream.decode::<StreamEvent>(data.as_bytes()) else { break };
        let Ok(chunks) = translator.on_event(event) else { break };
        for chunk in chunks {
            prop_assert!(serde_json::to_vec(&chunk).is_ok());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_event_sequence_decodes_without_panicking(events in stream_payloads(FORMAT)) {
        decode(events)?;
    }

    #[test]
    fn any_event_sequence_with_huge_counts_decodes_without_panicking(events in stream_payloads(Format { huge_numbers: true, ..FORMAT })) {
        decode(events)?;
    }
}

/// The minimal case the huge counts found: the stream's first event panics in debug
/// builds, and in release the wrapped sum reaches the usage (and the ledger).
#[test]
fn huge_cache_counts_do_not_overflow() {
    let start = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":5,"cache_creation_input_tokens":18446744073709551615}}}"#;
    let upstream = upstream();
    let event = upstream.decode::<StreamEvent>(start.as_bytes());
    let chunks = event.map(|event| StreamTranslator::new("fuzz").on_event(event));
    // Refusing the event is as good as saturating the count; wrapping or panicking is not.
    if let Ok(Ok(chunks)) = chunks {
        let usage = chunks.first().and_then(|chunk| chunk.start_usage.clone());
        assert_eq!(usage.map(|usage| usage.prompt_tokens), Some(u64::MAX));
    }
}
