//! The Responses front door's wire format (`POST /v1/responses`): requests in, `response`
//! objects out. Streams are in the (private) `responses_stream` module; errors use the
//! OpenAI error shape (`http_error::openai_error_json`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use loom_core::message::{FilePart, FileRef, ImageUrl, ImageUrlPart, InputAudio, InputAudioPart, TextPart};
use loom_core::request::JsonSchemaFormat;
use loom_core::tool::{FunctionName, NamedToolChoice, ToolChoiceMode};
use loom_core::{
    ChatRequest, ChatResponse, Content, ContentPart, ErrorKind, FinishReason, FunctionCall,
    FunctionDefinition, LoomError, Message, ResponseFormat, Role, Tool, ToolCall, ToolChoice, Usage,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use loom_providers::NativeOnly;

/// Prefix of the `encrypted_content` of a reasoning item that carries a redacted
/// (encrypted) reasoning block, told apart from a signature on the way back.
const REDACTED_PREFIX: &str = "loom:redacted:";

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// The body of `POST /v1/responses`, as far as Loom reads it. Fields it does not know
/// are accepted and not sent on: they belong to the Responses API, not to the chat
/// APIs Loom translates to.
#[derive(Deserialize)]
struct ResponsesRequest {
    model: String,
    input: Option<Input>,
    instructions: Option<String>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    text: Option<TextConfig>,
    reasoning: Option<ReasoningConfig>,
    max_output_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    metadata: Option<Map<String, Value>>,
    store: Option<bool>,
    stream: Option<bool>,
    parallel_tool_calls: Option<bool>,
    user: Option<String>,
    previous_response_id: Option<String>,
    background: Option<bool>,
    conversation: Option<Value>,
    prompt: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<Value>),
}

#[derive(Deserialize, Serialize, Clone, Default)]
struct TextConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<TextFormat>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TextFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

#[derive(Deserialize, Serialize, Clone, Default)]
struct ReasoningConfig {
    effort: Option<String>,
    summary: Option<String>,
}

/// A `message` input item (also the short form without `type`).
#[derive(Deserialize)]
struct MessageItem {
    role: ItemRole,
    content: ItemContent,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ItemRole {
    User,
    Assistant,
    System,
    Developer,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ItemContent {
    Text(String),
    Parts(Vec<InputPart>),
}

/// A content part of an input message or a function-call output.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InputPart {
    InputText {
        text: String,
    },
    InputImage {
        image_url: Option<String>,
        detail: Option<String>,
    },
    InputFile {
        file_data: Option<String>,
        file_id: Option<String>,
        filename: Option<String>,
        file_url: Option<String>,
    },
    InputAudio {
        input_audio: InputAudio,
    },
    OutputText {
        text: String,
    },
    Refusal {
        refusal: String,
    },
}

#[derive(Deserialize)]
struct FunctionCallItem {
    call_id: String,
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct FunctionCallOutputItem {
    call_id: String,
    output: ItemContent,
}

#[derive(Deserialize)]
struct ReasoningItem {
    #[serde(default)]
    summary: Vec<SummaryText>,
    #[serde(default)]
    encrypted_content: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
struct SummaryText {
    text: String,
}

/// A parsed Responses request: the canonical request, what the answer echoes back, and
/// the conversation it continues.
pub struct ParsedResponses {
    /// The canonical request sent through the pipeline.
    pub chat: ChatRequest,
    /// Request settings the `response` object repeats.
    pub echo: ResponseEcho,
    /// The stored response this one continues, if any.
    pub previous_response_id: Option<String>,
    /// What only a provider serving the Responses API natively can do (built-in tools,
    /// item types the chat APIs lack): left out of `chat`, refused by the others.
    pub native_only: Vec<NativeOnly>,
    /// How many of `chat.messages` come from `instructions` (0 or 1), which a later
    /// turn does not inherit.
    instructions_len: usize,
}

impl ParsedResponses {
    /// Puts an earlier conversation before this request's input (after its instructions).
    pub fn continue_from(&mut self, history: &[Message]) {
        let at = self.instructions_len;
        self.chat.messages.splice(at..at, history.iter().cloned());
    }

