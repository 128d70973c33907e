//! The Anthropic front door's wire format: Messages requests in, Messages answers and
//! errors out. Streams are in the (private) `anthropic_stream` module.

use loom_core::message::{
    FilePart, FileRef, ImageUrl, ImageUrlPart, RedactedThinkingPart, TextPart, ThinkingPart,
};
use loom_core::tool::{FunctionName, NamedToolChoice, ToolChoiceMode};
use loom_core::{
    ChatRequest, ChatResponse, Content, ContentPart, ErrorKind, FinishReason, FunctionCall,
    FunctionDefinition, LoomError, Message, Role, Stop, Tool, ToolCall, ToolChoice, Usage,
};
use loom_providers::anthropic::wire::{
    AnthropicRole, AnthropicTool, AnthropicToolChoice, AnthropicUsage, ContentBlock, ErrorBody,
    ErrorEnvelope, MediaSource, MessageContent, MessagesRequest, MessagesResponse, SystemPrompt,
};
use serde_json::{Map, Value};

pub use loom_providers::anthropic::response::STOP_SEQUENCE;

/// Parses an Anthropic Messages body into the canonical request.
pub fn parse_messages(body: &[u8]) -> Result<ChatRequest, LoomError> {
    let request: MessagesRequest = crate::openai_format::parse(body)?;
    let Some(max_tokens) = request.max_tokens else {
        return Err(LoomError::invalid_request("`max_tokens` is required", Some("max_tokens".into())));
    };
    let mut chat = to_canonical(request)?;
    chat.max_tokens = Some(max_tokens);
    Ok(chat)
}

/// Parses an Anthropic `count_tokens` body (a Messages body without `max_tokens`).
pub fn parse_count_tokens(body: &[u8]) -> Result<ChatRequest, LoomError> {
    to_canonical(crate::openai_format::parse(body)?)
}

fn to_canonical(request: MessagesRequest) -> Result<ChatRequest, LoomError> {
    if request.messages.is_empty() {
        return Err(LoomError::invalid_request("`messages` must not be empty", Some("messages".into())));
    }
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    match request.system {
        None => {}
        Some(SystemPrompt::Text(text)) => messages.push(Message::text(Role::System, text)),
        Some(SystemPrompt::Blocks(blocks)) => {
            let mut system = Message::text(Role::System, "");
            system.content = Some(Content::Parts(parts_of(blocks, "system")?));
            messages.push(system);
        }
    }
    for (index, message) in request.messages.into_iter().enumerate() {
        match message.role {
            AnthropicRole::User => user_messages(message.content, index, &mut messages)?,
            AnthropicRole::Assistant => messages.push(assistant_message(message.content, index)?),
        }
    }
    let mut chat = ChatRequest::new(request.model, messages);
    chat.extra = request.extra;
    chat.stop = request.stop_sequences.map(Stop::Many);
    chat.stream = request.stream;
    chat.temperature = request.temperature;
    chat.top_p = request.top_p;
    if let Some(top_k) = request.top_k {
        chat.extra.insert("top_k".to_owned(), Value::from(top_k));
    }
    chat.thinking = request.thinking;
    chat.user = request
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.get("user_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(tools) = request.tools {
        chat.tools = Some(tools.into_iter().map(tool).collect::<Result<_, _>>()?);
    }
    if let Some(choice) = request.tool_choice {
        apply_tool_choice(&mut chat, choice)?;
    }
    Ok(chat)
}

fn tool(mut tool: AnthropicTool) -> Result<Tool, LoomError> {
    if let Some(kind) = tool.extra.get("type").and_then(Value::as_str).map(str::to_owned)
        && kind != "custom"
    {
        // A server tool (web search, code execution...): only Anthropic can run it, so it
        // travels as-is and other providers refuse it.
        tool.extra.remove("type");
        tool.extra.insert("name".to_owned(), Value::String(tool.name));
        if let Some(description) = tool.description {
            tool.extra.insert("description".to_owned(), Value::String(description));
        }
        return Ok(Tool { kind, function: None, cache_control: tool.cache_control, extra: tool.extra });
    }
    Ok(Tool {
        kind: "function".to_owned(),
        function: Some(FunctionDefinition {
            name: tool.name,
            description: tool.description,
            parameters: tool.input_schema,
            strict: None,
        }),
        cache_control: tool.cache_control,
        extra: Map::new(),
    })
}

fn apply_tool_choice(chat: &mut ChatRequest, choice: AnthropicToolChoice) -> Result<(), LoomError> {
    chat.tool_choice = Some(match (choice.kind.as_str(), choice.name) {
        ("auto", _) => ToolChoice::Mode(ToolChoiceMode::Auto),
        ("any", _) => ToolChoice::Mode(ToolChoiceMode::Required),
        ("none", _) => ToolChoice::Mode(ToolChoiceMode::None),
        ("tool", Some(name)) => ToolChoice::Named(NamedToolChoice {
            kind: "function".to_owned(),
            function: FunctionName { name },
        }),
        (kind, _) => {
            return Err(LoomError::invalid_request(
                format!("Unknown tool_choice type `{kind}` (or `tool` without `name`)"),
                Some("tool_choice".into()),
            ));
        }
    });
    if choice.disable_parallel_tool_use == Some(true) {
        chat.parallel_tool_calls = Some(false);
    }
    Ok(())
}

