//! `CountTokensLayer`: answers token-count requests (`/v1/messages/count_tokens`) with the
//! provider's count, or Loom's own when the provider cannot count.
//!
//! Token counts are their own small service, not a special case of the accounting layer:
//! counting generates nothing, so it is neither recorded nor billed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use loom_core::{LlmRequest, LlmResponse, LoomError, ResponsePayload};
use tower::{Layer, Service};

use super::estimate::{self, ChatSize};
use super::offload;
use crate::registry::TokenizerRegistry;

/// Fills in a token count the inner service (a router or provider) left uncounted,
/// with Loom's tokenizers for the model the provider would have used.
#[derive(Clone)]
pub struct CountTokensLayer {
    tokenizers: Arc<TokenizerRegistry>,
}

impl CountTokensLayer {
    /// Counts with `tokenizers` when the provider does not.
    pub fn new(tokenizers: Arc<TokenizerRegistry>) -> Self {
        CountTokensLayer { tokenizers }
    }
}

impl<S> Layer<S> for CountTokensLayer {
    type Service = CountTokens<S>;

    fn layer(&self, inner: S) -> CountTokens<S> {
        CountTokens { inner, tokenizers: self.tokenizers.clone() }
    }
}

/// The service [`CountTokensLayer`] produces.
#[derive(Clone)]
pub struct CountTokens<S> {
    inner: S,
    tokenizers: Arc<TokenizerRegistry>,
}

impl<S> Service<LlmRequest> for CountTokens<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = LoomError>,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        let call = self.inner.call(request);
        let tokenizers = self.tokenizers.clone();
        Box::pin(async move {
            let mut response = call.await?;
            let ResponsePayload::TokenCount(count) = &mut response.payload else { return Ok(response) };
            if count.input_tokens.is_some() {
                return Ok(response);
            }
            let size = ChatSize::of(&count.request);
            if !offload::is_large(size.text_bytes) {
                count.input_tokens = Some(estimate::chat_of_size(&tokenizers, &count.request, &size).0);
                return Ok(response);
            }
            // A large request is counted off the front-door worker, which serves other connections.
            offload::off_worker(move || {
                if let ResponsePayload::TokenCount(count) = &mut response.payload {
                    count.input_tokens = Some(estimate::chat_of_size(&tokenizers, &count.request, &size).0);
                }
                response
            })
            .await
            .ok_or_else(|| LoomError::internal("counting the request's tokens failed"))
        })
    }
}

#[cfg(test)]
mod tests {
    use loom_core::{ChatRequest, Message, RequestContext, Role, TokenCount};
    use tower::ServiceExt;

    use super::*;
    use crate::accounting::estimate::counted_on;
    use crate::{Encoding, TokenizerSpec};

    fn counter() -> CountTokensLayer {
        let registry = TokenizerRegistry::new().with_fallback(TokenizerSpec::from(Encoding::O200kBase));
        CountTokensLayer::new(Arc::new(registry))
    }

    /// A provider that answers every count with `count` (`None`: it cannot count).
    fn provider(
        count: Option<u64>,
    ) -> impl Service<LlmRequest, Response = LlmResponse, Error = LoomError, Future: Send + 'static> {
        tower::service_fn(move |request: LlmRequest| {
            let loom_core::RequestPayload::CountTokens(chat) = request.payload else {
                panic!("expected a count")
            };
            let mut answer = TokenCount::uncounted(chat);
            answer.input_tokens = count;
            std::future::ready(Ok(LlmResponse::new(Arc::from("p"), ResponsePayload::TokenCount(answer))))
        })
    }

    async fn count(provider_count: Option<u64>, chat: ChatRequest) -> Option<u64> {
        let request = LlmRequest::count_tokens(RequestContext::new("r"), chat);
        let response = counter().layer(provider(provider_count)).oneshot(request).await.unwrap();
        let ResponsePayload::TokenCount(count) = response.payload else { panic!("expected a count") };
        count.input_tokens
    }

    #[tokio::test]
    async fn the_provider_s_count_wins_and_loom_counts_when_it_has_none() {
        let chat = ChatRequest::new("any-model", vec![Message::text(Role::User, "Hello!")]);
        assert_eq!(count(Some(42), chat.clone()).await, Some(42));
        // o200k: 3 per message + role + content (2) + 3 to prime the reply.
        assert_eq!(count(None, chat).await, Some(3 + 1 + 2 + 3));
    }

    #[tokio::test]
    async fn a_large_token_count_is_counted_off_the_polling_thread() {
        let here = std::thread::current().id();
        let text = "hello ".repeat(4 * 1024 * 1024 / 6);
        let chat = ChatRequest::new("offload-large-count", vec![Message::text(Role::User, text)]);
        let registry = TokenizerRegistry::new().with_fallback(TokenizerSpec::from(Encoding::O200kBase));
        let exact =
            registry.counter("offload-large-count", None).unwrap().count_chat(&chat).estimate().tokens;
        assert_eq!(count(None, chat).await, Some(exact as u64));
        let threads = counted_on::threads("offload-large-count");
        assert!(threads.len() == 1 && threads[0] != here, "{threads:?}");
    }
}
