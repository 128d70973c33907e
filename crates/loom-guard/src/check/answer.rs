//! The PII check's `redact` on answers: a whole answer at once, a streamed one chunk by
//! chunk through [`StreamRedactor`]'s bounded hold-back (a value split across chunks is
//! still caught), with the request's placeholders (a value the client sent comes back as
//! the same `[EMAIL_1]`).

use futures_util::StreamExt;
use loom_core::{
    ChatChunk, ChunkChoice, ChunkStream, Content, ContentPart, Delta, LlmResponse, LoomError, Message,
    ResponsePayload, StreamChunk,
};

use crate::inspect::redact::Redactor;
use crate::inspect::stream_redact::StreamRedactor;

/// Redacts the text of `response` (chat answers; other payloads carry none) with
/// `redactor`'s placeholders.
pub(super) fn redact_response(response: &mut LlmResponse, redactor: Redactor) -> Result<(), LoomError> {
    let empty: ChunkStream = Box::pin(futures_util::stream::empty());
    match std::mem::replace(&mut response.payload, ResponsePayload::Stream(empty)) {
        ResponsePayload::Chat(answer) => {
            let mut typed = answer.into_typed()?;
            let mut redactor = redactor;
            for choice in &mut typed.choices {
                redact_message(&mut choice.message, &mut redactor);
            }
            response.payload = ResponsePayload::Chat(typed.into());
        }
        ResponsePayload::Stream(stream) => {
            response.payload = ResponsePayload::Stream(redact_stream(stream, redactor))
        }
        other => response.payload = other,
    }
    Ok(())
}

fn redact_message(message: &mut Message, redactor: &mut Redactor) {
    match &mut message.content {
        Some(Content::Text(text)) => *text = redactor.redact_all(text),
        Some(Content::Parts(parts)) => {
            for part in parts {
                if let ContentPart::Text(text) = part {
                    text.text = redactor.redact_all(&text.text);
                }
            }
        }
        None => {}
    }
}

/// A stream's redaction: one [`StreamRedactor`] per choice, each starting from the
/// request's placeholders.
struct Redacting {
    inner: ChunkStream,
    request: Redactor,
    choices: Vec<(u32, StreamRedactor)>,
    /// The last chunk seen, whose id and model a closing chunk of held-back text reuses.
    last: Option<ChatChunk>,
}

impl Redacting {
    fn choice(&mut self, index: u32) -> &mut StreamRedactor {
        let position = match self.choices.iter().position(|(choice, _)| *choice == index) {
            Some(position) => position,
            None => {
                self.choices.push((index, StreamRedactor::new(self.request.clone())));
                self.choices.len() - 1
            }
        };
        &mut self.choices[position].1
    }

    fn chunk(&mut self, chunk: StreamChunk) -> Result<StreamChunk, LoomError> {
        let mut chunk = chunk.into_typed()?;
        for choice in &mut chunk.choices {
            let content = choice.delta.content.take();
            let redactor = self.choice(choice.index);
            let mut out = content.as_deref().map(|text| redactor.push(text)).unwrap_or_default();
            if choice.finish_reason.is_some() {
                out.push_str(&redactor.finish());
            }
            if content.is_some() || !out.is_empty() {
                choice.delta.content = Some(out);
            }
        }
        let mut template = chunk.clone();
        template.choices.clear();
        template.usage = None;
        self.last = Some(template);
        Ok(chunk.into())
    }

    /// The text still held back when the stream ends without a finish reason, as one chunk.
    fn tail(&mut self) -> Option<StreamChunk> {
        let mut chunk = self.last.take()?;
        for (index, redactor) in &mut self.choices {
            let text = redactor.finish();
            if !text.is_empty() {
                chunk.choices.push(ChunkChoice {
                    index: *index,
                    delta: Delta { content: Some(text), ..Delta::default() },
                    finish_reason: None,
                    logprobs: None,
                    extra: Default::default(),
                });
            }
        }
        (!chunk.choices.is_empty()).then(|| chunk.into())
    }
}

fn redact_stream(inner: ChunkStream, request: Redactor) -> ChunkStream {
    let state = Redacting { inner, request, choices: Vec::new(), last: None };
    Box::pin(futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.inner.next().await {
            Some(Ok(chunk)) => {
                let chunk = state.chunk(chunk);
                Some((chunk, Some(state)))
            }
            Some(Err(error)) => Some((Err(error), Some(state))),
            None => state.tail().map(|chunk| (Ok(chunk), None)),
        }
    }))
}
