//! Canonical chat request -> Anthropic Messages request.

use serde_json::{Map, Value};

use loom_core::{
    ChatRequest, Content, ContentPart, LoomError, Message, ResponseFormat, Role, ToolChoice,
    tool::ToolChoiceMode,
};

use crate::media::split_data_url;
use crate::tool_calls;

use super::wire::{
    AnthropicMessage, AnthropicRole, AnthropicTool, AnthropicToolChoice, ContentBlock, MediaSource,
    MessageContent, MessagesRequest, SystemPrompt,
};

/// Thinking budgets Loom uses for OpenAI's `reasoning_effort`.
pub fn thinking_budget(effort: &str) -> Option<u32> {
    match effort {
        "minimal" => Some(1024),
        "low" => Some(2048),
        "medium" => Some(8192),
        "high" => Some(24576),
        _ => None,
    }
}

fn unsupported(param: &str, why: &str) -> LoomError {
    LoomError::invalid_request(format!("`{param}` {why}"), Some(param.to_owned()))
        .with_code("unsupported_parameter")
}

/// Builds the Anthropic body; `default_max_tokens` applies when the client set no limit.
pub fn to_anthropic(chat: &ChatRequest, default_max_tokens: u32) -> Result<MessagesRequest, LoomError> {
    reject_unsupported(chat)?;
    let mut system_blocks: Vec<ContentBlock> = Vec::new();
    let mut messages: Vec<AnthropicMessage> = Vec::new();
    for (index, message) in chat.messages.iter().enumerate() {
        match message.role {
            Role::System | Role::Developer => {
                if let Some(content) = &message.content {
                    system_blocks.extend(blocks_of(content, index, message.role)?);
                }
            }
            Role::User => push(&mut messages, AnthropicRole::User, user_blocks(message, index)?),
            Role::Assistant => {
                push(&mut messages, AnthropicRole::Assistant, assistant_blocks(message, index)?)
            }
            Role::Tool | Role::Function => {
                push(&mut messages, AnthropicRole::User, vec![tool_result(message, index)?])
            }
        }
    }
    let system = match system_blocks.as_slice() {
        [] => None,
        [ContentBlock::Text { text, cache_control: None, extra }] if extra.is_empty() => {
            Some(SystemPrompt::Text(text.clone()))
        }
        _ => Some(SystemPrompt::Blocks(system_blocks)),
    };
    let mut thinking = chat.thinking.clone();
    if thinking.is_none()
        && let Some(effort) = &chat.reasoning_effort
    {
        let budget = thinking_budget(effort)
            .ok_or_else(|| unsupported("reasoning_effort", "must be one of minimal, low, medium, high"))?;
        thinking =
            Some(loom_core::ThinkingConfig { kind: "enabled".to_owned(), budget_tokens: Some(budget) });
    }
    let mut max_tokens = chat.output_limit().unwrap_or(default_max_tokens);
    if let Some(budget) = thinking.as_ref().and_then(|thinking| thinking.budget_tokens) {
        // Anthropic requires max_tokens > budget_tokens; the budget is part of the output.
        max_tokens = max_tokens.max(budget.saturating_add(1024));
    }
    let metadata = chat.user.as_ref().map(|user| {
        let mut metadata = Map::new();
        metadata.insert("user_id".to_owned(), Value::String(user.clone()));
        metadata
    });
    Ok(MessagesRequest {
        model: chat.model.clone(),
        max_tokens: Some(max_tokens),
        messages,
        system,
        stop_sequences: chat.stop.as_ref().map(|stop| stop.to_vec()),
        stream: chat.stream,
        temperature: chat.temperature,
        top_p: chat.top_p,
        top_k: chat.extra.get("top_k").and_then(Value::as_u64).map(|top_k| top_k as u32),
        tools: tools(chat)?,
        tool_choice: tool_choice(chat),
        thinking,
        metadata,
        extra: Map::new(),
    })
}

/// Rejects what Anthropic cannot honour instead of dropping it silently.
fn reject_unsupported(chat: &ChatRequest) -> Result<(), LoomError> {
    if chat.n.is_some_and(|n| n > 1) {
        return Err(unsupported("n", "greater than 1 is not supported by Anthropic"));
    }
    if chat.logprobs == Some(true) || chat.top_logprobs.is_some() {
        return Err(unsupported("logprobs", "is not supported by Anthropic"));
    }
    if chat.logit_bias.as_ref().is_some_and(|bias| !bias.is_empty()) {
        return Err(unsupported("logit_bias", "is not supported by Anthropic"));
    }
    for (param, value) in
        [("presence_penalty", chat.presence_penalty), ("frequency_penalty", chat.frequency_penalty)]
    {
        if value.is_some_and(|value| value != 0.0) {
            return Err(unsupported(param, "is not supported by Anthropic"));
        }
    }
    if let Some(format) = &chat.response_format
        && !matches!(format, ResponseFormat::Text)
    {
        return Err(unsupported(
            "response_format",
            "JSON mode is not supported by Anthropic; describe the format in the prompt or use a tool",
        ));
    }
    Ok(())
}

