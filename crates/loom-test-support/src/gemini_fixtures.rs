//! Gemini `generateContent` fixtures, written from Google's public API reference.

use serde_json::{Value, json};

use crate::SseStep;

/// The `displayName` the fixture model list gives `id`.
pub fn model_display_name(id: &str) -> String {
    format!("Mock {id}")
}

/// One page of `GET /v1beta/models`: `{"models": [{"name": "models/ID", ...}], "nextPageToken"}`.
pub fn models_page<S: AsRef<str>>(ids: &[S], next_page_token: Option<&str>) -> Value {
    let models: Vec<Value> = ids
        .iter()
        .map(|id| {
            let id = id.as_ref();
            json!({
                "name": format!("models/{id}"),
                "version": "001",
                "displayName": model_display_name(id),
                "inputTokenLimit": 1_048_576,
                "outputTokenLimit": 65_536,
                "supportedGenerationMethods": ["generateContent", "countTokens"]
            })
        })
        .collect();
    let mut page = json!({"models": models});
    if let Some(token) = next_page_token {
        page["nextPageToken"] = json!(token);
    }
    page
}

/// A whole answer with `text`.
pub fn text_response(model_version: &str, text: &str) -> Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [{"text": text}]},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 5, "totalTokenCount": 16},
        "modelVersion": model_version,
        "responseId": "resp-gemini-1"
    })
}

/// A whole answer calling `get_weather` (with a thought signature, as thinking models send).
pub fn function_call_response(model_version: &str) -> Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "Cs4BAdHtim9sig"}
            ]},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 8, "thoughtsTokenCount": 20,
            "cachedContentTokenCount": 10, "totalTokenCount": 58},
        "modelVersion": model_version,
        "responseId": "resp-gemini-2"
    })
}

/// A streamed text answer: one SSE event per piece; usage is cumulative and the
/// last event carries the finish reason.
pub fn text_stream(model_version: &str, pieces: &[&str]) -> Vec<SseStep> {
    let count = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(position, piece)| {
            let last = position + 1 == count;
            let mut candidate = json!({"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0});
            if last {
                candidate["finishReason"] = json!("STOP");
            }
            let output = (position + 1) as u64 * 2;
            SseStep::json(&json!({
                "candidates": [candidate],
                "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": output, "totalTokenCount": 11 + output},
                "modelVersion": model_version,
                "responseId": "resp-gemini-3"
            }))
        })
        .collect()
}

/// A streamed answer calling `get_weather`: Gemini sends a function call whole, in
/// one SSE event that also carries the finish reason, the usage and (thinking
/// models) the call's thought signature; the call has no `id`.
pub fn function_call_stream(model_version: &str) -> Vec<SseStep> {
    vec![SseStep::json(&json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "Cs4BAdHtim9sig"}
            ]},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 8, "thoughtsTokenCount": 20,
            "cachedContentTokenCount": 10, "totalTokenCount": 58},
        "modelVersion": model_version,
        "responseId": "resp-gemini-4"
    }))]
}

/// A `batchEmbedContents` answer with `n` small vectors.
pub fn batch_embeddings(n: usize) -> Value {
    let embeddings: Vec<Value> =
        (0..n).map(|index| json!({"values": [0.25 * index as f64, -0.5, 0.125]})).collect();
    json!({"embeddings": embeddings})
}

/// A Google API error body.
pub fn error(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}
