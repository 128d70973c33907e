//! Anthropic response -> canonical response.

use serde_json::Map;

use loom_core::message::{RedactedThinkingPart, TextPart, ThinkingPart};
use loom_core::usage::PromptTokensDetails;
use loom_core::{
    ChatResponse, Choice, Content, ContentPart, FinishReason, FunctionCall, Message, Role, ToolCall, Usage,
};

use super::wire::{AnthropicUsage, ContentBlock, MessagesResponse};

/// The choice (or chunk choice) `extra` key that carries the stop sequence that ended
/// generation, so Anthropic clients get `stop_reason: stop_sequence` back.
pub const STOP_SEQUENCE: &str = "stop_sequence";

/// Maps Anthropic's `stop_reason` to OpenAI's `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Canonical usage from Anthropic's (input counts exclude cache reads and writes).
pub fn usage(usage: &AnthropicUsage) -> Usage {
    let cached = usage.cache_read_input_tokens.unwrap_or(0);
    let written = usage.cache_creation_input_tokens.unwrap_or(0);
    let prompt = usage.input_tokens.saturating_add(cached).saturating_add(written);
    let mut canonical = Usage::new(prompt, usage.output_tokens);
    if usage.cache_read_input_tokens.is_some() || usage.cache_creation_input_tokens.is_some() {
        canonical.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: Some(cached),
            cache_creation_tokens: Some(written),
            ..PromptTokensDetails::default()
        });
    }
    canonical
}

/// The canonical answer: text (or parts when reasoning blocks came too) and tool calls.
pub fn from_anthropic(response: MessagesResponse) -> ChatResponse {
    let mut parts: Vec<ContentPart> = Vec::new();
    let mut tool_calls = Vec::new();
    let mut has_reasoning = false;
    for block in response.content {
        match block {
            ContentBlock::Text { text, .. } => match parts.last_mut() {
                Some(ContentPart::Text(last)) => last.text.push_str(&text),
                _ => parts.push(ContentPart::Text(TextPart { text, cache_control: None, extra: Map::new() })),
            },
            ContentBlock::Thinking { thinking, signature } => {
                has_reasoning = true;
                parts.push(ContentPart::Thinking(ThinkingPart { thinking, signature: Some(signature) }));
            }
            ContentBlock::RedactedThinking { data } => {
                has_reasoning = true;
                parts.push(ContentPart::RedactedThinking(RedactedThinkingPart { data }));
            }
            ContentBlock::ToolUse { id, name, input, .. } => tool_calls.push(ToolCall {
                id,
                kind: "function".to_owned(),
                function: FunctionCall { name, arguments: input.to_string() },
            }),
            other => {
                if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&other) {
                    parts.push(ContentPart::Other(map));
                }
            }
        }
    }
    let content = match parts.as_slice() {
        [] => None,
        [ContentPart::Text(text)] if !has_reasoning => Some(Content::Text(text.text.clone())),
        _ => Some(Content::Parts(parts)),
    };
    let mut message = Message::text(Role::Assistant, "");
    message.content = content;
    message.tool_calls = (!tool_calls.is_empty()).then_some(tool_calls);
    let mut extra = Map::new();
    if let Some(sequence) = response.stop_sequence {
        extra.insert(STOP_SEQUENCE.to_owned(), serde_json::Value::String(sequence));
    }
    ChatResponse {
        id: response.id,
        object: "chat.completion".to_owned(),
        created: super::unix_now(),
        model: response.model,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: response.stop_reason.as_deref().map(finish_reason),
            logprobs: None,
            extra,
        }],
        usage: Some(usage(&response.usage)),
        system_fingerprint: None,
        extra: Map::new(),
    }
}
