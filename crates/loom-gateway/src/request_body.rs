//! Reading a client's request body within its limits: size (`server.max_body_bytes`),
//! time (`server.body_timeout` and the request's deadline) and the bytes all requests may
//! hold at once (`server.max_buffered_body_bytes`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Request;
use http::header::CONTENT_LENGTH;
use http_body::Body;
use http_body_util::BodyExt;
use loom_core::{ErrorKind, LoomError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The budget is counted in units of this many bytes, so that it fits a semaphore.
const BUDGET_UNIT: u64 = 1024;

/// The limits every request body is read within.
pub struct BodyLimits {
    /// Largest body, in bytes.
    pub max_bytes: u64,
    /// Time the whole body may take to arrive.
    pub timeout: Duration,
    /// Bytes (in [`BUDGET_UNIT`]s) that all bodies being read or parsed may hold at once.
    budget: Arc<Semaphore>,
    budget_units: u64,
}

impl BodyLimits {
    /// Limits of `max_bytes` per body, `timeout` per body, `max_buffered` bytes in all.
    pub fn new(max_bytes: u64, timeout: Duration, max_buffered: u64) -> Self {
        let budget_units = max_buffered.div_ceil(BUDGET_UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        let permits = usize::try_from(budget_units).unwrap_or(Semaphore::MAX_PERMITS);
        BodyLimits { max_bytes, timeout, budget: Arc::new(Semaphore::new(permits)), budget_units }
    }
}

/// A body read whole, holding its share of the byte budget until dropped.
pub struct ReadBody {
    /// The bytes.
    pub bytes: Bytes,
    _budget: Reservation,
}

/// Reads the whole body of `request`, failing with 413 past the size limit, 408 when it
/// arrives too slowly (past the body timeout or `deadline`, whichever comes first), and
/// 503 when all requests together already hold the buffered-bytes budget.
pub async fn read_body<B>(
    request: Request<B>,
    limits: &BodyLimits,
    deadline: Instant,
) -> Result<ReadBody, LoomError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_bytes) {
        return Err(too_large(limits.max_bytes));
    }
    // Bytes are reserved as they arrive, not as declared: a client that declares a
    // large body and sends nothing holds no budget.
    let mut reservation = Reservation { budget: limits.budget.clone(), held: None, units: 0 };
    let body_deadline = Instant::now().checked_add(limits.timeout).map_or(deadline, |end| end.min(deadline));
    let mut body = std::pin::pin!(request.into_body());
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut total: u64 = 0;
    loop {
        let frame = match tokio::time::timeout_at(body_deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                return Err(LoomError::invalid_request(
                    format!("The request body could not be read: {error}"),
                    None,
                ));
            }
            Err(_) => return Err(too_slow(limits.timeout)),
        };
        let Ok(data) = frame.into_data() else { continue };
        total = total.saturating_add(data.len() as u64);
        if total > limits.max_bytes {
            return Err(too_large(limits.max_bytes));
        }
        reservation.grow_to(total, limits)?;
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut joined = BytesMut::with_capacity(head.len() + data.len());
                joined.extend_from_slice(head);
                joined.extend_from_slice(&data);
                rest = Some(joined);
            }
            (Some(_), Some(joined)) => joined.extend_from_slice(&data),
        }
    }
    let bytes = match rest {
        Some(joined) => joined.freeze(),
        None => first.unwrap_or_default(),
    };
    Ok(ReadBody { bytes, _budget: reservation })
}

/// This body's share of the buffered-bytes budget.
struct Reservation {
    budget: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    units: u64,
}

impl Reservation {
    /// Holds enough of the budget for `bytes`, or fails with 503 when it is spent.
    fn grow_to(&mut self, bytes: u64, limits: &BodyLimits) -> Result<(), LoomError> {
        let wanted = bytes.div_ceil(BUDGET_UNIT).min(limits.budget_units);
        if wanted <= self.units {
            return Ok(());
        }
        let more = u32::try_from(wanted - self.units).map_err(|_| busy())?;
        let permit = self.budget.clone().try_acquire_many_owned(more).map_err(|_| busy())?;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        self.units = wanted;
        Ok(())
    }
}

fn too_large(limit: u64) -> LoomError {
    LoomError::new(ErrorKind::PayloadTooLarge, format!("The request body exceeds the limit of {limit} bytes"))
        .with_code("request_too_large")
}

fn too_slow(limit: Duration) -> LoomError {
    LoomError::new(
        ErrorKind::RequestTimeout,
        format!("The request body did not arrive in time (server.body_timeout is {limit:?})"),
    )
    .with_code("body_timeout")
}

fn busy() -> LoomError {
    LoomError::new(
        ErrorKind::Overloaded,
        "The gateway is holding too many request bytes (server.max_buffered_body_bytes); retry shortly",
    )
    .with_code("server_busy")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use http_body_util::{Full, StreamBody};

    fn request(body: &'static str) -> Request<Full<Bytes>> {
        Request::builder()
            .header(CONTENT_LENGTH, body.len())
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn reads_a_body_and_holds_its_budget_until_dropped() {
        let limits = BodyLimits::new(100, Duration::from_secs(5), 2048);
        let first = read_body(request("hello"), &limits, far()).await.unwrap();
        assert_eq!(first.bytes, "hello");
        assert_eq!(limits.budget.available_permits(), 1);
        let second = read_body(request("world"), &limits, far()).await.unwrap();
        assert_eq!(limits.budget.available_permits(), 0);
        let refused = read_body(request("again"), &limits, far()).await.err().unwrap();
        assert_eq!((refused.http_status(), refused.code.as_deref()), (503, Some("server_busy")));
        drop((first, second));
        assert_eq!(limits.budget.available_permits(), 2);
    }

    #[tokio::test]
    async fn chunks_are_joined_and_the_size_limit_holds_without_a_length() {
        let limits = BodyLimits::new(8, Duration::from_secs(5), 1 << 20);
        let chunks = |parts: Vec<&'static str>| {
            let frames =
                parts.into_iter().map(|part| Ok::<_, std::io::Error>(Frame::data(Bytes::from(part))));
            Request::new(StreamBody::new(futures_util::stream::iter(frames)))
        };
        let joined = read_body(chunks(vec!["ab", "cd", "ef"]), &limits, far()).await.unwrap();
        assert_eq!(joined.bytes, "abcdef");
        let error = read_body(chunks(vec!["abcde", "fghij"]), &limits, far()).await.err().unwrap();
        assert_eq!(error.http_status(), 413);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_gets_408() {
        let limits = BodyLimits::new(100, Duration::from_secs(5), 1 << 20);
        let stalled = futures_util::stream::pending::<Result<Frame<Bytes>, std::io::Error>>();
        let request = Request::builder().header(CONTENT_LENGTH, 10).body(StreamBody::new(stalled)).unwrap();
        let error = read_body(request, &limits, far()).await.err().unwrap();
        assert_eq!((error.http_status(), error.code.as_deref()), (408, Some("body_timeout")));
    }
}
