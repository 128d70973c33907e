//! Anthropic Messages API wire types (requests, responses, stream events, errors).
//!
//! Shared by the `anthropic` provider and the gateway's Anthropic front door. Fields
//! Loom does not model are kept in `extra`, so Anthropic-to-Anthropic traffic is lossless.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use loom_core::CacheControl;

/// `POST /v1/messages` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// Model id.
    pub model: String,
    /// Output limit (required by Anthropic's Messages API; absent from `count_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The conversation.
    pub messages: Vec<AnthropicMessage>,
    /// System prompt: text or text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Whether to stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Tool definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<AnthropicTool>>,
    /// Tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<AnthropicToolChoice>,
    /// Extended thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<loom_core::ThinkingConfig>,
    /// Request metadata (`user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Fields Loom does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The body of `POST /v1/messages/count_tokens`: what of a Messages request takes input
/// tokens (no output limit, stream flag or sampling settings).
#[derive(Debug, Serialize)]
pub struct CountTokensRequest<'a> {
    /// Model id.
    pub model: &'a str,
    /// The conversation.
    pub messages: &'a [AnthropicMessage],
    /// System prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<&'a SystemPrompt>,
    /// Tool definitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<&'a [AnthropicTool]>,
    /// Tool choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<&'a AnthropicToolChoice>,
    /// Extended thinking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<&'a loom_core::ThinkingConfig>,
    /// Fields Loom does not model (an Anthropic client's own, such as `mcp_servers`).
    #[serde(flatten)]
    pub extra: &'a Map<String, Value>,
}

impl<'a> From<&'a MessagesRequest> for CountTokensRequest<'a> {
    fn from(request: &'a MessagesRequest) -> Self {
        CountTokensRequest {
            model: &request.model,
            messages: &request.messages,
            system: request.system.as_ref(),
            tools: request.tools.as_deref(),
            tool_choice: request.tool_choice.as_ref(),
            thinking: request.thinking.as_ref(),
            extra: &request.extra,
        }
    }
}

/// A system prompt: plain text or text blocks (which may carry `cache_control`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SystemPrompt {
    /// Plain text.
    Text(String),
    /// Text blocks.
    Blocks(Vec<ContentBlock>),
}

/// One message: `user` or `assistant`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicMessage {
    /// `user` or `assistant`.
    pub role: AnthropicRole,
    /// Text or blocks.
    pub content: MessageContent,
}

/// Anthropic message roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnthropicRole {
    /// The user (and tool results).
    User,
    /// The model.
    Assistant,
}

/// Message content: a string or blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Blocks.
    Blocks(Vec<ContentBlock>),
}

impl MessageContent {
    /// The content as blocks.
    pub fn into_blocks(self) -> Vec<ContentBlock> {
        match self {
            MessageContent::Text(text) => vec![ContentBlock::text(text)],
            MessageContent::Blocks(blocks) => blocks,
        }
    }
}

/// A content block of a message, a response, or a tool result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
        /// Fields Loom does not model (e.g. `citations`).
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: MediaSource,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// A document (PDF or text).
    Document {
        /// Where the document comes from.
        source: MediaSource,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
        /// Fields Loom does not model (`title`, `context`, `citations`).
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// A tool call by the model.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments as a JSON value.
        input: Value,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// The result of a tool call.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// Result text or blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<MessageContent>,
        /// Whether the tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// Extended thinking with its signature.
    Thinking {
        /// The reasoning.
        thinking: String,
        /// Signature the API verifies when the block is sent back.
        #[serde(default)]
        signature: String,
    },
    /// Redacted thinking.
    RedactedThinking {
        /// Encrypted payload.
        data: String,
    },
}

impl ContentBlock {
    /// A plain text block.
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock::Text { text: text.into(), cache_control: None, extra: Map::new() }
    }
}

