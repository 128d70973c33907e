//! A whole chat answer: canonical, or an OpenAI-format upstream's own JSON.
//!
//! As with stream chunks ([`crate::stream_chunk`]), an OpenAI-format answer going to an
//! OpenAI-format client needs no translation, so it is kept as bytes and only its model
//! and usage are read.

use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::{ErrorKind, LoomError};
use crate::response::ChatResponse;
use crate::usage::Usage;

/// A whole chat answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatAnswer {
    /// A canonical answer.
    Typed(Box<ChatResponse>),
    /// An OpenAI `chat.completion` exactly as the upstream sent it.
    Wire(WireResponse),
}

impl From<ChatResponse> for ChatAnswer {
    fn from(response: ChatResponse) -> Self {
        ChatAnswer::Typed(Box::new(response))
    }
}

impl ChatAnswer {
    /// The model that answered.
    pub fn model(&self) -> &str {
        match self {
            ChatAnswer::Typed(response) => &response.model,
            ChatAnswer::Wire(wire) => &wire.model,
        }
    }

    /// The usage the answer reports.
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            ChatAnswer::Typed(response) => response.usage.as_ref(),
            ChatAnswer::Wire(wire) => wire.usage.as_deref(),
        }
    }

    /// The completion id.
    pub fn id(&self) -> &str {
        match self {
            ChatAnswer::Typed(response) => &response.id,
            ChatAnswer::Wire(wire) => &wire.id,
        }
    }

    /// The canonical answer, decoding wire JSON (an answer that does not decode is an upstream error).
    pub fn into_typed(self) -> Result<ChatResponse, LoomError> {
        match self {
            ChatAnswer::Typed(response) => Ok(*response),
            ChatAnswer::Wire(wire) => crate::json::from_bytes(&wire.json).map_err(|error| {
                LoomError::new(ErrorKind::UpstreamError, format!("unexpected answer: {error}"))
            }),
        }
    }
}

/// An OpenAI `chat.completion` in the upstream's JSON, with its id, model and usage read.
#[derive(Debug, Clone, PartialEq)]
pub struct WireResponse {
    json: Bytes,
    id: String,
    model: String,
    usage: Option<Box<Usage>>,
}

/// What is read of a wire answer; everything else is skipped, not built.
#[derive(Deserialize)]
struct Outline {
    id: String,
    model: String,
    #[serde(default)]
    usage: Option<Usage>,
    #[allow(dead_code)]
    choices: IgnoredAny,
}

impl WireResponse {
    /// Checks that `json` is a chat completion (an object with `id`, `model` and `choices`)
    /// and reads its id, model and usage.
    pub fn parse(json: Bytes) -> Result<Self, serde_json::Error> {
        let outline: Outline = crate::json::object_from_bytes(&json, "an answer")?;
        Ok(WireResponse { json, id: outline.id, model: outline.model, usage: outline.usage.map(Box::new) })
    }

    /// An answer in another API's format passed through as is (the Responses API's, from a
    /// provider that serves it natively), with what accounting reads of it; it is no chat
    /// completion, so [`ChatAnswer::into_typed`] fails on it.
    pub fn passed_through(json: Bytes, id: String, model: String, usage: Option<Usage>) -> Self {
        WireResponse { json, id, model, usage: usage.map(Box::new) }
    }

    /// The answer's JSON, as received.
    pub fn json(&self) -> &Bytes {
        &self.json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4},"service_tier":"default"}"#;

    #[test]
    fn keeps_the_bytes_and_reads_id_model_and_usage() {
        let answer = ChatAnswer::Wire(WireResponse::parse(Bytes::from_static(ANSWER.as_bytes())).unwrap());
        assert_eq!(answer.id(), "chatcmpl-1");
        assert_eq!(answer.model(), "gpt-4o");
        assert_eq!(answer.usage(), Some(&Usage::new(3, 1)));
        let ChatAnswer::Wire(wire) = &answer else { unreachable!() };
        assert_eq!(wire.json(), ANSWER.as_bytes());
        assert_eq!(answer.into_typed().unwrap(), serde_json::from_str::<ChatResponse>(ANSWER).unwrap());
    }

    #[test]
    fn what_is_not_an_answer_is_refused() {
        let error = WireResponse::parse(Bytes::from_static(br#"{"id":"x","choices":[]}"#)).unwrap_err();
        assert_eq!(error.to_string(), "missing field `model` at line 1 column 23");
        assert!(WireResponse::parse(Bytes::from_static(b"[\"x\",\"m\",[]]")).is_err());
        assert!(WireResponse::parse(Bytes::from_static(b"{\"id\":")).is_err());
    }
}