    /// The conversation so far without the instructions: what a later turn continues.
    pub fn conversation(&self) -> Vec<Message> {
        self.chat.messages.get(self.instructions_len..).map(<[Message]>::to_vec).unwrap_or_default()
    }
}

/// The request settings a `response` object repeats back to the client.
#[derive(Clone, Debug, Default)]
pub struct ResponseEcho {
    instructions: Option<String>,
    tools: Vec<Value>,
    tool_choice: Option<Value>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_output_tokens: Option<u32>,
    metadata: Map<String, Value>,
    parallel_tool_calls: Option<bool>,
    text: Option<Value>,
    reasoning: Option<Value>,
    store: Option<bool>,
    user: Option<String>,
    previous_response_id: Option<String>,
}

impl ResponseEcho {
    /// Whether the client allows Loom to keep the conversation (`store`, default true).
    pub fn store(&self) -> bool {
        self.store.unwrap_or(true)
    }
}

/// Parses a Responses body into the canonical request.
pub fn parse_responses(body: &[u8]) -> Result<ParsedResponses, LoomError> {
    let request: ResponsesRequest = crate::openai_format::parse(body)?;
    if request.model.is_empty() {
        return Err(LoomError::invalid_request("`model` must not be empty", Some("model".into())));
    }
    refuse_unsupported(&request)?;
    let mut messages = Vec::new();
    if let Some(instructions) = &request.instructions {
        messages.push(Message::text(Role::System, instructions.clone()));
    }
    let instructions_len = messages.len();
    let mut native_only = Vec::new();
    match request.input {
        None if request.previous_response_id.is_none() => {
            return Err(LoomError::invalid_request("`input` is required", Some("input".into())));
        }
        None => {}
        Some(Input::Text(text)) => messages.push(Message::text(Role::User, text)),
        Some(Input::Items(items)) => {
            if items.is_empty() && request.previous_response_id.is_none() {
                return Err(LoomError::invalid_request("`input` must not be empty", Some("input".into())));
            }
            messages.extend(input_messages(items, &mut native_only)?);
        }
    }
    let mut chat = ChatRequest::new(request.model, messages);
    chat.stream = request.stream;
    chat.temperature = request.temperature;
    chat.top_p = request.top_p;
    // Like an Anthropic client's `max_tokens`: the provider moves it to
    // `max_completion_tokens` for OpenAI reasoning models.
    chat.max_tokens = request.max_output_tokens;
    chat.user = request.user.clone();
    let mut echo_tools = Vec::new();
    if let Some(tools) = request.tools {
        let mut canonical = Vec::with_capacity(tools.len());
        for (index, tool) in tools.into_iter().enumerate() {
            match function_tool(tool, index)? {
                Translated::Function(tool, echoed) => {
                    canonical.push(tool);
                    echo_tools.push(echoed);
                }
                Translated::NativeOnly(tool, refusal) => {
                    echo_tools.push(tool);
                    native_only.push(refusal);
                }
            }
        }
        if !canonical.is_empty() {
            chat.tools = Some(canonical);
            // Chat APIs refuse `parallel_tool_calls` without tools.
            chat.parallel_tool_calls = request.parallel_tool_calls;
        }
    }
    if let Some(choice) = &request.tool_choice {
        match builtin_tool_choice(choice) {
            Some(refusal) => native_only.push(refusal),
            None => chat.tool_choice = Some(tool_choice(choice)?),
        }
    }
    if let Some(format) = request.text.as_ref().and_then(|text| text.format.clone()) {
        chat.response_format = match format {
            TextFormat::Text => None,
            TextFormat::JsonObject => Some(ResponseFormat::JsonObject),
            TextFormat::JsonSchema { name, description, schema, strict } => {
                Some(ResponseFormat::JsonSchema {
                    json_schema: JsonSchemaFormat { name, description, schema, strict },
                })
            }
        };
    }
    chat.reasoning_effort = request.reasoning.as_ref().and_then(|reasoning| reasoning.effort.clone());
    let echo = ResponseEcho {
        instructions: request.instructions,
        tools: echo_tools,
        tool_choice: request.tool_choice,
        temperature: request.temperature,
        top_p: request.top_p,
        max_output_tokens: request.max_output_tokens,
        metadata: request.metadata.unwrap_or_default(),
        parallel_tool_calls: request.parallel_tool_calls,
        text: request.text.and_then(|text| serde_json::to_value(text).ok()),
        reasoning: request.reasoning.and_then(|reasoning| serde_json::to_value(reasoning).ok()),
        store: request.store,
        user: request.user,
        previous_response_id: request.previous_response_id.clone(),
    };
    Ok(ParsedResponses {
        chat,
        echo,
        previous_response_id: request.previous_response_id,
        native_only,
        instructions_len,
    })
}

/// Refuses what Loom cannot do for a Responses client.
fn refuse_unsupported(request: &ResponsesRequest) -> Result<(), LoomError> {
    let refuse = |field: &str, what: &str| {
        Err(LoomError::invalid_request(format!("`{field}` is not supported: {what}"), Some(field.to_owned())))
    };
    if request.background == Some(true) {
        return refuse("background", "Loom answers in the foreground only");
    }
    if request.conversation.as_ref().is_some_and(|value| !value.is_null()) {
        return refuse("conversation", "use `previous_response_id` to continue a conversation");
    }
    if request.prompt.as_ref().is_some_and(|value| !value.is_null()) {
        return refuse("prompt", "prompt templates live on OpenAI's platform");
    }
    Ok(())
}

/// A `tools[index]` entry, translated or not.
enum Translated {
    /// A function tool: its canonical form and what the answer echoes.
    Function(Tool, Value),
    /// A built-in tool, which needs OpenAI's own servers: as written, and the refusal of
    /// every other provider.
    NativeOnly(Value, NativeOnly),
}

/// A `tools[index]` entry: function tools are translated; built-in tools only a native
/// provider can run.
fn function_tool(tool: Value, index: usize) -> Result<Translated, LoomError> {
    #[derive(Deserialize)]
    struct FunctionTool {
        name: String,
        description: Option<String>,
        parameters: Option<Value>,
        strict: Option<bool>,
    }
    let param = format!("tools[{index}]");
    let kind = tool.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind.is_empty() {
        return Err(LoomError::invalid_request(
            format!("`{param}.type` is required"),
            Some(format!("{param}.type")),
        ));
    }
    if kind != "function" {
        let refusal = NativeOnly {
            param: format!("{param}.type"),
            code: Some("unsupported_tool".to_owned()),
            message: format!(
                "The tool type `{kind}` is not supported: only `function` tools can be translated for \
                 the providers Loom serves the Responses API from"
            ),
        };
        return Ok(Translated::NativeOnly(tool, refusal));
    }
    let function: FunctionTool = parse_at(tool, &param)?;
    let echoed = json!({
        "type": "function",
        "name": function.name,
        "description": function.description,
        "parameters": function.parameters,
        "strict": function.strict,
    });
    let tool = Tool {
        kind: "function".to_owned(),
        function: Some(FunctionDefinition {
            name: function.name,
            description: function.description,
            parameters: function.parameters,
            strict: function.strict,
        }),
        cache_control: None,
        extra: Map::new(),
    };
    Ok(Translated::Function(tool, echoed))
}

/// A `tool_choice` naming a built-in tool (`{"type": "web_search"}`): only a native
/// provider can honour it.
fn builtin_tool_choice(choice: &Value) -> Option<NativeOnly> {
    let kind = choice.as_object()?.get("type")?.as_str()?;
    (kind != "function").then(|| NativeOnly {
        param: "tool_choice".to_owned(),
        code: Some("unsupported_tool".to_owned()),
        message: format!(
            "The tool_choice type `{kind}` is not supported: only `function` tools can be translated for \
             the providers Loom serves the Responses API from"
        ),
    })
}

fn tool_choice(choice: &Value) -> Result<ToolChoice, LoomError> {
    let invalid = |message: String| LoomError::invalid_request(message, Some("tool_choice".into()));
    match choice {
        Value::String(mode) => match mode.as_str() {
            "auto" => Ok(ToolChoice::Mode(ToolChoiceMode::Auto)),
            "none" => Ok(ToolChoice::Mode(ToolChoiceMode::None)),
            "required" => Ok(ToolChoice::Mode(ToolChoiceMode::Required)),
            other => Err(invalid(format!("Unknown tool_choice `{other}`: use auto, none or required"))),
        },
        Value::Object(object) => match (object.get("type").and_then(Value::as_str), object.get("name")) {
            (Some("function"), Some(Value::String(name))) => Ok(ToolChoice::Named(NamedToolChoice {
                kind: "function".to_owned(),
                function: FunctionName { name: name.clone() },
            })),
            (Some("function"), _) => Err(invalid("A function tool_choice needs a `name`".to_owned())),
            (Some(kind), _) => Err(invalid(format!(
                "The tool_choice type `{kind}` is not supported: only `function` tools are translated"
            ))),
            (None, _) => Err(invalid("`tool_choice.type` is required".to_owned())),
        },
        _ => Err(invalid("tool_choice must be a string or an object".to_owned())),
    }
}

/// Deserializes `value`, naming the field at fault below `at` on error.
fn parse_at<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, LoomError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let param = if path == "." { at.to_owned() } else { format!("{at}.{path}") };
        let message = inner.to_string();
        if let Some(rest) = message.strip_prefix("missing field `")
            && let Some(end) = rest.find('`')
        {
            let field = format!("{param}.{}", &rest[..end]);
            return LoomError::invalid_request(format!("`{field}` is required"), Some(field));
        }
        LoomError::invalid_request(format!("Invalid value for `{param}`: {message}"), Some(param))
    })
}

