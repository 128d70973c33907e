//! Picks the provider for a request: model eligibility, model mapping, priority order.
//!
//! A deliberately small stand-in until `loom-routing` brings the full strategies,
//! failover and health: the first eligible provider in priority order answers.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use loom_core::{LlmRequest, LlmResponse, LoomError, RequestPayload};
use loom_providers::{Provider, ProviderConfig};
use tower::Service;

/// A provider with the models it serves.
struct Candidate {
    provider: Provider,
    /// Empty: any model.
    models: Vec<String>,
}

/// Sends each request to the first eligible provider in priority order.
#[derive(Clone)]
pub struct PriorityDispatch {
    inner: Arc<DispatchInner>,
}

struct DispatchInner {
    candidates: Vec<Candidate>,
    model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    served_models: Vec<String>,
}

impl PriorityDispatch {
    /// Dispatches over `providers`, given in priority order (first = preferred).
    pub fn new(
        providers: Vec<(Provider, &ProviderConfig)>,
        model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Self {
        let candidates: Vec<Candidate> = providers
            .into_iter()
            .map(|(provider, config)| Candidate { provider, models: config.models.clone() })
            .collect();
        let mut served_models: Vec<String> = candidates
            .iter()
            .flat_map(|candidate| candidate.models.iter().cloned())
            .chain(model_mapping.keys().cloned())
            .collect();
        served_models.sort();
        served_models.dedup();
        PriorityDispatch { inner: Arc::new(DispatchInner { candidates, model_mapping, served_models }) }
    }

    /// Models named in config, for `/v1/models` and 404 messages.
    pub fn served_models(&self) -> &[String] {
        &self.inner.served_models
    }
}

impl DispatchInner {
    /// The provider to use and the model name to send it.
    fn select(&self, model: &str) -> Option<(Provider, String)> {
        let mapping = self.model_mapping.get(model);
        self.candidates.iter().find_map(|candidate| {
            let name = candidate.provider.name();
            if let Some(mapped) = mapping.and_then(|mapping| mapping.get(name)) {
                return Some((candidate.provider.clone(), mapped.clone()));
            }
            let serves = candidate.models.is_empty() || candidate.models.iter().any(|served| served == model);
            serves.then(|| (candidate.provider.clone(), model.to_owned()))
        })
    }
}

impl Service<LlmRequest> for PriorityDispatch {
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: LlmRequest) -> Self::Future {
        let Some((mut provider, upstream_model)) = self.inner.select(request.payload.model()) else {
            let error = LoomError::model_not_found(request.payload.model(), &self.inner.served_models);
            return Box::pin(std::future::ready(Err(error)));
        };
        match &mut request.payload {
            RequestPayload::Chat(chat) => chat.model = upstream_model,
            RequestPayload::Embeddings(embeddings) => embeddings.model = upstream_model,
        }
        provider.call(request)
    }
}
