//! OpenAI wire-format fixtures: the bodies the mock answers with by default.
//!
//! Every shape here follows OpenAI's public API reference (Chat Completions,
//! chat completion chunks, Embeddings, Models and error objects), so a test can
//! build on them or assert a gateway's output against them.

use serde_json::{Value, json};

use crate::SseStep;

/// The `id` of every default chat completion and chunk.
pub const CHAT_ID: &str = "chatcmpl-mock";
/// The fixed `created` timestamp of every default chat completion and chunk.
pub const CREATED: u64 = 1_700_000_000;
/// The `system_fingerprint` of every default chat completion and chunk.
pub const SYSTEM_FINGERPRINT: &str = "fp_mock";
/// The assistant content of the default chat completion.
pub const CONTENT: &str = "Hello from the mock upstream";
/// The content pieces of the default stream, in order; they concatenate to [`CONTENT`].
pub const STREAM_PIECES: [&str; 5] = ["Hello", " from", " the", " mock", " upstream"];
/// `usage.prompt_tokens` of the default chat completion.
pub const PROMPT_TOKENS: u64 = 9;
/// `usage.completion_tokens` of the default chat completion.
pub const COMPLETION_TOKENS: u64 = 6;
/// Model ids listed by the default `GET /v1/models` reply.
pub const MODELS: [&str; 4] = ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "text-embedding-3-large"];
/// Prompt tokens the default embeddings reply counts per input.
pub const EMBEDDING_TOKENS_PER_INPUT: u64 = 4;
/// Length of every default embedding vector.
pub const EMBEDDING_DIMENSIONS: usize = 4;

/// The `usage` object of the default chat completion, with OpenAI's token details.
pub fn chat_usage() -> Value {
    json!({
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// A whole (non-streamed) `chat.completion` answering with [`CONTENT`].
pub fn chat_completion(model: &str) -> Value {
    json!({
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": CONTENT,
                "refusal": null,
                "annotations": []
            },
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": chat_usage(),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT
    })
}

/// One `chat.completion.chunk` with the given choices; `usage: null` is added when
/// `include_usage` is set, as OpenAI does on every chunk but the last.
pub fn chat_chunk(model: &str, choices: Value, include_usage: bool) -> Value {
    let mut chunk = json!({
        "id": CHAT_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices
    });
    if include_usage {
        chunk["usage"] = Value::Null;
    }
    chunk
}

/// The JSON payloads of the default stream, in order, without the final `[DONE]`.
///
/// A first chunk with `delta: {role, content: "", refusal: null}`, one chunk per
/// [`STREAM_PIECES`] entry, a chunk with an empty delta and `finish_reason: "stop"`,
/// and with `include_usage` a last chunk with `choices: []` and the usage.
pub fn chat_stream_chunks(model: &str, include_usage: bool) -> Vec<Value> {
    let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut chunks = Vec::with_capacity(STREAM_PIECES.len() + 3);
    chunks.push(chat_chunk(
        model,
        choice(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null),
        include_usage,
    ));
    for piece in STREAM_PIECES {
        chunks.push(chat_chunk(model, choice(json!({"content": piece}), Value::Null), include_usage));
    }
    chunks.push(chat_chunk(model, choice(json!({}), json!("stop")), include_usage));
    if include_usage {
        let mut last = chat_chunk(model, json!([]), false);
        last["usage"] = chat_usage();
        chunks.push(last);
    }
    chunks
}

/// The default stream as SSE steps: one `data:` event per chunk, then `data: [DONE]`.
pub fn chat_stream_steps(model: &str, include_usage: bool) -> Vec<SseStep> {
    chat_stream_chunks(model, include_usage)
        .iter()
        .map(|chunk| SseStep::Data(chunk.to_string()))
        .chain(std::iter::once(SseStep::Data("[DONE]".to_owned())))
        .collect()
}

/// The `id` of the tool call in [`chat_tool_call`] and [`chat_tool_call_stream_chunks`].
pub const TOOL_CALL_ID: &str = "call_Jx4kQ2mZ8vLp0TnW7bYc3RdE";
/// The function the scripted tool call calls.
pub const TOOL_CALL_NAME: &str = "get_weather";
/// The JSON arguments of the scripted tool call.
pub const TOOL_CALL_ARGUMENTS: &str = "{\"city\":\"Paris\"}";
/// The argument fragments of the streamed tool call, in order; they concatenate to
/// [`TOOL_CALL_ARGUMENTS`] (OpenAI streams arguments a few tokens at a time).
pub const TOOL_CALL_ARGUMENT_PIECES: [&str; 5] = ["{\"", "city", "\":\"", "Paris", "\"}"];

/// A whole `chat.completion` in which the model calls [`TOOL_CALL_NAME`] with
/// [`TOOL_CALL_ARGUMENTS`]: `content: null`, one `tool_calls` entry and
/// `finish_reason: "tool_calls"`, as OpenAI answers a forced or chosen function call.
pub fn chat_tool_call(model: &str) -> Value {
    json!({
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": TOOL_CALL_ID,
                    "type": "function",
                    "function": {"name": TOOL_CALL_NAME, "arguments": TOOL_CALL_ARGUMENTS}
                }],
                "refusal": null,
                "annotations": []
            },
            "logprobs": null,
            "finish_reason": "tool_calls"
        }],
        "usage": chat_usage(),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT
    })
}

