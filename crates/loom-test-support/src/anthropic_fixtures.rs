//! Anthropic Messages API fixtures, written from Anthropic's public API reference.

use serde_json::{Value, json};

use crate::SseStep;

/// The `id` of every Anthropic fixture message.
pub const MESSAGE_ID: &str = "msg_01XFDUDYJgAACzvnptvVoYEL";

/// The `created_at` of every listed fixture model.
pub const MODEL_CREATED_AT: &str = "2025-02-19T00:00:00Z";

/// The `display_name` the fixture model list gives `id`.
pub fn model_display_name(id: &str) -> String {
    format!("Mock {id}")
}

/// One page of `GET /v1/models`: `{"data": [...], "has_more", "first_id", "last_id"}`.
pub fn models_page<S: AsRef<str>>(ids: &[S], has_more: bool) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| {
            let id = id.as_ref();
            json!({"type": "model", "id": id, "display_name": model_display_name(id), "created_at": MODEL_CREATED_AT})
        })
        .collect();
    json!({
        "data": data,
        "has_more": has_more,
        "first_id": ids.first().map(AsRef::as_ref),
        "last_id": ids.last().map(AsRef::as_ref),
    })
}

/// A whole `message` answering with `text`.
pub fn message(model: &str, text: &str) -> Value {
    json!({
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4}
    })
}

/// A whole `message` with a thinking block and a tool call.
pub fn tool_use_message(model: &str) -> Value {
    json!({
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "thinking", "thinking": "The user wants the weather in Paris.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"city": "Paris"}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": 40, "output_tokens": 30}
    })
}

/// The SSE steps of a streamed text answer: `pieces` as text deltas. Usage is
/// cumulative, as Anthropic sends it: `message_start` carries input tokens, the
/// `message_delta` the final output count.
pub fn text_stream(model: &str, pieces: &[&str]) -> Vec<SseStep> {
    let mut steps = vec![
        SseStep::event(
            "message_start",
            &json!({"type": "message_start", "message": {
            "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 4}}}),
        ),
        SseStep::event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        SseStep::event("ping", &json!({"type": "ping"})),
    ];
    for piece in pieces {
        steps.push(SseStep::event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    steps.push(SseStep::event("content_block_stop", &json!({"type": "content_block_stop", "index": 0})));
    steps.push(SseStep::event(
        "message_delta",
        &json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 6}}),
    ));
    steps.push(SseStep::event("message_stop", &json!({"type": "message_stop"})));
    steps
}

/// The SSE steps of a streamed thinking + tool call answer.
pub fn tool_use_stream(model: &str) -> Vec<SseStep> {
    let event = |name: &str, data: Value| SseStep::event(name, &data);
    vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": MESSAGE_ID, "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 40, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "The user wants the weather in Paris."}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="}}),
        ),
        event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {}}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Par"}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "is\"}"}}),
        ),
        event("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
        ),
        event("message_stop", json!({"type": "message_stop"})),
    ]
}

/// An Anthropic error body.
pub fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}
