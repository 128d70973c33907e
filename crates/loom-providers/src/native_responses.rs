//! The Responses API passed through untranslated to an OpenAI provider that serves
//! `/v1/responses` itself (`responses_api: native`).
//!
//! The Responses front door parses a request into the canonical one every stage reads
//! (checks, limits, accounting, routing), and carries the client's own body beside it
//! as a [`NativeResponses`] in the request's extensions. A native provider sends that
//! body (its model mapped) instead of translating the canonical request, and gives back
//! the upstream's answer as is: a [`WireResponse`] or [`WireChunk`]s holding the
//! Responses JSON, with its usage read for accounting. Every other provider translates,
//! and refuses what only a native one can do (built-in tools, item types chat APIs
//! lack) with a 400 before any upstream call.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use loom_core::usage::{CompletionTokensDetails, PromptTokensDetails};
use loom_core::{LoomError, Message, StreamChunk, Usage, WireChunk, WireResponse};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ProviderError;
use crate::upstream::Upstream;

/// What a Responses request asks for that only a provider serving the API natively can
/// do: the error every other provider answers with.
#[derive(Debug, Clone)]
pub struct NativeOnly {
    /// The request field at fault (e.g. `tools[1].type`).
    pub param: String,
    /// The error code (`unsupported_tool` for built-in tools).
    pub code: Option<String>,
    /// Why it cannot be translated.
    pub message: String,
}

/// A Responses API request as the client wrote it, carried in
/// [`loom_core::RequestContext::extensions`] for native providers.
#[derive(Debug, Clone)]
pub struct NativeResponses {
    /// The client's JSON body.
    body: Arc<Map<String, Value>>,
    /// The canonical conversation as parsed: a stage that changed it (a redaction)
    /// rules pass-through out, so what the checks decided is what is sent.
    messages: Arc<Vec<Message>>,
    /// What only a native provider can do, in request order.
    native_only: Arc<Vec<NativeOnly>>,
    /// Set once a provider has passed the request through: the answer is Responses JSON.
    passed_through: Arc<AtomicBool>,
}