/// The JSON payloads of a streamed tool call, in order, without the final `[DONE]`.
///
/// A first chunk whose delta carries the role, `content: null` and the call's
/// `index`, `id`, `type` and `function.name` with empty `arguments`; one chunk per
/// [`TOOL_CALL_ARGUMENT_PIECES`] entry with only `index` and an `arguments`
/// fragment; a chunk with an empty delta and `finish_reason: "tool_calls"`; and
/// with `include_usage` a last chunk with `choices: []` and the usage.
pub fn chat_tool_call_stream_chunks(model: &str, include_usage: bool) -> Vec<Value> {
    let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut chunks = Vec::with_capacity(TOOL_CALL_ARGUMENT_PIECES.len() + 3);
    let first = json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{
            "index": 0,
            "id": TOOL_CALL_ID,
            "type": "function",
            "function": {"name": TOOL_CALL_NAME, "arguments": ""}
        }],
        "refusal": null
    });
    chunks.push(chat_chunk(model, choice(first, Value::Null), include_usage));
    for piece in TOOL_CALL_ARGUMENT_PIECES {
        let delta = json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]});
        chunks.push(chat_chunk(model, choice(delta, Value::Null), include_usage));
    }
    chunks.push(chat_chunk(model, choice(json!({}), json!("tool_calls")), include_usage));
    if include_usage {
        let mut last = chat_chunk(model, json!([]), false);
        last["usage"] = chat_usage();
        chunks.push(last);
    }
    chunks
}

/// The streamed tool call as SSE steps, as a client that set
/// `stream_options.include_usage` gets it: one `data:` event per chunk of
/// [`chat_tool_call_stream_chunks`] (usage included), then `data: [DONE]`.
pub fn chat_tool_call_stream_steps(model: &str) -> Vec<SseStep> {
    chat_tool_call_stream_chunks(model, true)
        .iter()
        .map(|chunk| SseStep::Data(chunk.to_string()))
        .chain(std::iter::once(SseStep::Data("[DONE]".to_owned())))
        .collect()
}

/// OpenAI's deltas for two parallel tool calls (`get_weather` with id `call_weather_1`,
/// `get_time` with id `call_time_2`), arguments in fragments, as completion
/// `chatcmpl-tools` of `gpt-4o-tools`, then `[DONE]`. With `include_usage` every chunk
/// carries `"usage": null` and a usage chunk (50 in, 25 out) comes last.
pub fn parallel_tool_calls_stream_steps(include_usage: bool) -> Vec<SseStep> {
    const MODEL: &str = "gpt-4o-tools";
    let with_id = |mut chunk: Value| {
        chunk["id"] = json!("chatcmpl-tools");
        SseStep::json(&chunk)
    };
    let chunk = |delta: Value, finish_reason: Value| {
        let choices = json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]);
        with_id(chat_chunk(MODEL, choices, include_usage))
    };
    let start = |index: u32, id: &str, name: &str| {
        json!({"tool_calls": [{"index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""}}]})
    };
    let arguments =
        |index: u32, piece: &str| json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]});
    // The first delta carries the role, null content and the first call's id and name.
    let mut first = start(0, "call_weather_1", "get_weather");
    first["role"] = json!("assistant");
    first["content"] = Value::Null;
    first["refusal"] = Value::Null;
    let mut steps = vec![chunk(first, Value::Null)];
    for piece in ["{\"city\"", ": \"Par", "is\", \"unit\": ", "\"celsius\"}"] {
        steps.push(chunk(arguments(0, piece), Value::Null));
    }
    steps.push(chunk(start(1, "call_time_2", "get_time"), Value::Null));
    for piece in ["{\"timezone\": ", "\"Europe/", "Paris\"}"] {
        steps.push(chunk(arguments(1, piece), Value::Null));
    }
    steps.push(chunk(json!({}), json!("tool_calls")));
    if include_usage {
        let mut usage = chat_chunk(MODEL, json!([]), false);
        usage["usage"] = json!({"prompt_tokens": 50, "completion_tokens": 25, "total_tokens": 75});
        steps.push(with_id(usage));
    }
    steps.push(SseStep::done());
    steps
}