/// The canonical messages of the `input` items. Consecutive assistant-side items
/// (reasoning, assistant messages, function calls) become one assistant message, as the
/// chat APIs want a turn's text and tool calls together.
fn input_messages(items: Vec<Value>, native_only: &mut Vec<NativeOnly>) -> Result<Vec<Message>, LoomError> {
    let mut out = Vec::with_capacity(items.len());
    let mut turn = AssistantTurn::default();
    for (index, item) in items.into_iter().enumerate() {
        let at = format!("input[{index}]");
        let kind = match item.get("type") {
            None | Some(Value::Null) => "message".to_owned(),
            Some(Value::String(kind)) => kind.clone(),
            Some(_) => {
                return Err(LoomError::invalid_request(
                    format!("`{at}.type` must be a string"),
                    Some(format!("{at}.type")),
                ));
            }
        };
        match kind.as_str() {
            "message" => {
                let message: MessageItem = parse_at(item, &at)?;
                match message.role {
                    ItemRole::Assistant => turn.add_content(message.content),
                    role => {
                        turn.flush(&mut out);
                        let role = match role {
                            ItemRole::System => Role::System,
                            ItemRole::Developer => Role::Developer,
                            _ => Role::User,
                        };
                        let mut canonical = Message::text(role, "");
                        canonical.content = Some(content_of(message.content, &format!("{at}.content"))?);
                        out.push(canonical);
                    }
                }
            }
            "function_call" => {
                let call: FunctionCallItem = parse_at(item, &at)?;
                turn.tool_calls.push(ToolCall {
                    id: call.call_id,
                    kind: "function".to_owned(),
                    function: FunctionCall { name: call.name, arguments: call.arguments },
                });
            }
            "function_call_output" => {
                let output: FunctionCallOutputItem = parse_at(item, &at)?;
                turn.flush(&mut out);
                let mut message = Message::text(Role::Tool, "");
                message.tool_call_id = Some(output.call_id);
                message.content = Some(content_of(output.output, &format!("{at}.output"))?);
                out.push(message);
            }
            "reasoning" => {
                let reasoning: ReasoningItem = parse_at(item, &at)?;
                turn.add_reasoning(reasoning);
            }
            other => {
                // A built-in tool's call or an item reference: a native provider reads it.
                native_only.push(NativeOnly {
                    param: format!("{at}.type"),
                    code: None,
                    message: format!(
                        "Input items of type `{other}` are not supported: use message, function_call, \
                         function_call_output or reasoning items"
                    ),
                });
            }
        }
    }
    turn.flush(&mut out);
    Ok(out)
}

