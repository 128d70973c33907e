//! Anthropic stream events -> canonical chunks, one event at a time.

use std::collections::HashMap;

use serde_json::Map;

use loom_core::{
    ChatChunk, ChunkChoice, Delta, ErrorKind, FinishReason, LoomError, Role, ToolCallDelta,
    tool::FunctionCallDelta,
};

use super::response::{STOP_SEQUENCE, finish_reason, usage};
use super::wire::{AnthropicUsage, BlockDelta, ContentBlock, StreamEvent};

/// What a content block index holds.
enum Block {
    Text,
    Thinking,
    Tool { tool_index: u32 },
    Other,
}

/// Converts one stream's events; keeps the state Anthropic spreads across events.
pub struct StreamTranslator {
    provider: String,
    id: String,
    model: String,
    created: u64,
    blocks: HashMap<u32, Block>,
    next_tool_index: u32,
    /// Usage so far. Anthropic's counts are cumulative: later values replace earlier ones.
    usage: AnthropicUsage,
    finish: Option<FinishReason>,
    stopped: bool,
}

impl StreamTranslator {
    /// A translator for a new stream from `provider`.
    pub fn new(provider: &str) -> Self {
        StreamTranslator {
            provider: provider.to_owned(),
            id: String::new(),
            model: String::new(),
            created: super::unix_now(),
            blocks: HashMap::new(),
            next_tool_index: 0,
            usage: AnthropicUsage::default(),
            finish: None,
            stopped: false,
        }
    }

