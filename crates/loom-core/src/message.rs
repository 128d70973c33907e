//! Conversation messages and their content parts.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;

use crate::tool::ToolCall;

/// Who authored a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions from the application (legacy name of `developer`).
    System,
    /// Instructions from the application (newer OpenAI name).
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
    /// A legacy function result.
    Function,
}

impl Role {
    /// The wire name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Function => "function",
        }
    }
}

/// One message of a chat conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author of the message.
    pub role: Role,
    /// Text or parts; absent on assistant messages that only call tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A refusal from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Plain-text reasoning, as OpenAI-compatible servers (vLLM, DeepSeek) report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Fields Loom does not model, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// A message with plain-text content.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: Some(Content::Text(text.into())),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            refusal: None,
            reasoning_content: None,
            extra: Map::new(),
        }
    }
}

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Multi-part content (text, images, audio, files, reasoning blocks).
    Parts(Vec<ContentPart>),
}

impl Content {
    /// Concatenated text of all text parts.
    pub fn joined_text(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    ContentPart::Text(text) => Some(text.text.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }
}

impl Serialize for Content {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Content::Text(text) => serializer.serialize_str(text),
            Content::Parts(parts) => parts.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Content, E> {
                Ok(Content::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Content, E> {
                Ok(Content::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

/// Anthropic prompt-caching marker, carried on parts, tools and system blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheControl {
    /// Cache type; `ephemeral` is the only one Anthropic defines.
    #[serde(rename = "type")]
    pub kind: String,
    /// Optional time to live such as `5m` or `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// One typed part of multi-part content.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    /// `{"type":"text"}`
    Text(TextPart),
    /// `{"type":"image_url"}`
    ImageUrl(ImageUrlPart),
    /// `{"type":"input_audio"}`
    InputAudio(InputAudioPart),
    /// `{"type":"file"}`
    File(FilePart),
    /// Anthropic extended-thinking block with its signature.
    Thinking(ThinkingPart),
    /// Anthropic redacted-thinking block.
    RedactedThinking(RedactedThinkingPart),
    /// A part type Loom does not model (for example a Gemini-only part), kept verbatim.
    Other(Map<String, Value>),
}

/// Text content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextPart {
    /// The text.
    pub text: String,
    /// Anthropic prompt-caching marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// Fields Loom does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Image content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrlPart {
    /// The image location.
    pub image_url: ImageUrl,
    /// Anthropic prompt-caching marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// Fields Loom does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An image as a URL or a `data:` URL with base64 bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// `https://...` or `data:image/png;base64,...`.
    pub url: String,
    /// `auto`, `low` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Audio input part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputAudioPart {
    /// The audio payload.
    pub input_audio: InputAudio,
    /// Fields Loom does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Base64 audio with its format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputAudio {
    /// Base64-encoded audio bytes.
    pub data: String,
    /// `wav` or `mp3`.
    pub format: String,
}

/// File input part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilePart {
    /// The file reference or payload.
    pub file: FileRef,
    /// Fields Loom does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A file by id or inline base64 data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    /// Inline file content as a data URL or base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    /// Id of an uploaded file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// File name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// Extended-thinking block (Anthropic), kept with its signature for multi-turn tool use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingPart {
    /// The reasoning text.
    pub thinking: String,
    /// Opaque signature the provider verifies when the block is sent back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Redacted-thinking block (Anthropic): encrypted reasoning passed back untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedactedThinkingPart {
    /// Opaque encrypted payload.
    pub data: String,
}

fn tagged<T: Serialize, S: Serializer>(kind: &str, body: &T, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let mut map = match serde_json::to_value(body).map_err(S::Error::custom)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    map.insert("type".to_owned(), Value::String(kind.to_owned()));
    map.serialize(serializer)
}

impl Serialize for ContentPart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ContentPart::Text(part) => tagged("text", part, serializer),
            ContentPart::ImageUrl(part) => tagged("image_url", part, serializer),
            ContentPart::InputAudio(part) => tagged("input_audio", part, serializer),
            ContentPart::File(part) => tagged("file", part, serializer),
            ContentPart::Thinking(part) => tagged("thinking", part, serializer),
            ContentPart::RedactedThinking(part) => tagged("redacted_thinking", part, serializer),
            ContentPart::Other(map) => map.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        let kind = match map.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            Some(_) => return Err(de::Error::custom("content part `type` must be a string")),
            None => return Err(de::Error::missing_field("type")),
        };
        fn typed<T: serde::de::DeserializeOwned, E: de::Error>(map: Map<String, Value>) -> Result<T, E> {
            serde_json::from_value(Value::Object(map)).map_err(E::custom)
        }
        let known = matches!(
            kind.as_str(),
            "text" | "image_url" | "input_audio" | "file" | "thinking" | "redacted_thinking"
        );
        if known {
            map.remove("type");
        }
        Ok(match kind.as_str() {
            "text" => ContentPart::Text(typed(map)?),
            "image_url" => ContentPart::ImageUrl(typed(map)?),
            "input_audio" => ContentPart::InputAudio(typed(map)?),
            "file" => ContentPart::File(typed(map)?),
            "thinking" => ContentPart::Thinking(typed(map)?),
            "redacted_thinking" => ContentPart::RedactedThinking(typed(map)?),
            _ => ContentPart::Other(map),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_parts_round_trip_unknown_fields_and_types() {
        let wire = json!([
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}, "x": 1},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "enc"},
            {"type": "gemini_video", "uri": "gs://v"}
        ]);
        let content: Content = serde_json::from_value(wire.clone()).unwrap();
        let Content::Parts(parts) = &content else { panic!("parts expected") };
        assert!(matches!(parts[0], ContentPart::Text(ref t) if t.extra["x"] == 1));
        assert!(matches!(parts[4], ContentPart::Other(_)));
        assert_eq!(serde_json::to_value(&content).unwrap(), wire);
    }

    #[test]
    fn bad_part_names_the_missing_field() {
        let err = serde_json::from_value::<Content>(json!([{"type": "text"}])).unwrap_err();
        assert!(err.to_string().contains("missing field `text`"), "{err}");
    }

    #[test]
    fn string_content_stays_a_string() {
        let content: Content = serde_json::from_value(json!("hello")).unwrap();
        assert_eq!(content, Content::Text("hello".into()));
        assert_eq!(serde_json::to_value(&content).unwrap(), json!("hello"));
    }
}