/// The canonical messages of a native provider's `output` items, for a later turn that
/// may go to any provider: messages and function calls; reasoning belongs to the model
/// that wrote it, and built-in tools' items have no canonical form.
pub fn output_messages(output: Vec<Value>) -> Vec<Message> {
    let translatable = output
        .into_iter()
        .filter(|item| matches!(item.get("type").and_then(Value::as_str), Some("message" | "function_call")))
        .collect();
    input_messages(translatable, &mut Vec::new()).unwrap_or_default()
}

/// The assistant-side items gathered into one canonical assistant message.
///
/// Reasoning goes in `thinking_blocks`, the way OpenAI-format clients carry it back:
/// every provider reads it from there (Anthropic as thinking blocks before the text,
/// Gemini as the thought signature of the first part, OpenAI drops it).
#[derive(Default)]
struct AssistantTurn {
    parts: Vec<ContentPart>,
    thinking_blocks: Vec<Value>,
    tool_calls: Vec<ToolCall>,
    refusal: Option<String>,
}

impl AssistantTurn {
    fn add_content(&mut self, content: ItemContent) {
        match content {
            ItemContent::Text(text) => self.parts.push(text_part(text)),
            ItemContent::Parts(parts) => {
                for part in parts {
                    match part {
                        InputPart::OutputText { text } | InputPart::InputText { text } => {
                            self.parts.push(text_part(text))
                        }
                        InputPart::Refusal { refusal } => self.refusal = Some(refusal),
                        // Media in an assistant turn has no place in the chat APIs.
                        _ => {}
                    }
                }
            }
        }
    }

