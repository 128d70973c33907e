//! Canonical chunks -> Anthropic stream events, as they arrive.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use loom_core::{ChatChunk, ChunkStream, FinishReason, LoomError, StreamChunk, Usage};
use loom_providers::anthropic::wire::{
    AnthropicRole, BlockDelta, ContentBlock, MessageDeltaBody, MessagesResponse, StreamEvent,
};
use serde_json::{Map, Value};

use crate::anthropic_format::{anthropic_error_json, anthropic_usage, stop_reason, stop_sequence_of};
use crate::sse::{EventStream, SseEvent};

/// The kind of the content block currently open.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool(u32),
}

/// Rebuilds Anthropic's block structure from canonical deltas.
struct EventWriter {
    started: bool,
    next_index: u32,
    open: Option<Open>,
    finish: Option<FinishReason>,
    stop_sequence: Option<String>,
    usage: Option<Usage>,
}

impl EventWriter {
    fn new() -> Self {
        EventWriter {
            started: false,
            next_index: 0,
            open: None,
            finish: None,
            stop_sequence: None,
            usage: None,
        }
    }

    fn start_block(&mut self, out: &mut Vec<StreamEvent>, kind: Open, block: ContentBlock) {
        self.close_block(out);
        out.push(StreamEvent::ContentBlockStart { index: self.next_index, content_block: block });
        self.open = Some(kind);
    }

    fn close_block(&mut self, out: &mut Vec<StreamEvent>) {
        if self.open.take().is_some() {
            out.push(StreamEvent::ContentBlockStop { index: self.next_index });
            self.next_index += 1;
        }
    }

    fn delta(&self, delta: BlockDelta) -> StreamEvent {
        StreamEvent::ContentBlockDelta { index: self.next_index, delta }
    }

    /// The events one chunk becomes.
    fn on_chunk(&mut self, chunk: ChatChunk) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::MessageStart {
                message: MessagesResponse {
                    id: chunk.id.clone(),
                    kind: "message".to_owned(),
                    role: AnthropicRole::Assistant,
                    model: chunk.model.clone(),
                    content: Vec::new(),
                    stop_reason: None,
                    stop_sequence: None,
                    // What an Anthropic upstream said at its start; else unknown until the end.
                    usage: anthropic_usage(chunk.start_usage.as_ref()),
                    extra: Map::new(),
                },
            });
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        // Anthropic messages have one choice; others are ignored.
        let Some(choice) = chunk.choices.into_iter().find(|choice| choice.index == 0) else { return out };
        if let Some(sequence) = stop_sequence_of(&choice.extra) {
            self.stop_sequence = Some(sequence);
        }
        let delta = choice.delta;
        if let Some(thinking) = delta.reasoning_content.filter(|text| !text.is_empty()) {
            if self.open != Some(Open::Thinking) {
                let block = ContentBlock::Thinking { thinking: String::new(), signature: String::new() };
                self.start_block(&mut out, Open::Thinking, block);
            }
            out.push(self.delta(BlockDelta::ThinkingDelta { thinking }));
        }
        if let Some(signature) = delta.reasoning_signature {
            if self.open != Some(Open::Thinking) {
                let block = ContentBlock::Thinking { thinking: String::new(), signature: String::new() };
                self.start_block(&mut out, Open::Thinking, block);
            }
            out.push(self.delta(BlockDelta::SignatureDelta { signature }));
        }
        if let Some(data) = delta.redacted_reasoning {
            self.close_block(&mut out);
            out.push(StreamEvent::ContentBlockStart {
                index: self.next_index,
                content_block: ContentBlock::RedactedThinking { data },
            });
            out.push(StreamEvent::ContentBlockStop { index: self.next_index });
            self.next_index += 1;
        }
        if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
            if self.open != Some(Open::Text) {
                self.start_block(&mut out, Open::Text, ContentBlock::text(""));
            }
            out.push(self.delta(BlockDelta::TextDelta { text }));
        }
        for call in delta.tool_calls.into_iter().flatten() {
            let function =
                call.function.unwrap_or(loom_core::tool::FunctionCallDelta { name: None, arguments: None });
            if self.open != Some(Open::Tool(call.index)) {
                let block = ContentBlock::ToolUse {
                    id: call.id.unwrap_or_default(),
                    name: function.name.clone().unwrap_or_default(),
                    input: Value::Object(Map::new()),
                    cache_control: None,
                };
                self.start_block(&mut out, Open::Tool(call.index), block);
            }
            if let Some(arguments) = function.arguments.filter(|arguments| !arguments.is_empty()) {
                out.push(self.delta(BlockDelta::InputJsonDelta { partial_json: arguments }));
            }
        }
        if let Some(finish) = choice.finish_reason {
            self.close_block(&mut out);
            self.finish = Some(finish);
        }
        out
    }

    /// The closing events once the chunks end.
    fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        self.close_block(&mut out);
        let usage = anthropic_usage(self.usage.as_ref());
        out.push(StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(match &self.stop_sequence {
                    Some(_) => "stop_sequence".to_owned(),
                    None => self.finish.as_ref().map_or_else(|| "end_turn".to_owned(), stop_reason),
                }),
                stop_sequence: self.stop_sequence.take(),
            },
            usage: Some(usage),
        });
        out.push(StreamEvent::MessageStop);
        out
    }
}

fn encode(events: Vec<StreamEvent>) -> Bytes {
    let mut buffer = BytesMut::with_capacity(256 * events.len().max(1));
    for event in events {
        buffer.put_slice(b"event: ");
        buffer.put_slice(event.name().as_bytes());
        buffer.put_slice(b"\ndata: ");
        let mut writer = buffer.writer();
        if serde_json::to_writer(&mut writer, &event).is_err() {
            return error_event(&LoomError::internal("a stream event could not be encoded"));
        }
        buffer = writer.into_inner();
        buffer.put_slice(b"\n\n");
    }
    buffer.freeze()
}

/// The `error` event that ends a stream.
pub fn error_event(error: &LoomError) -> Bytes {
    let mut buffer = BytesMut::with_capacity(256);
    buffer.put_slice(b"event: error\ndata: ");
    buffer.put_slice(&anthropic_error_json(error));
    buffer.put_slice(b"\n\n");
    buffer.freeze()
}

/// Anthropic SSE events for a canonical chunk stream.
pub fn anthropic_events(chunks: ChunkStream) -> EventStream {
    let state = (chunks, EventWriter::new());
    Box::pin(futures_util::stream::unfold(Some(state), |state| async move {
        let (mut chunks, mut writer) = state?;
        loop {
            let next = chunks.next().await.map(|item| item.and_then(StreamChunk::into_typed));
            return match next {
                Some(Ok(chunk)) => {
                    let events = writer.on_chunk(chunk);
                    if events.is_empty() {
                        continue;
                    }
                    Some((SseEvent::Encoded(encode(events)), Some((chunks, writer))))
                }
                Some(Err(error)) => Some((SseEvent::Encoded(error_event(&error)), None)),
                None => Some((SseEvent::Encoded(encode(writer.finish())), None)),
            };
        }
    }))
}
