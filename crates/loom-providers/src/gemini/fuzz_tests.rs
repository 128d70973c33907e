//! Fuzzing the Gemini stream decoder with arbitrary event sequences, read as
//! [`Inner::stream`](super::Inner) reads them: each event's data decoded by the upstream
//! into a [`GenerateContentResponse`], turned into chunks by the [`StreamTranslator`],
//! and the usage chunk added at the end. It never panics, and every chunk serializes.

use proptest::prelude::*;

use super::response::StreamTranslator;
use super::wire::GenerateContentResponse;
use crate::fuzz_tests::{Format, config, stream_payloads, upstream};

/// A stream as Gemini sends it: text, thoughts, a function call with the finish reason,
/// another candidate, a blocked one.
const EXAMPLES: &[&str] = &[
    r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}],"usageMetadata":{"promptTokenCount":11,"candidatesTokenCount":2,"totalTokenCount":13},"modelVersion":"gemini-2.0-flash","responseId":"resp-1"}"#,
    r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"thinking...","thought":true},{"text":"lo"}]},"index":0}],"modelVersion":"gemini-2.5-pro"}"#,
    r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"Cs4BAdHtim9sig"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":8,"thoughtsTokenCount":20,"cachedContentTokenCount":10,"totalTokenCount":58},"modelVersion":"gemini-2.5-pro","responseId":"resp-2"}"#,
    r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"!"}]},"finishReason":"MAX_TOKENS","index":1}],"usageMetadata":{"promptTokenCount":11,"candidatesTokenCount":6,"totalTokenCount":17}}"#,
    r#"{"candidates":[{"finishReason":"SAFETY","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"HIGH"}]}],"promptFeedback":{"blockReason":"SAFETY"}}"#,
];

const KEYS: &[&str] = &[
    "candidates",
    "content",
    "role",
    "parts",
    "text",
    "thought",
    "thoughtSignature",
    "functionCall",
    "name",
    "args",
    "id",
    "finishReason",
    "index",
    "safetyRatings",
    "usageMetadata",
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
    "totalTokenCount",
    "modelVersion",
    "responseId",
    "promptFeedback",
];

const WORDS: &[&str] =
    &["model", "user", "STOP", "MAX_TOKENS", "SAFETY", "OTHER", "get_weather", "gemini-2.0-flash", ""];

/// Gemini's stream, with counts where real token counts are.
const FORMAT: Format =
    Format { script: EXAMPLES, examples: EXAMPLES, keys: KEYS, words: WORDS, huge_numbers: false };

/// Reads `events` as the stream does, up to the end or the first event that does not
/// decode, adding the usage chunk at a finished end; every chunk serializes.
fn decode(events: Vec<String>) -> Result<(), TestCaseError> {
    let upstream = upstream();
    let mut translator = StreamTranslator::new("chatcmpl-fuzz".to_owned(), "gemini-2.0-flash");
    let mut chunks = Vec::new();
    let mut broken = false;
    for data in events {
        if data.trim().is_empty() {
            continue;
        }
        let Ok(response) = upstream.decode::<GenerateContentResponse>(data.as_bytes()) else {
            broken = true;
            break;
        };
        chunks.extend(translator.on_chunk(response));
    }
    if !broken && translator.is_finished() {
        chunks.extend(translator.finish());
    }
    for chunk in chunks {
        prop_assert!(serde_json::to_vec(&chunk).is_ok());
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

/// The minimal case the huge counts found: the usage chunk at the end panics in debug
/// builds, and in release the wrapped sums reach the usage (and the ledger).
#[test]
fn huge_counts_do_not_overflow() {
    let last = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":18446744073709551615,"candidatesTokenCount":8,"thoughtsTokenCount":18446744073709551615,"totalTokenCount":58}}"#;
    let upstream = upstream();
    let Ok(response) = upstream.decode::<GenerateContentResponse>(last.as_bytes()) else { return };
    let mut translator = StreamTranslator::new("chatcmpl-fuzz".to_owned(), "gemini-2.0-flash");
    let _ = translator.on_chunk(response);
    // Saturating is as good as refusing the chunk; wrapping or panicking is not.
    let usage = translator.finish().and_then(|chunk| chunk.usage);
    assert_eq!(usage.map(|usage| (usage.completion_tokens, usage.total_tokens)), Some((u64::MAX, u64::MAX)));
}
