//! Gemini answers (whole and streamed) -> canonical responses and chunks.

use serde_json::Map;

use loom_core::message::{TextPart, ThinkingPart};
use loom_core::tool::FunctionCallDelta;
use loom_core::usage::{CompletionTokensDetails, PromptTokensDetails};
use loom_core::{
    ChatChunk, ChatResponse, Choice, ChunkChoice, Content, ContentPart, Delta, FinishReason, FunctionCall,
    Message, Role, ToolCall, ToolCallDelta, Usage,
};

use super::SYNTHETIC_CALL_PREFIX;
use super::wire::{Candidate, GenerateContentResponse, Part, UsageMetadata};

/// Maps Gemini's `finishReason`; a stop with function calls is `tool_calls`.
pub fn finish_reason(reason: &str, called_tools: bool) -> FinishReason {
    match reason {
        "STOP" if called_tools => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        other => FinishReason::Other(other.to_ascii_lowercase()),
    }
}

/// Canonical usage (Gemini counts thinking apart from the answer; OpenAI includes it).
pub fn usage(metadata: &UsageMetadata) -> Usage {
    let thoughts = metadata.thoughts_token_count.unwrap_or(0);
    let mut usage =
        Usage::new(metadata.prompt_token_count, metadata.candidates_token_count.saturating_add(thoughts));
    if let Some(cached) = metadata.cached_content_token_count {
        usage.prompt_tokens_details =
            Some(PromptTokensDetails { cached_tokens: Some(cached), ..Default::default() });
    }
    if metadata.thoughts_token_count.is_some() {
        usage.completion_tokens_details =
            Some(CompletionTokensDetails { reasoning_tokens: Some(thoughts), ..Default::default() });
    }
    usage
}

fn call_id(part_id: Option<&String>, counter: &mut u32) -> String {
    let id = part_id.cloned().unwrap_or_else(|| format!("{SYNTHETIC_CALL_PREFIX}{counter}"));
    *counter += 1;
    id
}

fn choice(candidate: Candidate) -> Choice {
    let mut parts: Vec<ContentPart> = Vec::new();
    let mut tool_calls = Vec::new();
    let mut has_reasoning = false;
    let mut counter = 0;
    for part in candidate.content.map(|content| content.parts).unwrap_or_default() {
        if let Some(signature) = &part.thought_signature {
            has_reasoning = true;
            parts.push(ContentPart::Thinking(ThinkingPart {
                thinking: String::new(),
                signature: Some(signature.clone()),
            }));
        }
        match part {
            Part { text: Some(text), thought: Some(true), .. } => {
                has_reasoning = true;
                match parts.last_mut() {
                    Some(ContentPart::Thinking(last)) if last.thinking.is_empty() => last.thinking = text,
                    _ => parts.push(ContentPart::Thinking(ThinkingPart { thinking: text, signature: None })),
                }
            }
            Part { text: Some(text), .. } => match parts.last_mut() {
                Some(ContentPart::Text(last)) => last.text.push_str(&text),
                _ => parts.push(ContentPart::Text(TextPart { text, cache_control: None, extra: Map::new() })),
            },
            Part { function_call: Some(call), .. } => tool_calls.push(ToolCall {
                id: call_id(call.id.as_ref(), &mut counter),
                kind: "function".to_owned(),
                function: FunctionCall { name: call.name, arguments: call.args.to_string() },
            }),
            _ => {}
        }
    }
    let called_tools = !tool_calls.is_empty();
    let mut message = Message::text(Role::Assistant, "");
    message.content = match parts.as_slice() {
        [] => None,
        [ContentPart::Text(text)] if !has_reasoning => Some(Content::Text(text.text.clone())),
        _ => Some(Content::Parts(parts)),
    };
    message.tool_calls = called_tools.then_some(tool_calls);
    Choice {
        index: candidate.index,
        message,
        finish_reason: candidate.finish_reason.as_deref().map(|reason| finish_reason(reason, called_tools)),
        logprobs: None,
        extra: Map::new(),
    }
}

