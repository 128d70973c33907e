//! Scripted replies: what the mock answers, and how a stream unfolds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::fixtures;

/// One scripted answer of the mock upstream.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON body with `content-type: application/json` plus `headers`.
    Json {
        /// HTTP status code.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// The body, serialized once per reply.
        body: Value,
    },
    /// A `text/event-stream` body written step by step, each event its own frame.
    Sse {
        /// HTTP status code.
        status: u16,
        /// The events, pauses and gates of the stream, in order.
        steps: Vec<SseStep>,
    },
    /// A body sent verbatim (e.g. malformed JSON); `application/json` unless
    /// `headers` sets a `content-type`.
    Raw {
        /// HTTP status code.
        status: u16,
        /// Response headers.
        headers: Vec<(String, String)>,
        /// The body, byte for byte.
        body: String,
    },
    /// Never answer; the connection stays open until the client gives up.
    Hang,
    /// Wait, then answer with the inner reply.
    Delay(Duration, Box<Reply>),
    /// Drop the connection without answering (HTTP/2: reset the stream).
    Close,
    /// Send the status, headers and the start of a body whose `content-length` promises
    /// more, then drop the connection (HTTP/2: reset the stream): an answer cut off mid-body.
    ResetMidBody {
        /// HTTP status code.
        status: u16,
        /// Response headers; `content-type` is `application/json` unless set here.
        headers: Vec<(String, String)>,
        /// The bytes sent before the connection is dropped.
        partial: String,
        /// The `content-length` announced; more than `partial` holds.
        content_length: usize,
    },
}

impl Reply {
    /// A 200 JSON reply.
    pub fn json(body: Value) -> Reply {
        Reply::json_status(200, body)
    }

    /// A JSON reply with the given status.
    pub fn json_status(status: u16, body: Value) -> Reply {
        Reply::Json { status, headers: Vec::new(), body }
    }

    /// A 200 SSE reply.
    pub fn sse(steps: Vec<SseStep>) -> Reply {
        Reply::Sse { status: 200, steps }
    }

    /// A verbatim body with the given status and `content-type: application/json`.
    pub fn raw(status: u16, body: impl Into<String>) -> Reply {
        Reply::Raw { status, headers: Vec::new(), body: body.into() }
    }

    /// A `status` answer that sends `partial` of a body announced as longer, then drops the
    /// connection.
    pub fn reset_mid_body(status: u16, partial: impl Into<String>) -> Reply {
        let partial = partial.into();
        // Announce more than is sent, so the cut is a protocol error and not a short body.
        let content_length = partial.len() * 2 + 64;
        Reply::ResetMidBody { status, headers: Vec::new(), partial, content_length }
    }

    /// An OpenAI error: `{"error":{"message","type","param":null,"code"}}` with `status`.
    pub fn openai_error(status: u16, error_type: &str, code: Option<&str>, message: &str) -> Reply {
        Reply::json_status(status, fixtures::error(error_type, code, message))
    }

    /// A 429 `rate_limit_exceeded` error carrying `retry-after: {retry_after_secs}`.
    pub fn rate_limited(retry_after_secs: u64) -> Reply {
        Reply::Json {
            status: 429,
            headers: vec![("retry-after".to_owned(), retry_after_secs.to_string())],
            body: fixtures::rate_limited(&format!(
                "Rate limit reached for requests. Please try again in {retry_after_secs}s."
            )),
        }
    }

    /// A 500 `server_error`, as OpenAI answers when it fails internally.
    pub fn server_error() -> Reply {
        Reply::openai_error(
            500,
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!",
        )
    }

    /// The default whole chat completion for `model`.
    pub fn chat_completion(model: &str) -> Reply {
        Reply::json(fixtures::chat_completion(model))
    }

    /// A chat completion whose assistant message is `content`, otherwise the default.
    pub fn chat_completion_with(model: &str, content: &str) -> Reply {
        let mut body = fixtures::chat_completion(model);
        body["choices"][0]["message"]["content"] = Value::String(content.to_owned());
        Reply::json(body)
    }

