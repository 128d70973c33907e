//! A streamed answer put back together, chunk by chunk as the client receives them, so
//! that a complete one can be stored without holding the client's stream back.

use loom_core::{
    ChatChunk, ChatResponse, Choice, Content, FinishReason, FunctionCall, Message, Role, StreamChunk,
    ToolCall, Usage,
};
use serde_json::Map;

/// What is gathered of one streamed answer; gives up (for good) at anything a stored
/// answer could not replay faithfully, or past its size bound.
pub struct Assembler {
    max_bytes: usize,
    bytes: usize,
    /// `None` once given up.
    answer: Option<Partial>,
}

struct Partial {
    id: String,
    model: String,
    created: u64,
    choices: Vec<PartialChoice>,
    usage: Option<Usage>,
    system_fingerprint: Option<String>,
}

#[derive(Default)]
struct PartialChoice {
    index: u32,
    text: String,
    reasoning: String,
    tool_calls: Vec<ToolCall>,
    finish_reason: Option<FinishReason>,
}

impl Assembler {
    /// An assembler that gives up past `max_bytes` of text.
    pub fn new(max_bytes: usize) -> Assembler {
        Assembler {
            max_bytes,
            bytes: 0,
            answer: Some(Partial {
                id: String::new(),
                model: String::new(),
                created: 0,
                choices: Vec::new(),
                usage: None,
                system_fingerprint: None,
            }),
        }
    }

    /// Adds the next chunk of the stream.
    pub fn add(&mut self, chunk: &StreamChunk) {
        let Some(partial) = self.answer.as_mut() else { return };
        let typed;
        let chunk = match chunk {
            StreamChunk::Typed(chunk) => chunk.as_ref(),
            StreamChunk::Wire(wire) => {
                if wire.is_error() {
                    self.answer = None;
                    return;
                }
                match wire.decode() {
                    Ok(chunk) => {
                        typed = chunk;
                        &typed
                    }
                    Err(_) => {
                        self.answer = None;
                        return;
                    }
                }
            }
        };
        match partial.add(chunk, &mut self.bytes) {
            Some(()) if self.bytes <= self.max_bytes => {}
            _ => self.answer = None,
        }
    }

    /// The whole answer, if every chunk could be kept and every choice finished.
    pub fn finish(self) -> Option<ChatResponse> {
        let partial = self.answer?;
        if partial.choices.is_empty() || partial.choices.iter().any(|choice| choice.finish_reason.is_none()) {
            return None;
        }
        let choices = partial
            .choices
            .into_iter()
            .map(|choice| Choice {
                index: choice.index,
                message: Message {
                    role: Role::Assistant,
                    content: (!choice.text.is_empty() || choice.tool_calls.is_empty())
                        .then_some(Content::Text(choice.text)),
                    name: None,
                    tool_calls: (!choice.tool_calls.is_empty()).then_some(choice.tool_calls),
                    tool_call_id: None,
                    refusal: None,
                    reasoning_content: (!choice.reasoning.is_empty()).then_some(choice.reasoning),
                    extra: Map::new(),
                },
                finish_reason: choice.finish_reason,
                logprobs: None,
                extra: Map::new(),
            })
            .collect();
        Some(ChatResponse {
            id: partial.id,
            object: "chat.completion".into(),
            created: partial.created,
            model: partial.model,
            choices,
            usage: partial.usage,
            system_fingerprint: partial.system_fingerprint,
            extra: Map::new(),
        })
    }
}