/// Appends blocks, merging into the previous message when the role repeats
/// (Anthropic requires user and assistant turns to alternate).
fn push(messages: &mut Vec<AnthropicMessage>, role: AnthropicRole, blocks: Vec<ContentBlock>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut()
        && last.role == role
    {
        let previous = std::mem::replace(&mut last.content, MessageContent::Blocks(Vec::new()));
        let mut merged = previous.into_blocks();
        merged.extend(blocks);
        last.content = MessageContent::Blocks(merged);
        return;
    }
    let content = match blocks.as_slice() {
        [ContentBlock::Text { text, cache_control: None, extra }] if extra.is_empty() => {
            MessageContent::Text(text.clone())
        }
        _ => MessageContent::Blocks(blocks),
    };
    messages.push(AnthropicMessage { role, content });
}

fn user_blocks(message: &Message, index: usize) -> Result<Vec<ContentBlock>, LoomError> {
    match &message.content {
        Some(content) => blocks_of(content, index, Role::User),
        None => Ok(Vec::new()),
    }
}

fn assistant_blocks(message: &Message, index: usize) -> Result<Vec<ContentBlock>, LoomError> {
    let mut blocks = match &message.content {
        Some(content) => blocks_of(content, index, Role::Assistant)?,
        None => Vec::new(),
    };
    // Thinking blocks an OpenAI-format client carried back (`thinking_blocks`).
    if let Some(Value::Array(carried)) = message.extra.get("thinking_blocks") {
        let mut thinking = Vec::with_capacity(carried.len());
        for (position, block) in carried.iter().enumerate() {
            let block: ContentBlock = serde_json::from_value(block.clone()).map_err(|error| {
                LoomError::invalid_request(
                    format!("Invalid thinking block: {error}"),
                    Some(format!("messages[{index}].thinking_blocks[{position}]")),
                )
            })?;
            thinking.push(block);
        }
        thinking.extend(blocks);
        blocks = thinking;
    }
    for (position, call) in message.tool_calls.iter().flatten().enumerate() {
        let input = tool_calls::arguments(call, index, position)?;
        blocks.push(ContentBlock::ToolUse {
            id: call.id.clone(),
            name: call.function.name.clone(),
            input,
            cache_control: None,
        });
    }
    Ok(blocks)
}

fn tool_result(message: &Message, index: usize) -> Result<ContentBlock, LoomError> {
    let tool_use_id = message.tool_call_id.clone().ok_or_else(|| {
        LoomError::invalid_request(
            "A tool message needs `tool_call_id`",
            Some(format!("messages[{index}].tool_call_id")),
        )
    })?;
    let content = match &message.content {
        None => None,
        Some(Content::Text(text)) => Some(MessageContent::Text(text.clone())),
        Some(content) => Some(MessageContent::Blocks(blocks_of(content, index, Role::Tool)?)),
    };
    let is_error = message.extra.get("is_error").and_then(Value::as_bool);
    Ok(ContentBlock::ToolResult { tool_use_id, content, is_error, cache_control: None })
}

