//! The OpenAI front door's wire format: parsing requests, encoding answers and stream events.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use loom_core::{ChatChunk, ChatRequest, ChunkStream, EmbeddingsRequest, LoomError};
use serde::de::DeserializeOwned;

use crate::http_error::openai_error_json;
use crate::sse::EventStream;

/// The stream terminator OpenAI clients wait for.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// Parses a JSON body, naming the field at fault on error.
///
/// The fast parser runs first; only a body that fails is parsed again with path
/// tracking, so valid requests do not pay for it.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, LoomError> {
    serde_json::from_slice(body).map_err(|_| explain_parse_error::<T>(body))
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
    if inner.is_syntax() || inner.is_eof() {
        LoomError::invalid_request(format!("The request body is not valid JSON: {inner}"), None)
    } else if path == "." {
        LoomError::invalid_request(format!("Invalid request body: {inner}"), None)
    } else {
        LoomError::invalid_request(format!("Invalid value for `{path}`: {inner}"), Some(path))
    }
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
pub fn chunk_event(chunk: &ChatChunk) -> Bytes {
    let mut event = BytesMut::with_capacity(256);
    event.put_slice(b"data: ");
    let mut writer = event.writer();
    if serde_json::to_writer(&mut writer, chunk).is_err() {
        return error_event(&LoomError::internal("a stream chunk could not be encoded"));
    }
    let mut event = writer.into_inner();
    event.put_slice(b"\n\n");
    event.freeze()
}

/// The OpenAI SSE events of a chunk stream: one per chunk, then `[DONE]`; an error
/// becomes an error event and ends the stream without `[DONE]`.
pub fn openai_events(chunks: ChunkStream) -> EventStream {
    Box::pin(futures_util::stream::unfold(Some(chunks), |state| async move {
        let mut chunks = state?;
        match chunks.next().await {
            Some(Ok(chunk)) => Some((chunk_event(&chunk), Some(chunks))),
            Some(Err(error)) => Some((error_event(&error), None)),
            None => Some((Bytes::from_static(DONE_EVENT), None)),
        }
    }))
}

/// The event that reports an error in the middle of a stream.
pub fn error_event(error: &LoomError) -> Bytes {
    let mut event = BytesMut::with_capacity(256);
    event.put_slice(b"data: ");
    event.put_slice(&openai_error_json(error));
    event.put_slice(b"\n\n");
    event.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(error.message.contains("missing field `model`"), "{}", error.message);
        let error = parse_chat(br#"{"model":"m","messages":[]"#).unwrap_err();
        assert!(error.message.starts_with("The request body is not valid JSON"), "{}", error.message);
        let error = parse_chat(br#"{"model":"m","messages":[]}"#).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("messages"));
        let error = parse_chat(br#"{"model":"m","messages":[{"role":"user","content":"x"}]} x"#).unwrap_err();
        assert!(error.message.contains("not valid JSON"), "{}", error.message);
    }
}