impl Partial {
    /// `None` when the chunk carries something a replay would lose.
    fn add(&mut self, chunk: &ChatChunk, bytes: &mut usize) -> Option<()> {
        if self.id.is_empty() {
            self.id.clone_from(&chunk.id);
            self.model.clone_from(&chunk.model);
            self.created = chunk.created;
        }
        if chunk.system_fingerprint.is_some() {
            self.system_fingerprint.clone_from(&chunk.system_fingerprint);
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        for part in &chunk.choices {
            let delta = &part.delta;
            if part.logprobs.is_some()
                || delta.refusal.is_some()
                || delta.reasoning_signature.is_some()
                || delta.redacted_reasoning.is_some()
            {
                return None;
            }
            // Choices come in index order; at most 128 (`n` is bounded by providers).
            let position = match self.choices.iter().position(|choice| choice.index == part.index) {
                Some(position) => position,
                None if self.choices.len() < 128 => {
                    self.choices.push(PartialChoice { index: part.index, ..PartialChoice::default() });
                    self.choices.len() - 1
                }
                None => return None,
            };
            let choice = &mut self.choices[position];
            if let Some(text) = &delta.content {
                *bytes += text.len();
                choice.text.push_str(text);
            }
            if let Some(reasoning) = &delta.reasoning_content {
                *bytes += reasoning.len();
                choice.reasoning.push_str(reasoning);
            }
            for call in delta.tool_calls.iter().flatten() {
                let slot = call.index as usize;
                if slot > choice.tool_calls.len() || slot >= 128 {
                    return None;
                }
                if slot == choice.tool_calls.len() {
                    choice.tool_calls.push(ToolCall {
                        id: String::new(),
                        kind: "function".into(),
                        function: FunctionCall { name: String::new(), arguments: String::new() },
                    });
                }
                let tool_call = &mut choice.tool_calls[slot];
                if let Some(id) = &call.id {
                    tool_call.id.clone_from(id);
                }
                if let Some(function) = &call.function {
                    if let Some(name) = &function.name {
                        *bytes += name.len();
                        tool_call.function.name.push_str(name);
                    }
                    if let Some(arguments) = &function.arguments {
                        *bytes += arguments.len();
                        tool_call.function.arguments.push_str(arguments);
                    }
                }
            }
            if part.finish_reason.is_some() {
                choice.finish_reason.clone_from(&part.finish_reason);
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loom_core::WireChunk;

    fn wire(json: serde_json::Value) -> StreamChunk {
        StreamChunk::Wire(WireChunk::parse(serde_json::to_vec(&json).unwrap().into()).unwrap())
    }

    fn chunk(choices: serde_json::Value) -> StreamChunk {
        wire(
            serde_json::json!({"id": "c-1", "object": "chat.completion.chunk", "created": 7, "model": "gpt-4o", "choices": choices}),
        )
    }

    #[test]
    fn text_tool_calls_and_usage_come_back_whole() {
        let mut assembler = Assembler::new(10_000);
        assembler
            .add(&chunk(serde_json::json!([{"index": 0, "delta": {"role": "assistant", "content": ""}}])));
        assembler.add(&chunk(serde_json::json!([{"index": 0, "delta": {"content": "Hel"}}])));
        assembler.add(&chunk(serde_json::json!([{"index": 0, "delta": {"content": "lo", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\""}}]}}])));
        assembler.add(&chunk(serde_json::json!([{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": ":1}"}}]}, "finish_reason": "tool_calls"}])));
        assembler.add(&wire(serde_json::json!({"id": "c-1", "object": "chat.completion.chunk", "created": 7,
            "model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})));
        let response = serde_json::to_value(assembler.finish().unwrap()).unwrap();
        assert_eq!(
            response,
            serde_json::json!({"id": "c-1", "object": "chat.completion", "created": 7, "model": "gpt-4o",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\":1}"}}]},
                    "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
        );
    }

    #[test]
    fn unfinished_oversized_or_unfaithful_streams_are_not_kept() {
        let mut unfinished = Assembler::new(10_000);
        unfinished.add(&chunk(serde_json::json!([{"index": 0, "delta": {"content": "Hel"}}])));
        assert!(unfinished.finish().is_none());

        let mut oversized = Assembler::new(4);
        oversized.add(&chunk(
            serde_json::json!([{"index": 0, "delta": {"content": "Hello"}, "finish_reason": "stop"}]),
        ));
        assert!(oversized.finish().is_none());

        let mut refusal = Assembler::new(10_000);
        refusal.add(&chunk(
            serde_json::json!([{"index": 0, "delta": {"refusal": "no"}, "finish_reason": "stop"}]),
        ));
        assert!(refusal.finish().is_none());

        let mut skipped_tool_index = Assembler::new(10_000);
        skipped_tool_index.add(&chunk(serde_json::json!([{"index": 0, "delta": {"tool_calls": [
            {"index": 3, "function": {"arguments": "{}"}}]}, "finish_reason": "tool_calls"}])));
        assert!(skipped_tool_index.finish().is_none());
    }
}
