//! Prompt tokens of a chat-completions request.
//!
//! Messages follow OpenAI's documented framing (cookbook "How to count tokens with
//! tiktoken", exact against the API for gpt-4o, gpt-4o-mini, gpt-4-0613 and
//! gpt-3.5-turbo-0125): every message costs [`TOKENS_PER_MESSAGE`] plus the tokens of its
//! role and content, a `name` costs its tokens plus [`TOKENS_PER_NAME`], and the reply is
//! primed with [`REPLY_PRIMING`] tokens. Tools follow the cookbook's function-definition
//! rule ([`count_tools`]), images the provider's formula ([`crate::image`]).
//! `docs/tokens.md` lists every rule and what is not counted.

use loom_core::message::{ContentPart, ImageUrlPart};
use loom_core::{ChatRequest, Content, Message, Tool};
use serde::Serialize;
use serde_json::Value;

use crate::encoding::Encoding;
use crate::image::{self, Detail};
use crate::registry::{ModelFamily, TokenCounter};

/// Overhead of every message (`<|start|>{role}<|message|>{content}<|end|>`).
pub const TOKENS_PER_MESSAGE: usize = 3;
/// Extra cost of a message's `name`, on top of the name's own tokens.
pub const TOKENS_PER_NAME: usize = 1;
/// Every reply is primed with `<|start|>assistant<|message|>`.
pub const REPLY_PRIMING: usize = 3;
/// Per tool call in an assistant message, on top of its name and arguments.
pub const TOKENS_PER_TOOL_CALL: usize = 3;

/// Cookbook tool-rule constant: start of each function, `o200k_base` models.
pub const FUNC_INIT_O200K: i64 = 7;
/// Cookbook tool-rule constant: start of each function, `cl100k_base` models.
pub const FUNC_INIT_CL100K: i64 = 10;
/// Cookbook tool-rule constant: start of a non-empty `properties`.
pub const PROP_INIT: i64 = 3;
/// Cookbook tool-rule constant: each property.
pub const PROP_KEY: i64 = 3;
/// Cookbook tool-rule constant: a property with an `enum` list.
pub const ENUM_INIT: i64 = -3;
/// Cookbook tool-rule constant: each enum item, on top of its tokens.
pub const ENUM_ITEM: i64 = 3;
/// Cookbook tool-rule constant: once after all functions.
pub const FUNC_END: i64 = 12;

/// A token count and whether it is exact (the model's tokenizer and a documented rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Estimate {
    /// The count.
    pub tokens: usize,
    /// `true` when it should equal the provider's reported count; `false` for estimates.
    pub exact: bool,
}

/// Where a chat request's prompt tokens come from; the parts add up to the total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChatBreakdown {
    /// All messages: overhead, role, name, text parts and tool calls (not images).
    pub messages: usize,
    /// Each message, in order (same parts as `messages`).
    pub per_message: Vec<usize>,
    /// Tool definitions.
    pub tools: usize,
    /// Image parts, by the provider's formula.
    pub images: usize,
    /// Number of image parts.
    pub image_count: usize,
    /// Reply priming.
    pub priming: usize,
}

/// The prompt-token count of a chat request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatCount {
    /// Total prompt tokens.
    pub tokens: usize,
    /// Whether the total is exact (see [`Estimate::exact`]).
    pub exact: bool,
    /// Per-part breakdown.
    pub breakdown: ChatBreakdown,
}

impl ChatCount {
    /// The total as an [`Estimate`].
    pub fn estimate(&self) -> Estimate {
        Estimate { tokens: self.tokens, exact: self.exact }
    }
}

/// Counts `request` with `counter` (what [`TokenCounter::count_chat`] calls).
///
/// Exact only for OpenAI models on their own encoding when every message content is a
/// plain string and there are no tools, tool calls, refusals or content parts: that is
/// the case the published rule was verified for. Everything else is an estimate.
pub fn count(counter: &TokenCounter, request: &ChatRequest) -> ChatCount {
    let tokenizer = counter.tokenizer();
    let basis = counter.basis();
    let count_text = |text: &str| tokenizer.count(text);
    let mut exact = basis.is_exact() && counter.family() == ModelFamily::OpenAi;
    let mut breakdown = ChatBreakdown::default();

    for message in &request.messages {
        let mut tokens = TOKENS_PER_MESSAGE + count_text(message.role.as_str());
        if let Some(name) = &message.name {
            tokens += count_text(name) + TOKENS_PER_NAME;
        }
        match &message.content {
            None => {}
            Some(Content::Text(text)) => tokens += count_text(text),
            Some(Content::Parts(parts)) => {
                exact = false;
                for part in parts {
                    match part {
                        ContentPart::Text(part) => tokens += count_text(&part.text),
                        ContentPart::Thinking(part) => tokens += count_text(&part.thinking),
                        ContentPart::ImageUrl(part) => {
                            breakdown.images += image_tokens(counter.family(), part);
                            breakdown.image_count += 1;
                        }
                        // audio, files, redacted thinking and unknown parts: not counted
                        ContentPart::InputAudio(_)
                        | ContentPart::File(_)
                        | ContentPart::RedactedThinking(_)
                        | ContentPart::Other(_) => {}
                    }
                }
            }
        }
        tokens += tool_calls_tokens(message, &count_text);
        if message.tool_calls.as_ref().is_some_and(|calls| !calls.is_empty()) {
            exact = false;
        }
        if let Some(refusal) = &message.refusal {
            exact = false;
            tokens += count_text(refusal);
        }
        let tokens = basis.apply(tokens);
        breakdown.per_message.push(tokens);
        breakdown.messages += tokens;
    }

    if let Some(tools) = request.tools.as_deref().filter(|tools| !tools.is_empty()) {
        exact = false;
        let func_init = if tokenizer.encoding() == Some(Encoding::Cl100kBase) {
            FUNC_INIT_CL100K
        } else {
            FUNC_INIT_O200K
        };
        breakdown.tools = basis.apply(count_tools(tools, func_init, &count_text));
    }
    breakdown.priming = basis.apply(REPLY_PRIMING);

    let tokens = breakdown.messages + breakdown.tools + breakdown.images + breakdown.priming;
    ChatCount { tokens, exact, breakdown }
}