/// A user turn: tool results become `tool` messages (first, as OpenAI orders them),
/// the rest one user message.
fn user_messages(content: MessageContent, index: usize, out: &mut Vec<Message>) -> Result<(), LoomError> {
    let blocks = match content {
        MessageContent::Text(text) => {
            out.push(Message::text(Role::User, text));
            return Ok(());
        }
        MessageContent::Blocks(blocks) => blocks,
    };
    let mut rest = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::ToolResult { tool_use_id, content, is_error, .. } => {
                let mut message = Message::text(Role::Tool, "");
                message.tool_call_id = Some(tool_use_id);
                message.content = Some(match content {
                    None => Content::Text(String::new()),
                    Some(MessageContent::Text(text)) => Content::Text(text),
                    Some(MessageContent::Blocks(blocks)) => {
                        Content::Parts(parts_of(blocks, &format!("messages[{index}].content"))?)
                    }
                });
                if let Some(is_error) = is_error {
                    message.extra.insert("is_error".to_owned(), Value::Bool(is_error));
                }
                out.push(message);
            }
            other => rest.push(other),
        }
    }
    if !rest.is_empty() {
        let mut message = Message::text(Role::User, "");
        message.content = Some(Content::Parts(parts_of(rest, &format!("messages[{index}].content"))?));
        out.push(message);
    }
    Ok(())
}

fn assistant_message(content: MessageContent, index: usize) -> Result<Message, LoomError> {
    let blocks = match content {
        MessageContent::Text(text) => return Ok(Message::text(Role::Assistant, text)),
        MessageContent::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::ToolUse { id, name, input, .. } => tool_calls.push(ToolCall {
                id,
                kind: "function".to_owned(),
                function: FunctionCall { name, arguments: input.to_string() },
            }),
            other => parts.extend(parts_of(vec![other], &format!("messages[{index}].content"))?),
        }
    }
    let mut message = Message::text(Role::Assistant, "");
    message.content = match parts.as_slice() {
        [] => None,
        [ContentPart::Text(text)] if text.cache_control.is_none() => Some(Content::Text(text.text.clone())),
        _ => Some(Content::Parts(parts)),
    };
    message.tool_calls = (!tool_calls.is_empty()).then_some(tool_calls);
    Ok(message)
}

/// Converts blocks (other than tool use/results) to canonical parts.
fn parts_of(blocks: Vec<ContentBlock>, param: &str) -> Result<Vec<ContentPart>, LoomError> {
    let mut parts = Vec::with_capacity(blocks.len());
    for block in blocks {
        parts.push(match block {
            ContentBlock::Text { text, cache_control, extra } => {
                ContentPart::Text(TextPart { text, cache_control, extra })
            }
            ContentBlock::Image { source, cache_control } => ContentPart::ImageUrl(ImageUrlPart {
                image_url: ImageUrl { url: source_url(source, param)?, detail: None },
                cache_control,
                extra: Map::new(),
            }),
            ContentBlock::Document { source: MediaSource::File { file_id }, .. } => {
                ContentPart::File(FilePart {
                    file: FileRef { file_data: None, file_id: Some(file_id), filename: None },
                    extra: Map::new(),
                })
            }
            ContentBlock::Document { source, .. } => ContentPart::File(FilePart {
                file: FileRef { file_data: Some(source_url(source, param)?), file_id: None, filename: None },
                extra: Map::new(),
            }),
            ContentBlock::Thinking { thinking, signature } => {
                ContentPart::Thinking(ThinkingPart { thinking, signature: Some(signature) })
            }
            ContentBlock::RedactedThinking { data } => {
                ContentPart::RedactedThinking(RedactedThinkingPart { data })
            }
            ContentBlock::ToolUse { .. } | ContentBlock::ToolResult { .. } => {
                return Err(LoomError::invalid_request(
                    "tool_use and tool_result blocks belong in assistant and user turns",
                    Some(param.to_owned()),
                ));
            }
        });
    }
    Ok(parts)
}

/// An image or document source as the URL canonical parts carry.
fn source_url(source: MediaSource, param: &str) -> Result<String, LoomError> {
    match source {
        MediaSource::Base64 { media_type, data } => Ok(format!("data:{media_type};base64,{data}")),
        MediaSource::Url { url } => Ok(url),
        MediaSource::Text { data, .. } => {
            use base64::Engine;
            Ok(format!("data:text/plain;base64,{}", base64::engine::general_purpose::STANDARD.encode(data)))
        }
        MediaSource::File { .. } => {
            Err(LoomError::invalid_request("File ids can only be used for documents", Some(param.to_owned())))
        }
    }
}