    fn add_reasoning(&mut self, reasoning: ReasoningItem) {
        let text: String = reasoning.summary.into_iter().map(|summary| summary.text).collect();
        match reasoning.encrypted_content {
            Some(encrypted) if encrypted.starts_with(REDACTED_PREFIX) => {
                let data = &encrypted[REDACTED_PREFIX.len()..];
                self.thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            }
            signature => {
                if text.is_empty() && signature.is_none() {
                    return;
                }
                let signature = signature.unwrap_or_default();
                self.thinking_blocks
                    .push(json!({"type": "thinking", "thinking": text, "signature": signature}));
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<Message>) {
        if self.parts.is_empty()
            && self.thinking_blocks.is_empty()
            && self.tool_calls.is_empty()
            && self.refusal.is_none()
        {
            return;
        }
        let parts = std::mem::take(&mut self.parts);
        let mut message = Message::text(Role::Assistant, "");
        message.content = match parts.as_slice() {
            [] => None,
            [ContentPart::Text(text)] => Some(Content::Text(text.text.clone())),
            _ => Some(Content::Parts(parts)),
        };
        let calls = std::mem::take(&mut self.tool_calls);
        message.tool_calls = (!calls.is_empty()).then_some(calls);
        message.refusal = self.refusal.take();
        if !self.thinking_blocks.is_empty() {
            let blocks = std::mem::take(&mut self.thinking_blocks);
            message.extra.insert("thinking_blocks".to_owned(), Value::Array(blocks));
        }
        out.push(message);
    }
}

fn text_part(text: String) -> ContentPart {
    ContentPart::Text(TextPart { text, cache_control: None, extra: Map::new() })
}

/// The canonical content of a user-side message or a function-call output.
fn content_of(content: ItemContent, at: &str) -> Result<Content, LoomError> {
    let parts = match content {
        ItemContent::Text(text) => return Ok(Content::Text(text)),
        ItemContent::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (index, part) in parts.into_iter().enumerate() {
        let param = format!("{at}[{index}]");
        out.push(match part {
            InputPart::InputText { text } | InputPart::OutputText { text } => text_part(text),
            InputPart::Refusal { refusal } => text_part(refusal),
            InputPart::InputImage { image_url: Some(url), detail, .. } => {
                ContentPart::ImageUrl(ImageUrlPart {
                    image_url: ImageUrl { url, detail },
                    cache_control: None,
                    extra: Map::new(),
                })
            }
            InputPart::InputImage { image_url: None, .. } => {
                return Err(LoomError::invalid_request(
                    "Images must be given as `image_url` (a URL or a data URL); file ids are not supported",
                    Some(format!("{param}.image_url")),
                ));
            }
            InputPart::InputFile { file_url: Some(_), .. } => {
                return Err(LoomError::invalid_request(
                    "`file_url` is not supported: send the file as `file_data` (a data URL) or `file_id`",
                    Some(format!("{param}.file_url")),
                ));
            }
            InputPart::InputFile { file_data: None, file_id: None, .. } => {
                return Err(LoomError::invalid_request(
                    "An input file needs `file_data` or `file_id`",
                    Some(format!("{param}.file_data")),
                ));
            }
            InputPart::InputFile { file_data, file_id, filename, file_url: None } => {
                ContentPart::File(FilePart {
                    file: FileRef { file_data, file_id, filename },
                    extra: Map::new(),
                })
            }
            InputPart::InputAudio { input_audio } => {
                ContentPart::InputAudio(InputAudioPart { input_audio, extra: Map::new() })
            }
        });
    }
    Ok(Content::Parts(out))
}

// ---------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------

/// A `response` object.
#[derive(Serialize, Clone, Debug)]
pub struct ResponseObject {
    /// `resp_...`, made by Loom.
    pub id: String,
    object: &'static str,
    created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: &'static str,
    error: Option<Value>,
    incomplete_details: Option<IncompleteDetails>,
    instructions: Option<String>,
    max_output_tokens: Option<u32>,
    model: String,
    /// The output items.
    pub output: Vec<OutputItem>,
    parallel_tool_calls: bool,
    previous_response_id: Option<String>,
    reasoning: Value,
    store: bool,
    temperature: Option<f64>,
    text: Value,
    tool_choice: Value,
    tools: Vec<Value>,
    top_p: Option<f64>,
    truncation: &'static str,
    usage: Option<ResponseUsage>,
    user: Option<String>,
    metadata: Map<String, Value>,
}

#[derive(Serialize, Clone, Debug)]
struct IncompleteDetails {
    reason: &'static str,
}

/// Token usage in the Responses shape.
#[derive(Serialize, Clone, Debug)]
struct ResponseUsage {
    input_tokens: u64,
    input_tokens_details: InputTokensDetails,
    output_tokens: u64,
    output_tokens_details: OutputTokensDetails,
    total_tokens: u64,
}

#[derive(Serialize, Clone, Debug)]
struct InputTokensDetails {
    cached_tokens: u64,
    cache_write_tokens: u64,
}

#[derive(Serialize, Clone, Debug)]
struct OutputTokensDetails {
    reasoning_tokens: u64,
}

/// One item of a response's `output`.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// Reasoning, with its signature or encrypted form when the provider gave one.
    Reasoning {
        /// `rs_...`.
        id: String,
        /// The reasoning text the provider showed.
        summary: Vec<SummaryPart>,
        /// The signature or redacted reasoning, to send back on the next turn.
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
        /// `in_progress` or `completed`.
        status: &'static str,
    },
    /// The assistant's text.
    Message {
        /// `msg_...`.
        id: String,
        /// `in_progress`, `completed` or `incomplete`.
        status: &'static str,
        /// Always `assistant`.
        role: &'static str,
        /// Text and refusal parts.
        content: Vec<OutputContent>,
    },
    /// A call of a function tool.
    FunctionCall {
        /// `fc_...`.
        id: String,
        /// The provider's call id, answered by a `function_call_output`.
        call_id: String,
        /// Function name.
        name: String,
        /// Arguments as a JSON string.
        arguments: String,
        /// `in_progress` or `completed`.
        status: &'static str,
    },
}

/// A part of a reasoning item's summary.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct SummaryPart {
    #[serde(rename = "type")]
    kind: &'static str,
    /// The text.
    pub text: String,
}

impl SummaryPart {
    /// A `summary_text` part.
    pub fn new(text: String) -> Self {
        SummaryPart { kind: "summary_text", text }
    }
}

/// A part of an output message.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    /// Text.
    OutputText {
        /// The text.
        text: String,
        /// Always empty: no provider Loom translates from cites sources this way.
        annotations: Vec<Value>,
    },
    /// A refusal.
    Refusal {
        /// Why the model refused.
        refusal: String,
    },
}