/// The source of an image or document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MediaSource {
    /// Inline base64 data.
    Base64 {
        /// MIME type, e.g. `image/png`.
        media_type: String,
        /// Base64 bytes.
        data: String,
    },
    /// A URL Anthropic fetches.
    Url {
        /// The URL.
        url: String,
    },
    /// Plain text (documents).
    Text {
        /// MIME type.
        media_type: String,
        /// The text.
        data: String,
    },
    /// An uploaded file.
    File {
        /// File id.
        file_id: String,
    },
}

/// A tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicTool {
    /// Tool name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Prompt-caching marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// Fields Loom does not model (server tools carry `type`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Tool choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicToolChoice {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Tool name, for `tool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// At most one tool call per turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

/// A whole response (`type: message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// Message id.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    /// Always `assistant`.
    #[serde(default = "assistant_role")]
    pub role: AnthropicRole,
    /// Model that answered.
    pub model: String,
    /// Generated blocks.
    pub content: Vec<ContentBlock>,
    /// Why generation stopped.
    pub stop_reason: Option<String>,
    /// The stop sequence hit, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage.
    pub usage: AnthropicUsage,
    /// Fields Loom does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn message_type() -> String {
    "message".to_owned()
}

fn assistant_role() -> AnthropicRole {
    AnthropicRole::Assistant
}

/// Token usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnthropicUsage {
    /// Input tokens not read from or written to the cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Fields Loom does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One server-sent event of a streamed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The message skeleton, with input usage.
    MessageStart {
        /// Empty-content message.
        message: MessagesResponse,
    },
    /// A block begins.
    ContentBlockStart {
        /// Block position.
        index: u32,
        /// The block with empty content.
        content_block: ContentBlock,
    },
    /// A block grows.
    ContentBlockDelta {
        /// Block position.
        index: u32,
        /// What it adds.
        delta: BlockDelta,
    },
    /// A block ends.
    ContentBlockStop {
        /// Block position.
        index: u32,
    },
    /// Stop reason and cumulative usage.
    MessageDelta {
        /// Stop reason and sequence.
        delta: MessageDeltaBody,
        /// Cumulative usage so far.
        #[serde(default)]
        usage: Option<AnthropicUsage>,
    },
    /// The end.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// An error mid-stream.
    Error {
        /// The error.
        error: ErrorBody,
    },
}

impl StreamEvent {
    /// The SSE `event:` name of this event.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Ping => "ping",
            StreamEvent::Error { .. } => "error",
        }
    }
}

/// What a `content_block_delta` adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// More text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// More tool-input JSON.
    InputJsonDelta {
        /// A piece of the JSON.
        partial_json: String,
    },
    /// More thinking.
    ThinkingDelta {
        /// The reasoning.
        thinking: String,
    },
    /// The thinking block's signature.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
    /// A citation (kept verbatim).
    CitationsDelta {
        /// The citation.
        citation: Value,
    },
}

/// Stop reason and sequence of a `message_delta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageDeltaBody {
    /// Why generation stopped.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence hit.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// `{"type":"error","error":{...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ErrorBody,
}

/// An Anthropic error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `invalid_request_error`, `rate_limit_error`, `overloaded_error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable message.
    pub message: String,
}

/// The answer of `POST /v1/messages/count_tokens`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TokenCountResponse {
    /// Input tokens of the request.
    pub input_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_count_request_keeps_the_prompt_and_drops_the_generation_settings() {
        let request: MessagesRequest = serde_json::from_value(json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "Hi"}],
            "stop_sequences": ["END"],
            "stream": true,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 5,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto"},
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "metadata": {"user_id": "u-1"},
            "mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "example"}]
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(CountTokensRequest::from(&request)).unwrap(),
            json!({
                "model": "claude-sonnet-4-5",
                "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": "Hi"}],
                "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "auto"},
                "thinking": {"type": "enabled", "budget_tokens": 2048},
                "mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "example"}]
            })
        );
    }
}
