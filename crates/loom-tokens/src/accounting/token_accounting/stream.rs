//! [`MeteredStream`]: a chunk stream that records its usage when it ends, fails, or is
//! dropped.

use super::*;

/// How many bytes of wire chunks a stream keeps unread, in case no usage comes.
pub(super) const MAX_UNREAD_BYTES: usize = 64 * 1024;

/// What a stream has produced so far.
pub(super) struct Meter {
    pub(super) pending: Pending,
    pub(super) accounting: Arc<Accounting>,
    pub(super) usage: Option<Usage>,
    /// Generated text, for counting output tokens if the stream reports no usage.
    pub(super) text: String,
    /// Wire chunks whose text is read only if the stream ends without usage (OpenAI-format
    /// upstreams send it last), or once they pass `MAX_UNREAD_BYTES`.
    pub(super) unread: Vec<WireChunk>,
    pub(super) unread_bytes: usize,
}

impl Meter {
    fn observe(&mut self, chunk: &StreamChunk) {
        match chunk {
            StreamChunk::Typed(chunk) => self.observe_typed(chunk),
            StreamChunk::Wire(wire) => {
                if self.pending.record.time_to_first_byte.is_none() {
                    self.pending.record.time_to_first_byte = Some(self.pending.started.elapsed());
                    self.pending.record.model_served = wire.model();
                }
                if let Some(usage) = wire.usage() {
                    self.usage = Some(usage.clone());
                    self.unread = Vec::new();
                } else if self.usage.is_none() {
                    self.unread_bytes += wire.json().len();
                    self.unread.push(wire.clone());
                    if self.unread_bytes > MAX_UNREAD_BYTES {
                        self.read_unread();
                    }
                }
            }
        }
    }

    fn observe_typed(&mut self, chunk: &ChatChunk) {
        if self.pending.record.time_to_first_byte.is_none() {
            self.pending.record.time_to_first_byte = Some(self.pending.started.elapsed());
            self.pending.record.model_served = Some(chunk.model.clone());
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        if self.usage.is_none() {
            push_chunk_text(chunk, &mut self.text);
        }
    }

    fn read_unread(&mut self) {
        // Decoded only now, and only when no usage came: a chunk that does not decode adds no text.
        for chunk in self.unread.drain(..).filter_map(|wire| wire.decode().ok()) {
            push_chunk_text(&chunk, &mut self.text);
        }
        self.unread_bytes = 0;
    }

    fn finish(mut self, outcome: Outcome, status: u16) {
        if self.usage.is_none() {
            self.read_unread();
        }
        let text = self.usage.is_none().then(|| std::mem::take(&mut self.text));
        self.pending.finish(&self.accounting, self.usage.as_ref(), text, outcome, status);
    }
}

/// Appends the text a chunk generates (content, reasoning, refusal, tool names and
/// arguments) to `text`, for counting output tokens when no usage is reported.
pub(super) fn push_chunk_text(chunk: &ChatChunk, text: &mut String) {
    for choice in &chunk.choices {
        let delta = &choice.delta;
        for piece in [&delta.content, &delta.reasoning_content, &delta.refusal].into_iter().flatten() {
            text.push_str(piece);
        }
        for function in delta.tool_calls.iter().flatten().filter_map(|call| call.function.as_ref()) {
            for piece in [&function.name, &function.arguments].into_iter().flatten() {
                text.push_str(piece);
            }
        }
    }
}

/// A chunk stream that records its usage when it ends, fails, or is dropped.
pub(super) struct MeteredStream {
    pub(super) inner: ChunkStream,
    pub(super) meter: Option<Meter>,
}

impl Stream for MeteredStream {
    type Item = Result<StreamChunk, LoomError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(meter) = self.meter.as_mut() {
                    meter.observe(chunk);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                // The client has seen a 200 and chunks; the error reaches it as an event.
                if let Some(meter) = self.meter.take() {
                    meter.finish(Outcome::Error, 200);
                }
            }
            Poll::Ready(None) => {
                if let Some(meter) = self.meter.take() {
                    meter.finish(Outcome::Ok, 200);
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        if let Some(meter) = self.meter.take() {
            let (outcome, status) = meter.accounting.ended_early(&meter.pending, true);
            meter.finish(outcome, status);
        }
    }
}