impl OutputContent {
    /// An `output_text` part.
    pub fn text(text: String) -> Self {
        OutputContent::OutputText { text, annotations: Vec::new() }
    }
}

/// A fresh id with `prefix` (`resp`, `msg`, `fc`, `rs`): 32 hex digits, unique in the
/// process and unpredictable across processes.
pub fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_nanos()).unwrap_or(0);
    let mut high = RandomState::new().build_hasher();
    high.write_u128(nanos);
    high.write_u64(sequence);
    let mut low = RandomState::new().build_hasher();
    low.write_u64(sequence);
    low.write_u32(std::process::id());
    format!("{prefix}_{:016x}{:016x}", high.finish(), low.finish())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

impl ResponseObject {
    /// A response in progress, with no output yet.
    pub fn start(id: String, model: String, echo: &ResponseEcho) -> Self {
        ResponseObject {
            id,
            object: "response",
            created_at: unix_now(),
            status: "in_progress",
            error: None,
            incomplete_details: None,
            instructions: echo.instructions.clone(),
            max_output_tokens: echo.max_output_tokens,
            model,
            output: Vec::new(),
            parallel_tool_calls: echo.parallel_tool_calls.unwrap_or(true),
            previous_response_id: echo.previous_response_id.clone(),
            reasoning: echo.reasoning.clone().unwrap_or_else(|| json!({"effort": null, "summary": null})),
            store: echo.store(),
            temperature: echo.temperature,
            text: echo.text.clone().unwrap_or_else(|| json!({"format": {"type": "text"}})),
            tool_choice: echo.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            tools: echo.tools.clone(),
            top_p: echo.top_p,
            truncation: "disabled",
            usage: None,
            user: echo.user.clone(),
            metadata: echo.metadata.clone(),
        }
    }

    /// Names the model that answered.
    pub fn set_model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
    }

    /// Marks the response finished: completed, or incomplete for `finish`'s reason.
    pub fn finish(&mut self, finish: Option<&FinishReason>, usage: Option<&Usage>) {
        let reason = match finish {
            Some(FinishReason::Length) => Some("max_output_tokens"),
            Some(FinishReason::ContentFilter) => Some("content_filter"),
            _ => None,
        };
        self.status = if reason.is_some() { "incomplete" } else { "completed" };
        self.incomplete_details = reason.map(|reason| IncompleteDetails { reason });
        self.usage = Some(response_usage(usage));
    }

    /// Marks the response failed with `error`.
    pub fn fail(&mut self, error: &LoomError) {
        self.status = "failed";
        let code = if error.kind == ErrorKind::RateLimited { "rate_limit_exceeded" } else { "server_error" };
        self.error = Some(json!({"code": code, "message": error.message}));
    }
}