/// The canonical answer for a whole Gemini response.
pub fn from_gemini(response: GenerateContentResponse, id: String, model: &str) -> ChatResponse {
    ChatResponse {
        id: response.response_id.unwrap_or(id),
        object: "chat.completion".to_owned(),
        created: crate::anthropic::unix_now(),
        model: response.model_version.unwrap_or_else(|| model.to_owned()),
        choices: response.candidates.into_iter().map(choice).collect(),
        usage: response.usage_metadata.as_ref().map(usage),
        system_fingerprint: None,
        extra: Map::new(),
    }
}

/// Converts a Gemini stream, chunk by chunk.
pub struct StreamTranslator {
    id: String,
    model: String,
    created: u64,
    started: bool,
    tool_calls: u32,
    called_tools: bool,
    finished: bool,
    usage: Option<UsageMetadata>,
}

impl StreamTranslator {
    /// A translator with the id and model to use until Gemini names its own.
    pub fn new(id: String, model: &str) -> Self {
        StreamTranslator {
            id,
            model: model.to_owned(),
            created: crate::anthropic::unix_now(),
            started: false,
            tool_calls: 0,
            called_tools: false,
            finished: false,
            usage: None,
        }
    }

    /// Whether a finish reason arrived.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn chunk(&self, index: u32, delta: Delta, finish_reason: Option<FinishReason>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice { index, delta, finish_reason, logprobs: None, extra: Map::new() }],
            usage: None,
            start_usage: None,
            system_fingerprint: None,
            extra: Map::new(),
        }
    }

    /// The chunks one Gemini stream chunk becomes.
    pub fn on_chunk(&mut self, response: GenerateContentResponse) -> Vec<ChatChunk> {
        if let Some(id) = response.response_id {
            self.id = id;
        }
        if let Some(version) = response.model_version {
            self.model = version;
        }
        if let Some(usage) = response.usage_metadata {
            // Cumulative: the latest replaces the earlier.
            self.usage = Some(usage);
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            let delta =
                Delta { role: Some(Role::Assistant), content: Some(String::new()), ..Delta::default() };
            out.push(self.chunk(0, delta, None));
        }
        for candidate in response.candidates {
            let index = candidate.index;
            for part in candidate.content.map(|content| content.parts).unwrap_or_default() {
                let signature = part.thought_signature.clone();
                let delta = match part {
                    Part { text: Some(text), thought: Some(true), .. } => {
                        Delta { reasoning_content: Some(text), ..Delta::default() }
                    }
                    Part { text: Some(text), .. } => Delta { content: Some(text), ..Delta::default() },
                    Part { function_call: Some(call), .. } => {
                        self.called_tools = true;
                        let tool_index = self.tool_calls;
                        let id = call_id(call.id.as_ref(), &mut self.tool_calls);
                        Delta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index: tool_index,
                                id: Some(id),
                                kind: Some("function".to_owned()),
                                function: Some(FunctionCallDelta {
                                    name: Some(call.name),
                                    arguments: Some(call.args.to_string()),
                                }),
                            }]),
                            ..Delta::default()
                        }
                    }
                    _ => Delta::default(),
                };
                if let Some(signature) = signature {
                    out.push(self.chunk(
                        index,
                        Delta { reasoning_signature: Some(signature), ..Delta::default() },
                        None,
                    ));
                }
                if delta != Delta::default() {
                    out.push(self.chunk(index, delta, None));
                }
            }
            if let Some(reason) = candidate.finish_reason {
                self.finished = true;
                out.push(self.chunk(
                    index,
                    Delta::default(),
                    Some(finish_reason(&reason, self.called_tools)),
                ));
            }
        }
        out
    }

    /// The final usage chunk, once the stream ends.
    pub fn finish(&self) -> Option<ChatChunk> {
        let usage = self.usage.as_ref()?;
        let mut last = self.chunk(0, Delta::default(), None);
        last.choices.clear();
        last.usage = Some(self::usage(usage));
        Some(last)
    }
}