/// The default vector for the embedding at `index`: small values exact in `f32`.
pub fn embedding_vector(index: usize) -> [f32; EMBEDDING_DIMENSIONS] {
    // Exact in f32 for any index below 2^24, so float and base64 forms agree.
    let i = (index % (1 << 20)) as f32;
    [i + 0.5, -(i + 0.25), 0.125, 1.0]
}

/// An embeddings `list` with one `embedding` object per input, as floats.
pub fn embeddings(model: &str, n_inputs: usize) -> Value {
    embeddings_with(model, n_inputs, false)
}

/// Like [`embeddings`], but with `base64` vectors (little-endian `f32`) when
/// `base64` is set, as OpenAI answers `encoding_format: "base64"`.
pub fn embeddings_with(model: &str, n_inputs: usize, base64: bool) -> Value {
    let data: Vec<Value> = (0..n_inputs)
        .map(|index| {
            let vector = embedding_vector(index);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                Value::String(base64_encode(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens = EMBEDDING_TOKENS_PER_INPUT * n_inputs as u64;
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    })
}

/// One `model` object, as `GET /v1/models/{id}` returns it.
pub fn model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "system"})
}

/// The `list` of [`MODELS`], as `GET /v1/models` returns it.
pub fn models() -> Value {
    models_list(&MODELS)
}

/// The `list` of `ids`, as `GET /v1/models` returns it.
pub fn models_list<S: AsRef<str>>(ids: &[S]) -> Value {
    json!({"object": "list", "data": ids.iter().map(|id| model(id.as_ref())).collect::<Vec<_>>()})
}

/// An OpenAI error object: `{"error": {"message", "type", "param": null, "code"}}`.
pub fn error(error_type: &str, code: Option<&str>, message: &str) -> Value {
    json!({
        "error": {
            "message": message,
            "type": error_type,
            "param": null,
            "code": code
        }
    })
}

/// The error OpenAI answers for an unknown route: 404 `Invalid URL (METHOD /path)`.
pub fn invalid_url(method: &str, path: &str) -> Value {
    error("invalid_request_error", None, &format!("Invalid URL ({method} {path})"))
}

/// The error OpenAI answers for a body that is not JSON (status 400).
pub fn invalid_json() -> Value {
    error(
        "invalid_request_error",
        None,
        "We could not parse the JSON body of your request. (HINT: This likely means you \
         aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
         but what was sent was not valid JSON. If you have trouble figuring out how to fix \
         this, please contact us through our help center at help.openai.com.)",
    )
}

/// The error OpenAI answers when a required parameter is missing (status 400).
pub fn missing_parameter(param: &str) -> Value {
    error("invalid_request_error", None, &format!("you must provide a {param} parameter"))
}

/// The error OpenAI answers for an unknown model id (status 404).
pub fn model_not_found(model: &str) -> Value {
    error(
        "invalid_request_error",
        Some("model_not_found"),
        &format!("The model `{model}` does not exist or you do not have access to it."),
    )
}

/// The error OpenAI answers with a 429 when a rate limit is hit.
pub fn rate_limited(message: &str) -> Value {
    error("requests", Some("rate_limit_exceeded"), message)
}

/// Standard base64 (RFC 4648, padded), as OpenAI encodes embedding vectors.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn stream_pieces_concatenate_to_content() {
        assert_eq!(STREAM_PIECES.concat(), CONTENT);
    }

    #[test]
    fn tool_call_fragments_concatenate_to_the_arguments() {
        assert_eq!(TOOL_CALL_ARGUMENT_PIECES.concat(), TOOL_CALL_ARGUMENTS);
        let chunks = chat_tool_call_stream_chunks("m", false);
        let streamed: String = chunks
            .iter()
            .filter_map(|chunk| {
                chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(streamed, TOOL_CALL_ARGUMENTS);
        assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chat_tool_call_stream_steps("m").len(), TOOL_CALL_ARGUMENT_PIECES.len() + 4);
    }

    #[test]
    fn usage_chunk_is_last_and_only_with_include_usage() {
        let plain = chat_stream_chunks("m", false);
        assert_eq!(plain.len(), STREAM_PIECES.len() + 2);
        assert!(plain.iter().all(|c| c.get("usage").is_none()));
        let with_usage = chat_stream_chunks("m", true);
        assert_eq!(with_usage.len(), STREAM_PIECES.len() + 3);
        let (last, rest) = with_usage.split_last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"], chat_usage());
        assert!(rest.iter().all(|c| c["usage"].is_null()));
    }
}