impl NativeResponses {
    /// The client's `body`, the canonical `messages` parsed from it, and what in it only a
    /// native provider can do.
    pub fn new(body: Map<String, Value>, messages: Vec<Message>, native_only: Vec<NativeOnly>) -> Self {
        NativeResponses {
            body: Arc::new(body),
            messages: Arc::new(messages),
            native_only: Arc::new(native_only),
            passed_through: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether a provider passed the request through (its answer is the upstream's own).
    pub fn was_passed_through(&self) -> bool {
        self.passed_through.load(Ordering::Acquire)
    }

    /// Whether the canonical conversation is still the one parsed from the body.
    pub(crate) fn is_unchanged(&self, messages: &[Message]) -> bool {
        self.messages.as_slice() == messages
    }

    /// The 400 of a provider that cannot do what the request asks, if it asks for any.
    pub(crate) fn refusal(&self, provider: &str, native_provider: bool) -> Option<LoomError> {
        let first = self.native_only.first()?;
        let message = if native_provider {
            format!(
                "{} (`{provider}` serves the Responses API natively, but a check changed the request's \
                 conversation, so it cannot be passed through untranslated)",
                first.message
            )
        } else {
            first.message.clone()
        };
        let mut error = LoomError::invalid_request(message, Some(first.param.clone()));
        error.code = first.code.clone();
        Some(error)
    }

    /// The body to send: the client's, with `model` (as routing mapped it).
    pub(crate) fn body_for(&self, model: &str) -> Map<String, Value> {
        let mut body = (*self.body).clone();
        body.insert("model".to_owned(), Value::String(model.to_owned()));
        body
    }

    pub(crate) fn mark_passed_through(&self) {
        self.passed_through.store(true, Ordering::Release);
    }
}

/// The `usage` object of a Responses answer.
#[derive(Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<ResponsesUsage> for Usage {
    fn from(usage: ResponsesUsage) -> Self {
        Usage {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage
                .total_tokens
                .unwrap_or(usage.input_tokens.saturating_add(usage.output_tokens)),
            prompt_tokens_details: usage.input_tokens_details.map(|details| PromptTokensDetails {
                cached_tokens: details.cached_tokens,
                ..PromptTokensDetails::default()
            }),
            completion_tokens_details: usage.output_tokens_details.map(|details| CompletionTokensDetails {
                reasoning_tokens: details.reasoning_tokens,
                ..CompletionTokensDetails::default()
            }),
            extra: Map::new(),
        }
    }
}

/// What is read of a `response` object.
#[derive(Deserialize)]
struct ResponseOutline {
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: Option<ResponsesUsage>,
}

/// A whole Responses answer, kept as the upstream's JSON.
pub(crate) fn whole_answer(upstream: &Upstream, json: Bytes) -> Result<WireResponse, ProviderError> {
    let outline: ResponseOutline = upstream.decode(&json)?;
    let usage = outline.usage.map(Usage::from);
    Ok(WireResponse::passed_through(json, outline.id, outline.model, usage))
}

/// What is read of a stream event: its type, and the response of the final ones.
#[derive(Deserialize)]
struct EventOutline {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    response: Option<ResponseUsageOnly>,
}

#[derive(Deserialize)]
struct ResponseUsageOnly {
    #[serde(default)]
    usage: Option<ResponsesUsage>,
}

/// The event types that end a Responses stream.
fn is_terminal(kind: &str) -> bool {
    matches!(kind, "response.completed" | "response.incomplete" | "response.failed" | "error")
}

/// A Responses event stream, each event's JSON passed on as a [`WireChunk`] (the final
/// one with the usage it reports). The stream ends when the upstream closes it after a
/// final event; closed before one, it is truncated.
pub(crate) struct ResponsesEvents<E> {
    /// `None` once the stream has ended (the body is dropped then, freeing its connection).
    events: Option<E>,
    upstream: Upstream,
    ended: bool,
    /// Marked passed through with the first event: a stream failing before it may be
    /// retried on another, translating provider.
    native: Option<NativeResponses>,
}

impl<E> ResponsesEvents<E> {
    /// The events of `upstream`'s answer to `native`'s request.
    pub(crate) fn new(events: E, upstream: Upstream, native: NativeResponses) -> Self {
        ResponsesEvents { events: Some(events), upstream, ended: false, native: Some(native) }
    }
}

impl<E> futures_util::Stream for ResponsesEvents<E>
where
    E: futures_util::Stream<Item = Result<sse_core::MessageEvent, ProviderError>> + Unpin,
{
    type Item = Result<StreamChunk, LoomError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(events) = this.events.as_mut() else { return Poll::Ready(None) };
            let item = match events.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) if this.ended => {
                    this.events = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(None) => Err(this.upstream.truncated()),
                Poll::Ready(Some(Err(error))) => Err(error),
                Poll::Ready(Some(Ok(event))) if event.data.trim().is_empty() || event.data == "[DONE]" => {
                    continue;
                }
                Poll::Ready(Some(Ok(event))) => {
                    let json = Bytes::from(event.data);
                    match serde_json::from_slice::<EventOutline>(&json) {
                        Ok(outline) => {
                            this.ended |= is_terminal(&outline.kind);
                            let usage = outline.response.and_then(|response| response.usage).map(Usage::from);
                            Ok(StreamChunk::Wire(WireChunk::passed_through(json, usage)))
                        }
                        Err(error) => Err(this.upstream.invalid_json(&error)),
                    }
                }
            };
            match &item {
                Ok(_) => {
                    if let Some(native) = this.native.take() {
                        native.mark_passed_through();
                    }
                }
                Err(_) => this.events = None,
            }
            return Poll::Ready(Some(item.map_err(LoomError::from)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_usage_becomes_canonical_usage_with_its_details() {
        let usage: ResponsesUsage = serde_json::from_str(
            r#"{"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4},
                "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 19}"#,
        )
        .unwrap();
        let usage = Usage::from(usage);
        assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens), (12, 7, 19));
        assert_eq!(usage.prompt_tokens_details.and_then(|details| details.cached_tokens), Some(4));
        assert_eq!(usage.completion_tokens_details.and_then(|details| details.reasoning_tokens), Some(3));
    }

    #[test]
    fn the_body_sent_is_the_clients_with_the_mapped_model() {
        let body: Map<String, Value> =
            serde_json::from_str(r#"{"model": "asked", "input": "hi", "tools": [{"type": "web_search"}]}"#)
                .unwrap();
        let native = NativeResponses::new(body, Vec::new(), Vec::new());
        let sent = Value::Object(native.body_for("gpt-4.1"));
        assert_eq!(
            sent,
            serde_json::json!({"model": "gpt-4.1", "input": "hi", "tools": [{"type": "web_search"}]})
        );
        assert!(native.refusal("p", false).is_none(), "nothing native-only asked");
    }
}