fn tool_calls_tokens(message: &Message, count_text: &impl Fn(&str) -> usize) -> usize {
    let calls = message.tool_calls.as_deref().unwrap_or_default();
    calls
        .iter()
        .map(|call| {
            TOKENS_PER_TOOL_CALL + count_text(&call.function.name) + count_text(&call.function.arguments)
        })
        .sum()
}

fn image_tokens(family: ModelFamily, part: &ImageUrlPart) -> usize {
    let size = image::data_url_size(&part.image_url.url);
    match family {
        ModelFamily::Anthropic => image::anthropic_tokens(size),
        ModelFamily::Gemini => image::gemini_tokens(size),
        ModelFamily::OpenAi | ModelFamily::Other => {
            image::openai_tokens(size, Detail::from_wire(part.image_url.detail.as_deref()))
        }
    }
}

/// Tokens of tool definitions by the OpenAI cookbook's function rule.
///
/// Per function tool: `func_init` + tokens of `"{name}:{description}"` (one trailing `.`
/// of the description dropped); if `parameters.properties` is non-empty, [`PROP_INIT`]
/// and per property [`PROP_KEY`] + tokens of `"{key}:{type}:{description}"` (trailing
/// `.` dropped); a property with `enum` adds [`ENUM_INIT`] and per item [`ENUM_ITEM`] +
/// the item's tokens. Once after all tools: [`FUNC_END`]. Loom's additions, for schemas
/// the cookbook rule does not cover: a property's other keys (`items`, nested
/// `properties`, `format`, ...) add the tokens of their compact JSON, a non-string `type`
/// is written as compact JSON, and a tool that is not a function adds the tokens of its
/// compact JSON.
pub fn count_tools(tools: &[Tool], func_init: i64, count_text: &impl Fn(&str) -> usize) -> usize {
    if tools.is_empty() {
        return 0;
    }
    let count = |text: &str| count_text(text) as i64;
    let mut total = 0i64;
    for tool in tools {
        let Some(function) = tool.function.as_ref().filter(|_| tool.kind == "function") else {
            total += serde_json::to_string(tool).map_or(0, |json| count(&json));
            continue;
        };
        total += func_init;
        let description = function.description.as_deref().unwrap_or_default();
        total += count(&format!("{}:{}", function.name, strip_period(description)));
        let properties = function
            .parameters
            .as_ref()
            .and_then(|parameters| parameters.get("properties"))
            .and_then(Value::as_object)
            .filter(|properties| !properties.is_empty());
        let Some(properties) = properties else { continue };
        total += PROP_INIT;
        for (key, schema) in properties {
            total += PROP_KEY;
            let schema = schema.as_object();
            let field = |name: &str| schema.and_then(|schema| schema.get(name));
            if let Some(items) = field("enum").and_then(Value::as_array) {
                total += ENUM_INIT;
                for item in items {
                    total += ENUM_ITEM + count(&json_text(item));
                }
            }
            let kind = field("type").map(json_text).unwrap_or_default();
            let description = field("description").and_then(Value::as_str).unwrap_or_default();
            total += count(&format!("{key}:{kind}:{}", strip_period(description)));
            if let Some(schema) = schema {
                let rest: serde_json::Map<String, Value> = schema
                    .iter()
                    .filter(|(name, _)| !matches!(name.as_str(), "type" | "description" | "enum"))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                if !rest.is_empty() {
                    total += count(&Value::Object(rest).to_string());
                }
            }
        }
    }
    total += FUNC_END;
    usize::try_from(total).unwrap_or(0)
}

fn strip_period(text: &str) -> &str {
    text.strip_suffix('.').unwrap_or(text)
}

/// A string as itself, anything else as compact JSON.
fn json_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
