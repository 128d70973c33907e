//! The OpenAI front door's wire format: parsing requests, encoding answers and stream events.

use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use loom_core::{
    ChatChunk, ChatRequest, ChatResponse, ChunkStream, Content, ContentPart, EmbeddingsRequest, LoomError,
    StreamChunk,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::http_error::openai_error_json;
use crate::sse::{EventStream, SseEvent};

/// The stream terminator OpenAI clients wait for.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// Parses a JSON body, naming the field at fault on error.
///
/// The fast parser runs first; only a body that fails is parsed again with path
/// tracking, so valid requests do not pay for it.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, LoomError> {
    loom_core::json::from_bytes(body).map_err(|_| explain_parse_error::<T>(body))
}

/// The error for a body that failed to parse, naming the field at fault.
fn explain_parse_error<T: DeserializeOwned>(body: &[u8]) -> LoomError {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let error = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(_) => match deserializer.end() {
            Ok(()) => return LoomError::invalid_request("The request body is not valid", None),
            Err(error) => {
                return LoomError::invalid_request(
                    format!("The request body is not valid JSON: {error}"),
                    None,
                );
            }
        },
        Err(error) => error,
    };
    let path = error.path().to_string();
    let inner = error.into_inner();
    if let Some(field) = missing_field(&inner) {
        // The path is the object that lacks the field; the parameter is the field itself.
        let param = if path == "." { field } else { format!("{path}.{field}") };
        return LoomError::invalid_request(format!("`{param}` is required"), Some(param));
    }
    if inner.is_syntax() || inner.is_eof() {
        LoomError::invalid_request(format!("The request body is not valid JSON: {inner}"), None)
    } else if path == "." {
        LoomError::invalid_request(format!("Invalid request body: {inner}"), None)
    } else {
        LoomError::invalid_request(format!("Invalid value for `{path}`: {inner}"), Some(path))
    }
}

/// The field a data error reports missing, from serde's fixed `missing field `NAME``
/// message (serde_json keeps the message, not the field).
fn missing_field(error: &serde_json::Error) -> Option<String> {
    if !error.is_data() {
        return None;
    }
    let message = error.to_string();
    let rest = message.strip_prefix("missing field `")?;
    rest.find('`').map(|end| rest[..end].to_owned())
}

/// Parses and checks a chat-completions body.
pub fn parse_chat(body: &[u8]) -> Result<ChatRequest, LoomError> {
    let chat: ChatRequest = parse(body)?;
    if chat.model.is_empty() {
        return Err(LoomError::invalid_request("`model` must not be empty", Some("model".into())));
    }
    if chat.messages.is_empty() {
        return Err(LoomError::invalid_request(
            "`messages` must contain at least one message",
            Some("messages".into()),
        ));
    }
    if chat.n == Some(0) {
        return Err(LoomError::invalid_request("`n` must be at least 1", Some("n".into())));
    }
    Ok(chat)
}

/// Parses and checks an embeddings body.
pub fn parse_embeddings(body: &[u8]) -> Result<EmbeddingsRequest, LoomError> {
    let embeddings: EmbeddingsRequest = parse(body)?;
    if embeddings.model.is_empty() {
        return Err(LoomError::invalid_request("`model` must not be empty", Some("model".into())));
    }
    if embeddings.input.is_empty() {
        return Err(LoomError::invalid_request("`input` must not be empty", Some("input".into())));
    }
    Ok(embeddings)
}

/// Serializes an answer to JSON bytes.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Bytes, LoomError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|error| LoomError::internal(format!("the answer could not be encoded: {error}")))
}

/// One `data:` event carrying a chunk.
pub fn chunk_event(chunk: &ChatChunk) -> SseEvent {
    match serde_json::to_vec(chunk) {
        Ok(json) => SseEvent::Data(Bytes::from(json)),
        Err(_) => error_event(&LoomError::internal("a stream chunk could not be encoded")),
    }
}

/// The OpenAI SSE events of a chunk stream: one per chunk, then `[DONE]`; an error
/// becomes an error event and ends the stream without `[DONE]`. Usage goes out only
/// when the client asked for it (`stream_options.include_usage`). Chunks still in an
/// OpenAI upstream's JSON go out as they came.
pub fn openai_events(chunks: ChunkStream, include_usage: bool) -> EventStream {
    Box::pin(OpenAiEvents { chunks: Some(chunks), include_usage })
}

/// The stream [`openai_events`] returns.
struct OpenAiEvents {
    /// `None` once the last event (`[DONE]` or an error) has gone out.
    chunks: Option<ChunkStream>,
    include_usage: bool,
}

impl Stream for OpenAiEvents {
    type Item = SseEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SseEvent>> {
        let this = self.get_mut();
        loop {
            let Some(chunks) = this.chunks.as_mut() else { return Poll::Ready(None) };
            let Poll::Ready(next) = chunks.as_mut().poll_next(cx) else { return Poll::Pending };
            let event = match next {
                Some(Ok(StreamChunk::Wire(wire))) if this.include_usage || wire.usage().is_none() => {
                    SseEvent::Data(wire.json().clone())
                }
                Some(Ok(StreamChunk::Wire(wire))) if !wire.has_choices() => continue,
                Some(Ok(chunk)) => match chunk.into_typed() {
                    Ok(mut chunk) => {
                        if !this.include_usage && chunk.usage.is_some() {
                            if chunk.choices.is_empty() {
                                continue;
                            }
                            chunk.usage = None;
                        }
                        chunk_event(&chunk)
                    }
                    Err(error) => {
                        this.chunks = None;
                        error_event(&error)
                    }
                },
                Some(Err(error)) => {
                    this.chunks = None;
                    error_event(&error)
                }
                None => {
                    this.chunks = None;
                    SseEvent::Encoded(Bytes::from_static(DONE_EVENT))
                }
            };
            return Poll::Ready(Some(event));
        }
    }
}

