//! The service of [`ScrubErrorsLayer`](super::ScrubErrorsLayer).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom_core::{LlmRequest, LlmResponse, LoomError, ResponsePayload, Scrubber};
use tower::Service;

/// The service [`ScrubErrorsLayer`](super::ScrubErrorsLayer) produces.
#[derive(Clone, Debug)]
pub struct ScrubErrors<S> {
    inner: S,
    scrubber: Scrubber,
}

impl<S> ScrubErrors<S> {
    /// `inner` with `scrubber`'s secrets removed from its errors.
    pub fn new(inner: S, scrubber: Scrubber) -> Self {
        ScrubErrors { inner, scrubber }
    }
}

impl<S> Service<LlmRequest> for ScrubErrors<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError>,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx).map_err(|error| self.scrubber.scrub_error(error))
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        let call = self.inner.call(request);
        let scrubber = self.scrubber.clone();
        Box::pin(async move {
            match call.await {
                Ok(mut response) => {
                    if let ResponsePayload::Stream(chunks) = response.payload {
                        // Streams stay streams: only their error items are touched.
                        response.payload = ResponsePayload::Stream(scrubber.scrub_chunks(chunks));
                    }
                    Ok(response)
                }
                Err(error) => Err(scrubber.scrub_error(error)),
            }
        })
    }
}
