//! Canonical chat request -> Gemini `generateContent` request.

use std::collections::HashMap;

use serde_json::{Map, Value};

use loom_core::tool::ToolChoiceMode;
use loom_core::{ChatRequest, Content, ContentPart, LoomError, Message, ResponseFormat, Role, ToolChoice};

use super::wire::{
    Blob, FileData, FunctionCall, FunctionCallingConfig, FunctionDeclaration, FunctionResponse,
    GeminiContent, GeminiTool, GenerateContentRequest, GenerationConfig, Part, ThinkingConfig, ToolConfig,
};
use crate::anthropic::request::thinking_budget;
use crate::media::split_data_url;
use crate::tool_calls;

fn unsupported(param: &str, why: &str) -> LoomError {
    LoomError::invalid_request(format!("`{param}` {why}"), Some(param.to_owned()))
        .with_code("unsupported_parameter")
}

/// Builds the Gemini body for a canonical request.
pub fn to_gemini(chat: &ChatRequest) -> Result<GenerateContentRequest, LoomError> {
    if chat.logprobs == Some(true) || chat.top_logprobs.is_some() {
        return Err(unsupported("logprobs", "is not supported for Gemini by Loom"));
    }
    if chat.logit_bias.as_ref().is_some_and(|bias| !bias.is_empty()) {
        return Err(unsupported("logit_bias", "is not supported by Gemini"));
    }
    if chat.parallel_tool_calls == Some(false) {
        return Err(unsupported("parallel_tool_calls", "= false cannot be enforced on Gemini"));
    }
    // Gemini answers tool results by function name; find it from the call id.
    let call_names: HashMap<&str, &str> = chat
        .messages
        .iter()
        .flat_map(|message| message.tool_calls.iter().flatten())
        .map(|call| (call.id.as_str(), call.function.name.as_str()))
        .collect();
    let mut system: Vec<Part> = Vec::new();
    let mut contents: Vec<GeminiContent> = Vec::new();
    for (index, message) in chat.messages.iter().enumerate() {
        match message.role {
            Role::System | Role::Developer => system.extend(parts_of(message, index)?),
            Role::User => push(&mut contents, "user", parts_of(message, index)?),
            Role::Assistant => push(&mut contents, "model", model_parts(message, index)?),
            Role::Tool | Role::Function => {
                push(&mut contents, "user", vec![function_response(message, index, &call_names)?])
            }
        }
    }
    Ok(GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(GeminiContent { role: None, parts: system }),
        tools: tools(chat)?,
        tool_config: tool_config(chat),
        generation_config: generation_config(chat)?,
    })
}

/// Appends parts, merging consecutive turns of the same role (parallel tool results
/// must share one turn).
fn push(contents: &mut Vec<GeminiContent>, role: &str, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut()
        && last.role.as_deref() == Some(role)
    {
        last.parts.extend(parts);
        return;
    }
    contents.push(GeminiContent { role: Some(role.to_owned()), parts });
}

fn text_part(text: String) -> Part {
    Part { text: Some(text), ..Part::default() }
}

fn parts_of(message: &Message, index: usize) -> Result<Vec<Part>, LoomError> {
    let parts = match &message.content {
        None => return Ok(Vec::new()),
        Some(Content::Text(text)) if text.is_empty() => return Ok(Vec::new()),
        Some(Content::Text(text)) => return Ok(vec![text_part(text.clone())]),
        Some(Content::Parts(parts)) => parts,
    };
    let mut converted = Vec::with_capacity(parts.len());
    let mut signature: Option<String> = None;
    for (position, part) in parts.iter().enumerate() {
        let param = || format!("messages[{index}].content[{position}]");
        let mut part = match part {
            ContentPart::Text(text) => text_part(text.text.clone()),
            ContentPart::ImageUrl(image) => media_part(&image.image_url.url, &param())?,
            ContentPart::InputAudio(audio) => Part {
                inline_data: Some(Blob {
                    mime_type: format!("audio/{}", audio.input_audio.format),
                    data: audio.input_audio.data.clone(),
                }),
                ..Part::default()
            },
            ContentPart::File(file) => match (&file.file.file_data, &file.file.file_id) {
                (Some(data), _) => media_part(data, &param())?,
                (None, Some(id)) => Part {
                    file_data: Some(FileData { mime_type: None, file_uri: id.clone() }),
                    ..Part::default()
                },
                (None, None) => {
                    return Err(LoomError::invalid_request(
                        "A file part needs `file_data` or `file_id`",
                        Some(param()),
                    ));
                }
            },
            ContentPart::Thinking(thinking) => {
                // Gemini's reasoning is not sent back; its signature rides on the next part.
                signature = thinking.signature.clone().filter(|signature| !signature.is_empty());
                continue;
            }
            ContentPart::RedactedThinking(_) => continue,
            ContentPart::Other(other) => {
                serde_json::from_value(Value::Object(other.clone())).map_err(|error| {
                    LoomError::invalid_request(
                        format!("Unsupported content part for Gemini: {error}"),
                        Some(param()),
                    )
                })?
            }
        };
        part.thought_signature = signature.take();
        converted.push(part);
    }
    Ok(converted)
}

/// A `data:` URL becomes inline data; other URLs become file references.
fn media_part(url: &str, param: &str) -> Result<Part, LoomError> {
    if let Some((mime_type, data)) = split_data_url(url, param)? {
        return Ok(Part {
            inline_data: Some(Blob { mime_type: mime_type.to_owned(), data: data.to_owned() }),
            ..Part::default()
        });
    }
    Ok(Part {
        file_data: Some(FileData { mime_type: guess_mime(url), file_uri: url.to_owned() }),
        ..Part::default()
    })
}

