//! Server-sent-events response body with the spec's `streaming.flush_interval`.
//!
//! Events that are ready together go out in one frame. (Yielding to the scheduler to
//! let more events arrive before writing was measured with loom-bench: it cost more
//! CPU than the saved writes, so a frame goes out as soon as the stream pauses.)
//! With a non-zero interval, frames are sent at most once per interval and nothing
//! waits longer than that; the first event always goes out at once.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Largest batch of coalesced events sent as one frame.
const MAX_FRAME_BYTES: usize = 64 * 1024;

/// One event for an [`SseBody`].
#[derive(Debug, Clone, PartialEq)]
pub enum SseEvent {
    /// An encoded event, framing included.
    Encoded(Bytes),
    /// The payload of a `data:` event, framed where it is written (no copy of its own).
    Data(Bytes),
}

impl SseEvent {
    /// Appends the encoded event to `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        match self {
            SseEvent::Encoded(event) => out.extend_from_slice(event),
            SseEvent::Data(data) => {
                // One reservation: three growing appends cost more than the copy.
                out.reserve(b"data: ".len() + data.len() + b"\n\n".len());
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(data);
                out.extend_from_slice(b"\n\n");
            }
        }
    }
}

/// SSE events, the last one included.
pub type EventStream = Pin<Box<dyn Stream<Item = SseEvent> + Send>>;

/// An HTTP body that writes SSE events as they arrive.
pub struct SseBody {
    events: Option<EventStream>,
    pending: BytesMut,
    flush_interval: Duration,
    next_flush: Option<Pin<Box<Sleep>>>,
}

impl SseBody {
    /// A body over `events`, flushing at most once per `flush_interval` (zero: always).
    pub fn new(events: EventStream, flush_interval: Duration) -> Self {
        SseBody { events: Some(events), pending: BytesMut::new(), flush_interval, next_flush: None }
    }

    fn take_frame(&mut self) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if !self.flush_interval.is_zero() {
            self.next_flush = Some(Box::pin(tokio::time::sleep_until(Instant::now() + self.flush_interval)));
        }
        Poll::Ready(Some(Ok(Frame::data(self.pending.split().freeze()))))
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        while let Some(events) = this.events.as_mut() {
            if this.pending.len() >= MAX_FRAME_BYTES {
                break;
            }
            match events.as_mut().poll_next(cx) {
                Poll::Ready(Some(event)) => event.write_to(&mut this.pending),
                Poll::Ready(None) => this.events = None,
                Poll::Pending => break,
            }
        }
        if this.pending.is_empty() {
            return if this.events.is_none() { Poll::Ready(None) } else { Poll::Pending };
        }
        let stream_ended = this.events.is_none();
        let waiting = match this.next_flush.as_mut() {
            Some(timer) => !stream_ended && timer.as_mut().poll(cx).is_pending(),
            None => false,
        };
        if waiting { Poll::Pending } else { this.take_frame() }
    }

    fn is_end_stream(&self) -> bool {
        self.events.is_none() && self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn events(items: &'static [&'static str]) -> EventStream {
        Box::pin(futures_util::stream::iter(
            items.iter().map(|item| SseEvent::Encoded(Bytes::from_static(item.as_bytes()))),
        ))
    }

    #[tokio::test]
    async fn ready_events_are_coalesced_and_all_delivered() {
        let mut body = SseBody::new(events(&["data: a\n\n", "data: b\n\n"]), Duration::ZERO);
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame, Bytes::from_static(b"data: a\n\ndata: b\n\n"));
        assert!(body.frame().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn flush_interval_spaces_frames_but_sends_the_first_at_once() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SseEvent>();
        let stream =
            futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let mut body = SseBody::new(Box::pin(stream), Duration::from_millis(50));
        tx.send(SseEvent::Encoded(Bytes::from_static(b"1"))).unwrap();
        let start = Instant::now();
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "1");
        assert_eq!(start.elapsed(), Duration::ZERO);
        tx.send(SseEvent::Data(Bytes::from_static(b"2"))).unwrap();
        tx.send(SseEvent::Encoded(Bytes::from_static(b"3"))).unwrap();
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "data: 2\n\n3");
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        drop(tx);
        assert!(body.frame().await.is_none());
    }
}