/// Rewrites reasoning blocks for OpenAI clients: text stays `content` (a string),
/// reasoning text goes to `reasoning_content`, and the blocks with their signatures
/// to `thinking_blocks`, which Loom accepts back on the next turn.
pub fn for_openai_client(response: &mut ChatResponse) {
    for choice in &mut response.choices {
        let message = &mut choice.message;
        let Some(Content::Parts(parts)) = &message.content else { continue };
        if !parts
            .iter()
            .any(|part| matches!(part, ContentPart::Thinking(_) | ContentPart::RedactedThinking(_)))
        {
            continue;
        }
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut blocks = Vec::new();
        for part in parts {
            match part {
                ContentPart::Text(part) => text.push_str(&part.text),
                ContentPart::Thinking(thinking) => {
                    reasoning.push_str(&thinking.thinking);
                    blocks.push(json!({"type": "thinking", "thinking": thinking.thinking,
                        "signature": thinking.signature.clone().unwrap_or_default()}));
                }
                ContentPart::RedactedThinking(redacted) => {
                    blocks.push(json!({"type": "redacted_thinking", "data": redacted.data}));
                }
                _ => {}
            }
        }
        message.content = (!text.is_empty() || message.tool_calls.is_none()).then_some(Content::Text(text));
        if !reasoning.is_empty() {
            message.reasoning_content = Some(reasoning);
        }
        message.extra.insert("thinking_blocks".to_owned(), Value::Array(blocks));
    }
}

/// The event that reports an error in the middle of a stream.
pub fn error_event(error: &LoomError) -> SseEvent {
    SseEvent::Data(Bytes::from(openai_error_json(error)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use loom_core::WireChunk;

    const CONTENT: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#;
    const LAST: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
    const USAGE: &str = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;

    async fn events_of(include_usage: bool) -> Vec<String> {
        let chunks: Vec<Result<StreamChunk, LoomError>> = [CONTENT, LAST, USAGE]
            .into_iter()
            .map(|json| Ok(StreamChunk::Wire(WireChunk::parse(Bytes::from_static(json.as_bytes())).unwrap())))
            .collect();
        let events = openai_events(Box::pin(futures_util::stream::iter(chunks)), include_usage);
        events
            .map(|event| {
                let mut encoded = bytes::BytesMut::new();
                event.write_to(&mut encoded);
                String::from_utf8(encoded.to_vec()).unwrap()
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn wire_chunks_go_out_as_they_came() {
        let expected: Vec<String> =
            [CONTENT, LAST, USAGE].iter().map(|json| format!("data: {json}\n\n")).collect();
        assert_eq!(events_of(true).await, [expected, vec!["data: [DONE]\n\n".to_owned()]].concat());
    }

    #[tokio::test]
    async fn usage_the_client_did_not_ask_for_is_held_back() {
        let last_without_usage = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(
            events_of(false).await,
            [
                format!("data: {CONTENT}\n\n"),
                format!("data: {last_without_usage}\n\n"),
                "data: [DONE]\n\n".to_owned()
            ]
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let error = parse_chat(br#"{"model":"m","messages":[{"role":"user","content":5}]}"#).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("messages[0].content"));
        let error = parse_chat(br#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("messages[0].role"));
        let error = parse_chat(br#"{"model":"m","messages":[],"temperature":"hot"}"#).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("temperature"));
    }

    #[test]
    fn missing_fields_and_bad_json() {
        let error = parse_chat(br#"{"messages":[{"role":"user","content":"x"}]}"#).unwrap_err();
        assert_eq!((error.message.as_str(), error.param.as_deref()), ("`model` is required", Some("model")));
        let error = parse_chat(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(
            (error.message.as_str(), error.param.as_deref()),
            ("`messages` is required", Some("messages"))
        );
        let error = parse_chat(br#"{"model":"m","messages":[{"content":"x"}]}"#).unwrap_err();
        assert_eq!(
            (error.message.as_str(), error.param.as_deref()),
            ("`messages[0].role` is required", Some("messages[0].role"))
        );
        let error = parse_embeddings(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!((error.message.as_str(), error.param.as_deref()), ("`input` is required", Some("input")));
        let error = parse_chat(br#"{"model":"m","messages":[]"#).unwrap_err();
        assert!(error.message.starts_with("The request body is not valid JSON"), "{}", error.message);
        let error = parse_chat(br#"{"model":"m","messages":[]}"#).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("messages"));
        let error = parse_chat(br#"{"model":"m","messages":[{"role":"user","content":"x"}]} x"#).unwrap_err();
        assert!(error.message.contains("not valid JSON"), "{}", error.message);
    }
}