fn guess_mime(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    let mime = match path.rsplit('.').next()? {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => return None,
    };
    Some(mime.to_owned())
}

fn model_parts(message: &Message, index: usize) -> Result<Vec<Part>, LoomError> {
    let mut parts = parts_of(message, index)?;
    // A signature carried back in `thinking_blocks` (OpenAI-format clients).
    let mut pending_signature = message
        .extra
        .get("thinking_blocks")
        .and_then(Value::as_array)
        .and_then(|blocks| blocks.iter().find_map(|block| block.get("signature")?.as_str()))
        .filter(|signature| !signature.is_empty())
        .map(str::to_owned);
    if let Some(first) = parts.first_mut()
        && first.thought_signature.is_none()
        && first.text.is_some()
    {
        first.thought_signature = pending_signature.take();
    }
    for (position, call) in message.tool_calls.iter().flatten().enumerate() {
        let args = tool_calls::arguments(call, index, position)?;
        parts.push(Part {
            function_call: Some(FunctionCall {
                id: gemini_call_id(&call.id),
                name: call.function.name.clone(),
                args,
            }),
            thought_signature: pending_signature.take(),
            ..Part::default()
        });
    }
    Ok(parts)
}

/// Ids Loom made up for Gemini calls that had none are not sent back.
fn gemini_call_id(id: &str) -> Option<String> {
    (!id.starts_with(super::SYNTHETIC_CALL_PREFIX)).then(|| id.to_owned())
}

fn function_response(
    message: &Message,
    index: usize,
    names: &HashMap<&str, &str>,
) -> Result<Part, LoomError> {
    let id = message.tool_call_id.as_deref().unwrap_or_default();
    let name =
        names.get(id).map(|name| (*name).to_owned()).or_else(|| message.name.clone()).ok_or_else(|| {
            LoomError::invalid_request(
                format!("No earlier assistant tool call has the id `{id}`; Gemini needs the function name"),
                Some(format!("messages[{index}].tool_call_id")),
            )
        })?;
    let text = message.content.as_ref().map(Content::joined_text).unwrap_or_default();
    // Gemini wants an object: a JSON object result is passed as is, anything else wrapped.
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => serde_json::json!({ "result": text }),
    };
    Ok(Part {
        function_response: Some(FunctionResponse { id: gemini_call_id(id), name, response }),
        ..Part::default()
    })
}

fn tools(chat: &ChatRequest) -> Result<Option<Vec<GeminiTool>>, LoomError> {
    let Some(tools) = &chat.tools else { return Ok(None) };
    let mut declarations = Vec::with_capacity(tools.len());
    for (index, tool) in tools.iter().enumerate() {
        let function = match (&tool.function, tool.kind.as_str()) {
            (Some(function), "function") => function,
            _ => {
                return Err(LoomError::invalid_request(
                    format!("Tool type `{}` is not supported for Gemini", tool.kind),
                    Some(format!("tools[{index}].type")),
                ));
            }
        };
        declarations.push(FunctionDeclaration {
            name: function.name.clone(),
            description: function.description.clone(),
            parameters_json_schema: function.parameters.clone(),
        });
    }
    Ok(Some(vec![GeminiTool { function_declarations: Some(declarations), extra: Map::new() }]))
}

fn tool_config(chat: &ChatRequest) -> Option<ToolConfig> {
    let (mode, allowed) = match chat.tool_choice.as_ref()? {
        ToolChoice::Mode(ToolChoiceMode::Auto) => ("AUTO", None),
        ToolChoice::Mode(ToolChoiceMode::None) => ("NONE", None),
        ToolChoice::Mode(ToolChoiceMode::Required) => ("ANY", None),
        ToolChoice::Named(named) => ("ANY", Some(vec![named.function.name.clone()])),
    };
    Some(ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode: mode.to_owned(),
            allowed_function_names: allowed,
        },
    })
}

fn generation_config(chat: &ChatRequest) -> Result<Option<GenerationConfig>, LoomError> {
    let (response_mime_type, response_json_schema) = match &chat.response_format {
        None | Some(ResponseFormat::Text) => (None, None),
        Some(ResponseFormat::JsonObject) => (Some("application/json".to_owned()), None),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            (Some("application/json".to_owned()), json_schema.schema.clone())
        }
    };
    let budget =
        match (&chat.thinking, &chat.reasoning_effort) {
            (Some(thinking), _) if thinking.kind == "disabled" => Some(0),
            (Some(thinking), _) => thinking.budget_tokens.map(i64::from).or(Some(-1)),
            (None, Some(effort)) => Some(i64::from(thinking_budget(effort).ok_or_else(|| {
                unsupported("reasoning_effort", "must be one of minimal, low, medium, high")
            })?)),
            (None, None) => None,
        };
    let config = GenerationConfig {
        temperature: chat.temperature,
        top_p: chat.top_p,
        top_k: chat.extra.get("top_k").and_then(Value::as_u64).map(|top_k| top_k as u32),
        max_output_tokens: chat.output_limit(),
        stop_sequences: chat.stop.as_ref().map(|stop| stop.to_vec()),
        candidate_count: chat.n.filter(|n| *n > 1),
        seed: chat.seed,
        presence_penalty: chat.presence_penalty,
        frequency_penalty: chat.frequency_penalty,
        response_mime_type,
        response_json_schema,
        response_logprobs: None,
        thinking_config: budget.map(|budget| ThinkingConfig {
            thinking_budget: Some(budget),
            include_thoughts: (budget != 0).then_some(true),
        }),
    };
    Ok((config != GenerationConfig::default()).then_some(config))
}