fn response_usage(usage: Option<&Usage>) -> ResponseUsage {
    let usage = usage.cloned().unwrap_or_default();
    let cache_write_tokens =
        usage.prompt_tokens_details.as_ref().and_then(|details| details.cache_creation_tokens).unwrap_or(0);
    ResponseUsage {
        input_tokens: usage.prompt_tokens,
        input_tokens_details: InputTokensDetails { cached_tokens: usage.cached_tokens(), cache_write_tokens },
        output_tokens: usage.completion_tokens,
        output_tokens_details: OutputTokensDetails { reasoning_tokens: usage.reasoning_tokens() },
        total_tokens: usage.prompt_tokens.saturating_add(usage.completion_tokens),
    }
}

/// The reasoning item of one canonical reasoning block.
pub fn reasoning_item(text: String, signature: Option<String>) -> OutputItem {
    OutputItem::Reasoning {
        id: new_id("rs"),
        summary: if text.is_empty() { Vec::new() } else { vec![SummaryPart::new(text)] },
        encrypted_content: signature.filter(|signature| !signature.is_empty()),
        status: "completed",
    }
}

/// The reasoning item of a redacted (encrypted) reasoning block.
pub fn redacted_reasoning_item(data: &str) -> OutputItem {
    OutputItem::Reasoning {
        id: new_id("rs"),
        summary: Vec::new(),
        encrypted_content: Some(format!("{REDACTED_PREFIX}{data}")),
        status: "completed",
    }
}