    /// The default chat stream for `model`, ending in `data: [DONE]`.
    pub fn chat_stream(model: &str, include_usage: bool) -> Reply {
        Reply::sse(fixtures::chat_stream_steps(model, include_usage))
    }

    /// The default embeddings list for `model` with `n_inputs` vectors.
    pub fn embeddings(model: &str, n_inputs: usize) -> Reply {
        Reply::json(fixtures::embeddings(model, n_inputs))
    }

    /// `reply`, answered after `delay`.
    pub fn delayed(delay: Duration, reply: Reply) -> Reply {
        Reply::Delay(delay, Box::new(reply))
    }

    /// This reply with an extra response header (`Json`, `Raw` and `ResetMidBody` only;
    /// others unchanged).
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        match &mut self {
            Reply::Json { headers, .. }
            | Reply::Raw { headers, .. }
            | Reply::ResetMidBody { headers, .. } => {
                headers.push((name.to_owned(), value.to_owned()));
            }
            Reply::Delay(_, inner) => {
                let taken = std::mem::replace(inner.as_mut(), Reply::Hang);
                **inner = taken.with_header(name, value);
            }
            Reply::Sse { .. } | Reply::Hang | Reply::Close => {}
        }
        self
    }
}

/// One step of a scripted SSE stream.
#[derive(Clone, Debug)]
pub enum SseStep {
    /// `data: {s}\n\n`, written as its own body frame.
    Data(String),
    /// `event: {event}\ndata: {data}\n\n` (Anthropic style).
    Event {
        /// The event name.
        event: String,
        /// The event payload.
        data: String,
    },
    /// `: {s}\n\n`, an SSE comment (e.g. a keep-alive ping).
    Comment(String),
    /// Bytes written verbatim as one frame (e.g. half an event, or CRLF framing).
    Raw(String),
    /// Pause the stream.
    Delay(Duration),
    /// Pause the stream until the gate is opened.
    Gate(Gate),
}

impl SseStep {
    /// A `data:` step holding `value` serialized as JSON.
    pub fn json(value: &Value) -> SseStep {
        SseStep::Data(value.to_string())
    }

    /// The `data: [DONE]` terminator OpenAI ends its streams with.
    pub fn done() -> SseStep {
        SseStep::Data("[DONE]".to_owned())
    }

    /// An `event:` step holding `data` serialized as JSON.
    pub fn event(event: &str, data: &Value) -> SseStep {
        SseStep::Event { event: event.to_owned(), data: data.to_string() }
    }

    /// The bytes this step writes, or `None` for pauses.
    pub fn wire_bytes(&self) -> Option<String> {
        match self {
            SseStep::Data(data) => Some(format!("data: {data}\n\n")),
            SseStep::Event { event, data } => Some(format!("event: {event}\ndata: {data}\n\n")),
            SseStep::Comment(comment) => Some(format!(": {comment}\n\n")),
            SseStep::Raw(raw) => Some(raw.clone()),
            SseStep::Delay(_) | SseStep::Gate(_) => None,
        }
    }
}

/// A one-shot latch a test opens to let a paused stream continue.
///
/// Opening is permanent: a stream reaching an open gate passes straight through,
/// so opening before the stream gets there cannot deadlock.
#[derive(Clone)]
pub struct Gate {
    state: Arc<watch::Sender<bool>>,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate { state: Arc::new(watch::Sender::new(false)) }
    }

    /// Open the gate, releasing every stream waiting on it now or later.
    pub fn open(&self) {
        self.state.send_replace(true);
    }

    /// Whether [`Gate::open`] has been called.
    pub fn is_open(&self) -> bool {
        *self.state.borrow()
    }

    /// How many streams are currently paused at this gate.
    pub fn waiting(&self) -> usize {
        // Each paused stream holds one receiver.
        self.state.receiver_count()
    }

    /// Wait until the gate is open.
    pub async fn wait(&self) {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so this cannot fail while we borrow it.
        let _ = rx.wait_for(|open| *open).await;
    }
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new()
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate").field("open", &self.is_open()).finish()
    }
}
