//! A stored answer served again: whole, or as the stream a streaming client expects, with
//! a fresh id and creation time.

use loom_core::tool::FunctionCallDelta;
use loom_core::{
    ChatAnswer, ChatChunk, ChatResponse, ChunkChoice, ChunkStream, Content, Delta, StreamChunk,
    ToolCallDelta, WireResponse,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The stored `json` as a new answer: id `chatcmpl-<request id>`, created now, every other
/// field as stored; `None` if what is stored is no chat completion.
pub fn whole(json: &RawValue, request_id: &str) -> Option<ChatAnswer> {
    let mut object: Map<String, Value> = serde_json::from_str(json.get()).ok()?;
    object.insert("id".into(), Value::String(format!("chatcmpl-{request_id}")));
    object.insert("created".into(), Value::from(crate::cache::since_epoch().as_secs()));
    let bytes = serde_json::to_vec(&object).ok()?;
    WireResponse::parse(bytes.into()).ok().map(ChatAnswer::Wire)
}

/// The stored `json` as a stream: per choice, the role with the whole text, the tool
/// calls, then the finish reason; last, the usage (the edge shows it only to clients that
/// asked). `None` if what is stored is no chat completion.
pub fn stream(json: &RawValue, request_id: &str) -> Option<ChunkStream> {
    let response: ChatResponse = serde_json::from_str(json.get()).ok()?;
    Some(stream_of(response, request_id))
}

fn stream_of(response: ChatResponse, request_id: &str) -> ChunkStream {
    let id = format!("chatcmpl-{request_id}");
    let created = crate::cache::since_epoch().as_secs();
    let chunk = |choices: Vec<ChunkChoice>, usage, start_usage| {
        Ok(StreamChunk::from(ChatChunk {
            id: id.clone(),
            object: "chat.completion.chunk".into(),
            created,
            model: response.model.clone(),
            choices,
            usage,
            // Known from the start: Anthropic clients get the input tokens in `message_start`.
            start_usage,
            system_fingerprint: response.system_fingerprint.clone(),
            extra: Map::new(),
        }))
    };
    let mut chunks = Vec::new();
    for choice in &response.choices {
        let message = &choice.message;
        let text = match &message.content {
            Some(Content::Text(text)) => Some(text.clone()),
            Some(content @ Content::Parts(_)) => Some(content.joined_text()),
            None => None,
        };
        let first = Delta {
            role: Some(message.role),
            content: text.or_else(|| Some(String::new())),
            reasoning_content: message.reasoning_content.clone(),
            ..Delta::default()
        };
        let start_usage = chunks.is_empty().then(|| response.usage.clone()).flatten();
        chunks.push(chunk(vec![choice_delta(choice.index, first, None)], None, start_usage));
        if let Some(calls) = &message.tool_calls {
            let calls = calls
                .iter()
                .enumerate()
                .map(|(index, call)| ToolCallDelta {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    id: Some(call.id.clone()),
                    kind: Some(call.kind.clone()),
                    function: Some(FunctionCallDelta {
                        name: Some(call.function.name.clone()),
                        arguments: Some(call.function.arguments.clone()),
                    }),
                })
                .collect();
            let delta = Delta { tool_calls: Some(calls), ..Delta::default() };
            chunks.push(chunk(vec![choice_delta(choice.index, delta, None)], None, None));
        }
        let last = choice_delta(choice.index, Delta::default(), choice.finish_reason.clone());
        chunks.push(chunk(vec![last], None, None));
    }
    if let Some(usage) = &response.usage {
        chunks.push(chunk(Vec::new(), Some(usage.clone()), None));
    }
    Box::pin(futures_util::stream::iter(chunks))
}

fn choice_delta(index: u32, delta: Delta, finish_reason: Option<loom_core::FinishReason>) -> ChunkChoice {
    ChunkChoice { index, delta, finish_reason, logprobs: None, extra: Map::new() }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::assemble::Assembler;

    fn stored_value() -> Value {
        serde_json::json!({"id": "chatcmpl-old", "object": "chat.completion", "created": 1,
            "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi",
                "refusal": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}, "service_tier": "default"})
    }

    fn stored() -> Box<RawValue> {
        serde_json::value::to_raw_value(&stored_value()).unwrap()
    }

    #[test]
    fn a_whole_replay_is_the_stored_json_with_a_fresh_id_and_time() {
        let ChatAnswer::Wire(answer) = whole(&stored(), "req-9").unwrap() else { panic!("wire") };
        let mut replayed: Value = serde_json::from_slice(answer.json()).unwrap();
        assert_eq!(replayed["id"], "chatcmpl-req-9");
        assert!(replayed["created"].as_u64().unwrap() > 1);
        replayed["id"] = "chatcmpl-old".into();
        replayed["created"] = 1.into();
        assert_eq!(replayed, stored_value());
        let not_an_answer =
            serde_json::value::to_raw_value(&serde_json::json!(["not", "an", "answer"])).unwrap();
        assert!(whole(&not_an_answer, "r").is_none());
    }

    #[tokio::test]
    async fn a_streamed_replay_assembles_back_into_the_stored_answer() {
        let chunks: Vec<_> = stream(&stored(), "req-9").unwrap().collect().await;
        let mut assembler = Assembler::new(10_000);
        for chunk in &chunks {
            assembler.add(chunk.as_ref().unwrap());
        }
        let replayed = assembler.finish().unwrap();
        let stored: ChatResponse = serde_json::from_value(stored_value()).unwrap();
        assert_eq!(replayed.id, "chatcmpl-req-9");
        assert_eq!(replayed.choices, stored.choices);
        assert_eq!(replayed.usage, stored.usage);
    }
}