/// The `response` object for a canonical answer.
pub fn to_response(answer: ChatResponse, echo: &ResponseEcho) -> Result<ResponseObject, LoomError> {
    let choice = answer
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| LoomError::new(ErrorKind::UpstreamError, "The provider returned no choices"))?;
    let mut response = ResponseObject::start(new_id("resp"), answer.model, echo);
    let message = choice.message;
    let mut text = String::new();
    let mut has_thinking = false;
    match message.content {
        None => {}
        Some(Content::Text(whole)) => text = whole,
        Some(Content::Parts(parts)) => {
            for part in parts {
                match part {
                    ContentPart::Text(part) => text.push_str(&part.text),
                    ContentPart::Thinking(thinking) => {
                        has_thinking = true;
                        response.output.push(reasoning_item(thinking.thinking, thinking.signature));
                    }
                    ContentPart::RedactedThinking(redacted) => {
                        has_thinking = true;
                        response.output.push(redacted_reasoning_item(&redacted.data));
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(reasoning) = message.reasoning_content.filter(|reasoning| !reasoning.is_empty())
        && !has_thinking
    {
        // Plain-text reasoning from an OpenAI-compatible server, unsigned.
        response.output.insert(0, reasoning_item(reasoning, None));
    }
    let incomplete = matches!(choice.finish_reason, Some(FinishReason::Length | FinishReason::ContentFilter));
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(OutputContent::text(text));
    }
    if let Some(refusal) = message.refusal {
        content.push(OutputContent::Refusal { refusal });
    }
    if !content.is_empty() {
        let status = if incomplete { "incomplete" } else { "completed" };
        response.output.push(OutputItem::Message { id: new_id("msg"), status, role: "assistant", content });
    }
    for call in message.tool_calls.into_iter().flatten() {
        response.output.push(OutputItem::FunctionCall {
            id: new_id("fc"),
            call_id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
            status: "completed",
        });
    }
    response.finish(choice.finish_reason.as_ref(), answer.usage.as_ref());
    Ok(response)
}

/// The canonical assistant message of a response's output (what a later turn sends back).
pub fn assistant_message(output: &[OutputItem]) -> Option<Message> {
    let mut turn = AssistantTurn::default();
    for item in output {
        match item {
            OutputItem::Reasoning { summary, encrypted_content, .. } => turn.add_reasoning(ReasoningItem {
                summary: summary.iter().map(|part| SummaryText { text: part.text.clone() }).collect(),
                encrypted_content: encrypted_content.clone(),
            }),
            OutputItem::Message { content, .. } => {
                for part in content {
                    match part {
                        OutputContent::OutputText { text, .. } => turn.parts.push(text_part(text.clone())),
                        OutputContent::Refusal { refusal } => turn.refusal = Some(refusal.clone()),
                    }
                }
            }
            OutputItem::FunctionCall { call_id, name, arguments, .. } => turn.tool_calls.push(ToolCall {
                id: call_id.clone(),
                kind: "function".to_owned(),
                function: FunctionCall { name: name.clone(), arguments: arguments.clone() },
            }),
        }
    }
    let mut messages = Vec::with_capacity(1);
    turn.flush(&mut messages);
    messages.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<ParsedResponses, LoomError> {
        parse_responses(body.to_string().as_bytes())
    }

    fn param_of(body: Value) -> (String, Option<String>) {
        let error = parse(body).err().expect("refused");
        assert_eq!(error.http_status(), 400, "{}", error.message);
        (error.message, error.param)
    }

    #[test]
    fn a_string_input_is_one_user_message() {
        let parsed = parse(json!({"model": "m", "input": "Hi", "instructions": "Be brief."})).unwrap();
        assert_eq!(
            serde_json::to_value(&parsed.chat).unwrap(),
            json!({"model": "m", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"}
            ]})
        );
    }

    #[test]
    fn assistant_side_items_become_one_turn() {
        let parsed = parse(json!({"model": "m", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}],
             "encrypted_content": "sig"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
        ]}))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&parsed.chat.messages).unwrap(),
            json!([
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
                {"role": "assistant", "content": "Checking.",
                 "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                 "thinking_blocks": [{"type": "thinking", "thinking": "think", "signature": "sig"}]},
                {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}
            ])
        );
    }

    #[test]
    fn what_only_a_native_provider_can_do_is_left_out_and_named() {
        let parsed = parse_responses(
            json!({"model": "m", "input": [{"role": "user", "content": "x"}, {"type": "item_reference", "id": "r"}],
                   "tools": [{"type": "function", "name": "f"}, {"type": "web_search"}],
                   "tool_choice": {"type": "web_search"}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let named: Vec<(&str, Option<&str>)> = parsed
            .native_only
            .iter()
            .map(|refusal| (refusal.param.as_str(), refusal.code.as_deref()))
            .collect();
        assert_eq!(
            named,
            [
                ("input[1].type", None),
                ("tools[1].type", Some("unsupported_tool")),
                ("tool_choice", Some("unsupported_tool"))
            ]
        );
        let tools = parsed.chat.tools.unwrap();
        assert_eq!(tools.len(), 1, "only the function tool is translated");
        assert_eq!(parsed.chat.tool_choice, None);
        assert_eq!(parsed.chat.messages, [Message::text(Role::User, "x")]);
        assert_eq!(parsed.echo.tools[1], json!({"type": "web_search"}), "echoed as written");
    }

    #[test]
    fn output_messages_keep_messages_and_function_calls() {
        let output = vec![
            json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"}),
            json!({"type": "web_search_call", "id": "ws_1", "status": "completed"}),
            json!({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": "Found it.", "annotations": []}]}),
            json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{}"}),
        ];
        assert_eq!(
            serde_json::to_value(output_messages(output)).unwrap(),
            json!([{"role": "assistant", "content": "Found it.",
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}])
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(param_of(json!({"input": "x"})).1.as_deref(), Some("model"));
        assert_eq!(param_of(json!({"model": "m"})).1.as_deref(), Some("input"));

        assert_eq!(
            param_of(json!({"model": "m", "input": [{"role": "robot", "content": "x"}]})).1.as_deref(),
            Some("input[0].role")
        );
        assert_eq!(
            param_of(
                json!({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]})
            )
            .1
            .as_deref(),
            Some("input[0].call_id")
        );
        assert_eq!(
            param_of(json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}))
                .1
                .as_deref(),
            Some("input[0].content[0].image_url")
        );

        assert_eq!(
            param_of(json!({"model": "m", "input": "x", "background": true})).1.as_deref(),
            Some("background")
        );
    }

    #[test]
    fn answers_become_output_items_and_back() {
        let answer: ChatResponse = serde_json::from_value(json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant",
                "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
                            {"type": "redacted_thinking", "data": "enc"},
                            {"type": "text", "text": "Hi"}],
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12,
                      "prompt_tokens_details": {"cached_tokens": 2}}
        }))
        .unwrap();
        let response = to_response(answer, &ResponseEcho::default()).unwrap();
        let value = serde_json::to_value(&response).unwrap();
        assert_eq!(value["status"], "incomplete");
        assert_eq!(value["incomplete_details"], json!({"reason": "max_output_tokens"}));
        assert_eq!(
            value["usage"],
            json!({"input_tokens": 5, "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
                   "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12})
        );
        let types: Vec<&str> = response
            .output
            .iter()
            .map(|item| match item {
                OutputItem::Reasoning { .. } => "reasoning",
                OutputItem::Message { .. } => "message",
                OutputItem::FunctionCall { .. } => "function_call",
            })
            .collect();
        assert_eq!(types, ["reasoning", "reasoning", "message", "function_call"]);
        let back = assistant_message(&response.output).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            json!({"role": "assistant", "content": "Hi",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            "thinking_blocks": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "enc"}
            ]})
        );
    }
}