/// Anthropic's `stop_reason` for a canonical finish reason.
pub fn stop_reason(finish: &FinishReason) -> String {
    match finish {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls | FinishReason::FunctionCall => "tool_use",
        FinishReason::ContentFilter => "refusal",
        FinishReason::Other(other) => other.as_str(),
    }
    .to_owned()
}

/// The stop sequence a provider reported on a choice (kept in `extra`).
pub fn stop_sequence_of(extra: &Map<String, Value>) -> Option<String> {
    extra.get(STOP_SEQUENCE).and_then(Value::as_str).map(str::to_owned)
}

/// Anthropic usage from canonical usage (Anthropic's input count excludes cache reads and writes).
pub fn anthropic_usage(usage: Option<&Usage>) -> AnthropicUsage {
    let Some(usage) = usage else { return AnthropicUsage::default() };
    let cached = usage.cached_tokens();
    let written =
        usage.prompt_tokens_details.as_ref().and_then(|details| details.cache_creation_tokens).unwrap_or(0);
    let has_cache = usage.prompt_tokens_details.is_some();
    AnthropicUsage {
        input_tokens: usage.prompt_tokens.saturating_sub(cached.saturating_add(written)),
        output_tokens: usage.completion_tokens,
        cache_creation_input_tokens: has_cache.then_some(written),
        cache_read_input_tokens: has_cache.then_some(cached),
        extra: Map::new(),
    }
}

/// The Anthropic `message` for a canonical answer.
pub fn to_messages_response(response: ChatResponse) -> Result<MessagesResponse, LoomError> {
    let choice = response
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| LoomError::new(ErrorKind::UpstreamError, "The provider returned no choices"))?;
    let stop_sequence = stop_sequence_of(&choice.extra);
    let mut content = Vec::new();
    match choice.message.content {
        None => {}
        Some(Content::Text(text)) if text.is_empty() => {}
        Some(Content::Text(text)) => content.push(ContentBlock::text(text)),
        Some(Content::Parts(parts)) => {
            for part in parts {
                match part {
                    ContentPart::Text(text) => content.push(ContentBlock::Text {
                        text: text.text,
                        cache_control: None,
                        extra: text.extra,
                    }),
                    ContentPart::Thinking(thinking) => content.push(ContentBlock::Thinking {
                        thinking: thinking.thinking,
                        signature: thinking.signature.unwrap_or_default(),
                    }),
                    ContentPart::RedactedThinking(redacted) => {
                        content.push(ContentBlock::RedactedThinking { data: redacted.data })
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(reasoning) = choice.message.reasoning_content
        && !content.iter().any(|block| matches!(block, ContentBlock::Thinking { .. }))
    {
        // Plain-text reasoning from an OpenAI-compatible server, unsigned.
        content.insert(0, ContentBlock::Thinking { thinking: reasoning, signature: String::new() });
    }
    for call in choice.message.tool_calls.into_iter().flatten() {
        let input = if call.function.arguments.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(&call.function.arguments)
                .unwrap_or_else(|_| Value::String(call.function.arguments.clone()))
        };
        content.push(ContentBlock::ToolUse {
            id: call.id,
            name: call.function.name,
            input,
            cache_control: None,
        });
    }
    Ok(MessagesResponse {
        id: response.id,
        kind: "message".to_owned(),
        role: AnthropicRole::Assistant,
        model: response.model,
        content,
        stop_reason: Some(match &stop_sequence {
            Some(_) => "stop_sequence".to_owned(),
            None => choice.finish_reason.as_ref().map_or_else(|| "end_turn".to_owned(), stop_reason),
        }),
        stop_sequence,
        usage: anthropic_usage(response.usage.as_ref()),
        extra: Map::new(),
    })
}

/// Anthropic's error `type` for a canonical error.
pub fn anthropic_error_type(error: &LoomError) -> &'static str {
    match error.kind {
        ErrorKind::InvalidRequest | ErrorKind::UpstreamRejected | ErrorKind::MethodNotAllowed => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::ModelNotFound | ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited | ErrorKind::QuotaExceeded => "rate_limit_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Timeout | ErrorKind::RequestTimeout => "timeout_error",
        ErrorKind::UpstreamError | ErrorKind::UpstreamUnavailable | ErrorKind::Internal => "api_error",
    }
}

/// The `{"type":"error","error":{...}}` body for an error.
pub fn anthropic_error_json(error: &LoomError) -> Vec<u8> {
    let envelope = ErrorEnvelope {
        kind: "error".to_owned(),
        error: ErrorBody { kind: anthropic_error_type(error).to_owned(), message: error.message.clone() },
    };
    serde_json::to_vec(&envelope).unwrap_or_default()
}
