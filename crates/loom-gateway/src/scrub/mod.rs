//! `ScrubErrorsLayer`: the pipeline's outermost stage, which removes every configured
//! provider secret from the errors leaving it, streamed ones included. Providers scrub
//! their own errors already; this catches whatever a stage might let through.
//!
//! ```
//! use loom_core::{ErrorKind, LlmRequest, LlmResponse, LoomError, RequestContext, Scrubber};
//! use loom_core::{ChatRequest, Message, Role};
//! use loom_gateway::scrub::ScrubErrorsLayer;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let leaky = tower::service_fn(|_: LlmRequest| async {
//!     Err::<LlmResponse, _>(LoomError::new(ErrorKind::UpstreamError, "bad key sk-live-0123456789"))
//! });
//! let scrubbed = ScrubErrorsLayer::new(Scrubber::new(["sk-live-0123456789"])).layer(leaky);
//! let request = LlmRequest::chat(RequestContext::new("r"), ChatRequest::new("m", vec![Message::text(Role::User, "hi")]));
//! let error = scrubbed.oneshot(request).await.unwrap_err();
//! assert_eq!(error.message, "bad key [redacted]");
//! # }
//! ```

mod layer;
mod service;

pub use layer::ScrubErrorsLayer;
pub use service::ScrubErrors;

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use loom_core::{ChatRequest, ErrorKind, Message, RequestContext, Role, StreamChunk};
    use loom_core::{LlmRequest, LlmResponse, LoomError, ResponsePayload};
    use loom_providers::ProviderConfig;
    use loom_providers::{ProviderType, Secret};
    use tower::Layer;
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
            Ok::<_, LoomError>(LlmResponse::new("p", payload))
        });
        let response = layer().layer(inner).oneshot(request()).await.unwrap();
        let ResponsePayload::Stream(mut chunks) = response.payload else { panic!("not a stream") };
        let error = chunks.next().await.unwrap().unwrap_err();
        assert_eq!(error.message, "echo [redacted] and [redacted]");
        assert_eq!((error.param, error.code), (None, None));
        assert!(chunks.next().await.is_none());
    }
}
