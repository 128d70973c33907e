//! `ScrubErrorsLayer`: the pipeline's outermost stage, which removes every configured
//! provider secret from the errors leaving it, streamed ones included. Providers scrub
//! their own errors already; this catches whatever a stage might let through.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom_core::{LlmRequest, LlmResponse, LoomError, ResponsePayload, Scrubber};
use loom_providers::ProviderConfig;
use tower::{Layer, Service};

/// Scrubs errors (returned, and inside chunk streams) of the secrets of every provider.
#[derive(Clone, Debug)]
pub struct ScrubErrorsLayer {
    scrubber: Scrubber,
}

impl ScrubErrorsLayer {
    /// A layer removing `scrubber`'s secrets.
    pub fn new(scrubber: Scrubber) -> Self {
        ScrubErrorsLayer { scrubber }
    }

    /// A layer removing every secret of these providers' configs.
    pub fn for_providers(providers: &[ProviderConfig]) -> Self {
        let secrets = providers.iter().flat_map(ProviderConfig::secrets);
        ScrubErrorsLayer::new(Scrubber::new(secrets.map(|secret| secret.expose())))
    }
}

impl<S> Layer<S> for ScrubErrorsLayer {
    type Service = ScrubErrors<S>;

    fn layer(&self, inner: S) -> ScrubErrors<S> {
        ScrubErrors { inner, scrubber: self.scrubber.clone() }
    }
}

/// The service [`ScrubErrorsLayer`] produces.
#[derive(Clone, Debug)]
pub struct ScrubErrors<S> {
    inner: S,
    scrubber: Scrubber,
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use loom_core::{ChatRequest, ErrorKind, Message, RequestContext, Role, StreamChunk};
    use loom_providers::{ProviderType, Secret};
    use tower::ServiceExt;

    const KEY: &str = "sk-config-key-0123456789";
    const HEADER: &str = "header-secret-value-42";

    fn layer() -> ScrubErrorsLayer {
        let mut config = ProviderConfig::new("p", ProviderType::Openai);
        config.api_key = Some(Secret::from(KEY));
        config.headers.insert("x-custom-auth".to_owned(), Secret::from(HEADER));
        ScrubErrorsLayer::for_providers(&[config])
    }

    fn leaky() -> LoomError {
        let mut error = LoomError::new(ErrorKind::UpstreamError, format!("echo {KEY} and {HEADER}"));
        error.param = Some(HEADER.to_owned());
        error.code = Some(format!("Bearer {KEY}"));
        error
    }

    fn request() -> LlmRequest {
        LlmRequest::chat(
            RequestContext::new("r"),
            ChatRequest::new("m", vec![Message::text(Role::User, "hi")]),
        )
    }

    #[tokio::test]
    async fn returned_errors_lose_every_configured_secret() {
        let inner = tower::service_fn(|_: LlmRequest| async { Err::<LlmResponse, _>(leaky()) });
        let error = layer().layer(inner).oneshot(request()).await.unwrap_err();
        assert_eq!(error.message, "echo [redacted] and [redacted]");
        assert_eq!((error.param, error.code), (None, None));
    }

    #[tokio::test]
    async fn errors_inside_streams_lose_them_too() {
        let inner = tower::service_fn(|_: LlmRequest| async {
            let chunks: Vec<Result<StreamChunk, LoomError>> = vec![Err(leaky())];
            let payload = ResponsePayload::Stream(Box::pin(futures_util::stream::iter(chunks)));
            Ok::<_, LoomError>(LlmResponse { provider: "p".into(), payload })
        });
        let response = layer().layer(inner).oneshot(request()).await.unwrap();
        let ResponsePayload::Stream(mut chunks) = response.payload else { panic!("not a stream") };
        let error = chunks.next().await.unwrap().unwrap_err();
        assert_eq!(error.message, "echo [redacted] and [redacted]");
        assert_eq!((error.param, error.code), (None, None));
        assert!(chunks.next().await.is_none());
    }
}