    /// Whether `message_stop` arrived.
    pub fn is_complete(&self) -> bool {
        self.stopped
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice { index: 0, delta, finish_reason, logprobs: None, extra: Map::new() }],
            usage: None,
            start_usage: None,
            system_fingerprint: None,
            extra: Map::new(),
        }
    }

    fn merge_usage(&mut self, update: &AnthropicUsage) {
        // Cumulative counts: take the latest non-zero value, never add.
        if update.input_tokens > 0 {
            self.usage.input_tokens = update.input_tokens;
        }
        if update.output_tokens > 0 {
            self.usage.output_tokens = update.output_tokens;
        }
        if update.cache_read_input_tokens.is_some() {
            self.usage.cache_read_input_tokens = update.cache_read_input_tokens;
        }
        if update.cache_creation_input_tokens.is_some() {
            self.usage.cache_creation_input_tokens = update.cache_creation_input_tokens;
        }
    }

    /// The chunks one event becomes (often none).
    pub fn on_event(&mut self, event: StreamEvent) -> Result<Vec<ChatChunk>, LoomError> {
        let delta = match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.merge_usage(&message.usage);
                let delta =
                    Delta { role: Some(Role::Assistant), content: Some(String::new()), ..Delta::default() };
                let mut first = self.chunk(delta, None);
                first.start_usage = Some(usage(&self.usage));
                return Ok(vec![first]);
            }
            StreamEvent::ContentBlockStart { index, content_block } => match content_block {
                ContentBlock::Text { text, .. } => {
                    self.blocks.insert(index, Block::Text);
                    if text.is_empty() {
                        return Ok(Vec::new());
                    }
                    Delta { content: Some(text), ..Delta::default() }
                }
                ContentBlock::Thinking { thinking, .. } => {
                    self.blocks.insert(index, Block::Thinking);
                    if thinking.is_empty() {
                        return Ok(Vec::new());
                    }
                    Delta { reasoning_content: Some(thinking), ..Delta::default() }
                }
                ContentBlock::RedactedThinking { data } => {
                    self.blocks.insert(index, Block::Other);
                    Delta { redacted_reasoning: Some(data), ..Delta::default() }
                }
                ContentBlock::ToolUse { id, name, input, .. } => {
                    let tool_index = self.next_tool_index;
                    self.next_tool_index += 1;
                    self.blocks.insert(index, Block::Tool { tool_index });
                    let empty_input = input.as_object().is_some_and(Map::is_empty) || input.is_null();
                    let arguments = if empty_input { String::new() } else { input.to_string() };
                    Delta {
                        tool_calls: Some(vec![ToolCallDelta {
                            index: tool_index,
                            id: Some(id),
                            kind: Some("function".to_owned()),
                            function: Some(FunctionCallDelta {
                                name: Some(name),
                                arguments: Some(arguments),
                            }),
                        }]),
                        ..Delta::default()
                    }
                }
                _ => {
                    self.blocks.insert(index, Block::Other);
                    return Ok(Vec::new());
                }
            },
            StreamEvent::ContentBlockDelta { index, delta } => match (self.blocks.get(&index), delta) {
                (_, BlockDelta::TextDelta { text }) => Delta { content: Some(text), ..Delta::default() },
                (_, BlockDelta::ThinkingDelta { thinking }) => {
                    Delta { reasoning_content: Some(thinking), ..Delta::default() }
                }
                (_, BlockDelta::SignatureDelta { signature }) => {
                    Delta { reasoning_signature: Some(signature), ..Delta::default() }
                }
                (Some(Block::Tool { tool_index }), BlockDelta::InputJsonDelta { partial_json }) => Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index: *tool_index,
                        id: None,
                        kind: None,
                        function: Some(FunctionCallDelta { name: None, arguments: Some(partial_json) }),
                    }]),
                    ..Delta::default()
                },
                (_, BlockDelta::InputJsonDelta { .. }) => {
                    return Err(LoomError::new(
                        ErrorKind::UpstreamError,
                        format!(
                            "provider `{}` sent tool input for block {index}, which is not a tool call",
                            self.provider
                        ),
                    ));
                }
                (_, BlockDelta::CitationsDelta { .. }) => return Ok(Vec::new()),
            },
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping => return Ok(Vec::new()),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(update) = &usage {
                    self.merge_usage(update);
                }
                match delta.stop_reason {
                    Some(reason) => {
                        let reason = finish_reason(&reason);
                        self.finish = Some(reason.clone());
                        let mut chunk = self.chunk(Delta::default(), Some(reason));
                        if let (Some(sequence), Some(choice)) =
                            (delta.stop_sequence, chunk.choices.first_mut())
                        {
                            choice
                                .extra
                                .insert(STOP_SEQUENCE.to_owned(), serde_json::Value::String(sequence));
                        }
                        return Ok(vec![chunk]);
                    }
                    None => return Ok(Vec::new()),
                }
            }
            StreamEvent::MessageStop => {
                self.stopped = true;
                let mut last = self.chunk(Delta::default(), None);
                last.choices.clear();
                last.usage = Some(usage(&self.usage));
                return Ok(vec![last]);
            }
            StreamEvent::Error { error } => {
                return Err(super::parsed_stream_error(&self.provider, &error.kind, &error.message));
            }
        };
        Ok(vec![self.chunk(delta, None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(values: Vec<serde_json::Value>) -> Vec<StreamEvent> {
        values.into_iter().map(|value| serde_json::from_value(value).unwrap()).collect()
    }

    #[test]
    fn cumulative_usage_is_not_summed_twice() {
        let mut translator = StreamTranslator::new("anthropic");
        let mut chunks = Vec::new();
        for event in events(vec![
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":5}}}),
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}),
            json!({"type":"content_block_stop","index":0}),
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}),
            json!({"type":"message_delta","delta":{},"usage":{"output_tokens":15}}),
            json!({"type":"message_stop"}),
        ]) {
            chunks.extend(translator.on_event(event).unwrap());
        }
        let last = chunks.last().unwrap();
        let usage = last.usage.as_ref().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens), (30, 15, 45));
        assert_eq!(usage.cached_tokens(), 5);
        assert!(translator.is_complete());
        assert_eq!(chunks[1].choices[0].delta.content.as_deref(), Some("Hi"));
        assert_eq!(chunks[2].choices[0].finish_reason, Some(FinishReason::Stop));
    }

    #[test]
    fn tool_calls_stream_their_arguments() {
        let mut translator = StreamTranslator::new("anthropic");
        let mut chunks = Vec::new();
        for event in events(vec![
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":0}}}),
            json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig=="}}),
            json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}),
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}),
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}),
        ]) {
            chunks.extend(translator.on_event(event).unwrap());
        }
        let deltas: Vec<serde_json::Value> =
            chunks.iter().map(|chunk| serde_json::to_value(&chunk.choices[0].delta).unwrap()).collect();
        assert_eq!(
            deltas,
            vec![
                json!({"role":"assistant","content":""}),
                json!({"reasoning_content":"hmm"}),
                json!({"reasoning_signature":"sig=="}),
                json!({"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":""}}]}),
                json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}),
                json!({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}),
            ]
        );
    }
}
