//! Fuzzing the OpenAI-format stream decoder ([`WireChunks`]) with arbitrary event
//! sequences: it never panics, an error ends the stream, every error names the upstream
//! (which routing relies on), and a stream ends cleanly only at `data: [DONE]`.

use futures_util::stream;
use loom_core::StreamChunk;
use proptest::prelude::*;
use sse_core::MessageEvent;

use super::WireChunks;
use crate::error::ProviderError;
use crate::fuzz_tests::{Format, config, event, ready_items, stream_payloads, upstream};

/// Chunks as OpenAI streams them: text, a tool call, usage, an in-band error.
const EXAMPLES: &[&str] = &[
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel","reasoning_content":"hm"},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]},"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}"#,
    r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":"internal"}}"#,
];

const KEYS: &[&str] = &[
    "id",
    "object",
    "created",
    "model",
    "system_fingerprint",
    "choices",
    "index",
    "delta",
    "role",
    "content",
    "refusal",
    "reasoning_content",
    "tool_calls",
    "type",
    "function",
    "name",
    "arguments",
    "logprobs",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "cached_tokens",
    "completion_tokens_details",
    "reasoning_tokens",
    "error",
    "message",
    "code",
    "param",
];

const WORDS: &[&str] = &[
    "chatcmpl-1",
    "chat.completion.chunk",
    "gpt-4o",
    "assistant",
    "function",
    "stop",
    "length",
    "tool_calls",
    "",
];

/// One step of the upstream's event stream: an event, or the body breaking.
#[derive(Debug, Clone)]
enum Step {
    Event(MessageEvent),
    Break,
}

/// A stream as OpenAI sends it, ending in `[DONE]`.
const SCRIPT: &[&str] = &[EXAMPLES[0], EXAMPLES[1], EXAMPLES[2], EXAMPLES[3], EXAMPLES[4], "[DONE]"];

/// The events of a stream, and maybe the body breaking somewhere.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    let format = Format { script: SCRIPT, examples: EXAMPLES, keys: KEYS, words: WORDS, huge_numbers: true };
    let events = stream_payloads(format);
    (events, proptest::option::weighted(0.2, any::<prop::sample::Index>())).prop_map(|(events, broken_at)| {
        let mut steps: Vec<Step> = events.into_iter().map(|data| Step::Event(event(data))).collect();
        if let Some(at) = broken_at {
            steps.insert(at.index(steps.len() + 1), Step::Break);
        }
        steps
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_event_sequence_decodes_without_panicking(steps in steps()) {
        let upstream = upstream();
        let items = steps.iter().map(|step| match step {
            Step::Event(event) => Ok(event.clone()),
            Step::Break => Err(ProviderError::InvalidResponse { provider: "fuzz".into(), reason: "stream broke".into() }),
        });
        let chunks = WireChunks { events: Some(stream::iter(items.collect::<Vec<_>>())), upstream, first: true };
        let chunks = ready_items(chunks);

        let errors: Vec<usize> = chunks.iter().enumerate().filter(|(_, chunk)| chunk.is_err()).map(|(at, _)| at).collect();
        prop_assert!(errors.iter().all(|at| at + 1 == chunks.len()), "an error ends the stream");
        for chunk in &chunks {
            match chunk {
                Ok(StreamChunk::Wire(wire)) => {
                    let _ = (wire.decode(), wire.model(), wire.usage(), wire.has_choices());
                }
                Ok(StreamChunk::Typed(_)) => prop_assert!(false, "an OpenAI stream is passed on as wire chunks"),
                Err(error) => prop_assert!(
                    error.upstream.as_ref().is_some_and(|failure| failure.provider == "fuzz"),
                    "the error names its upstream: {error:?}"
                ),
            }
        }
        if chunks.last().is_none_or(Result::is_ok) {
            let done = steps.iter().any(|step| matches!(step, Step::Event(event) if event.data == "[DONE]"));
            prop_assert!(done, "a stream ends cleanly only at [DONE]");
        }
    }
}