/// Converts content to Anthropic blocks; `role` decides which parts are allowed.
fn blocks_of(content: &Content, index: usize, role: Role) -> Result<Vec<ContentBlock>, LoomError> {
    let parts = match content {
        Content::Text(text) if text.is_empty() => return Ok(Vec::new()),
        Content::Text(text) => return Ok(vec![ContentBlock::text(text.clone())]),
        Content::Parts(parts) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (position, part) in parts.iter().enumerate() {
        let param = || format!("messages[{index}].content[{position}]");
        let block = match part {
            ContentPart::Text(text) => ContentBlock::Text {
                text: text.text.clone(),
                cache_control: text.cache_control.clone(),
                extra: Map::new(),
            },
            ContentPart::ImageUrl(image) => ContentBlock::Image {
                source: media_source(&image.image_url.url, &param())?,
                cache_control: image.cache_control.clone(),
            },
            ContentPart::File(file) => match (&file.file.file_data, &file.file.file_id) {
                (Some(data), _) => ContentBlock::Document {
                    source: media_source(data, &param())?,
                    cache_control: None,
                    extra: Map::new(),
                },
                (None, Some(id)) => ContentBlock::Document {
                    source: MediaSource::File { file_id: id.clone() },
                    cache_control: None,
                    extra: Map::new(),
                },
                (None, None) => {
                    return Err(LoomError::invalid_request(
                        "A file part needs `file_data` or `file_id`",
                        Some(param()),
                    ));
                }
            },
            ContentPart::Thinking(thinking) if role == Role::Assistant => ContentBlock::Thinking {
                thinking: thinking.thinking.clone(),
                signature: thinking.signature.clone().unwrap_or_default(),
            },
            ContentPart::RedactedThinking(redacted) if role == Role::Assistant => {
                ContentBlock::RedactedThinking { data: redacted.data.clone() }
            }
            ContentPart::InputAudio(_) => {
                return Err(LoomError::invalid_request(
                    "Anthropic does not accept audio input",
                    Some(param()),
                )
                .with_code("unsupported_content"));
            }
            ContentPart::Thinking(_) | ContentPart::RedactedThinking(_) => {
                return Err(LoomError::invalid_request(
                    "Thinking blocks belong in assistant messages",
                    Some(param()),
                ));
            }
            ContentPart::Other(other) => {
                // A part in Anthropic's own shape (e.g. `search_result`) passes through.
                serde_json::from_value(Value::Object(other.clone())).map_err(|_| {
                    LoomError::invalid_request(
                        format!(
                            "Content part type `{}` is not supported by Anthropic",
                            other.get("type").and_then(Value::as_str).unwrap_or("?")
                        ),
                        Some(param()),
                    )
                    .with_code("unsupported_content")
                })?
            }
        };
        blocks.push(block);
    }
    Ok(blocks)
}

/// A `data:` URL becomes inline base64; an http(s) URL is fetched by Anthropic.
fn media_source(url: &str, param: &str) -> Result<MediaSource, LoomError> {
    if let Some((media_type, data)) = split_data_url(url, param)? {
        return Ok(MediaSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(MediaSource::Url { url: url.to_owned() });
    }
    Err(LoomError::invalid_request(
        "An image or file must be an http(s) URL or a base64 data URL",
        Some(param.to_owned()),
    ))
}

fn tools(chat: &ChatRequest) -> Result<Option<Vec<AnthropicTool>>, LoomError> {
    let Some(tools) = &chat.tools else { return Ok(None) };
    let mut converted = Vec::with_capacity(tools.len());
    for (index, tool) in tools.iter().enumerate() {
        let function = match (&tool.function, tool.kind.as_str()) {
            (Some(function), "function") => function,
            (None, kind) if tool.extra.get("name").is_some_and(Value::is_string) => {
                // An Anthropic server tool carried through from an Anthropic client.
                let mut extra = tool.extra.clone();
                let name = extra
                    .remove("name")
                    .and_then(|name| name.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let description =
                    extra.remove("description").and_then(|text| text.as_str().map(str::to_owned));
                extra.insert("type".to_owned(), Value::String(kind.to_owned()));
                converted.push(AnthropicTool {
                    name,
                    description,
                    input_schema: None,
                    cache_control: tool.cache_control.clone(),
                    extra,
                });
                continue;
            }
            _ => {
                return Err(LoomError::invalid_request(
                    format!("Tool type `{}` is not supported by Anthropic", tool.kind),
                    Some(format!("tools[{index}].type")),
                ));
            }
        };
        converted.push(AnthropicTool {
            name: function.name.clone(),
            description: function.description.clone(),
            input_schema: Some(
                function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            ),
            cache_control: tool.cache_control.clone(),
            extra: Map::new(),
        });
    }
    Ok(Some(converted))
}

fn tool_choice(chat: &ChatRequest) -> Option<AnthropicToolChoice> {
    let disable_parallel = (chat.parallel_tool_calls == Some(false)).then_some(true);
    let (kind, name) = match &chat.tool_choice {
        None if disable_parallel.is_some() && chat.tools.is_some() => ("auto", None),
        None => return None,
        Some(ToolChoice::Mode(ToolChoiceMode::Auto)) => ("auto", None),
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => ("none", None),
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => ("any", None),
        Some(ToolChoice::Named(named)) => ("tool", Some(named.function.name.clone())),
    };
    let disable_parallel_tool_use = if kind == "none" { None } else { disable_parallel };
    Some(AnthropicToolChoice { kind: kind.to_owned(), name, disable_parallel_tool_use })
}
