//! The injection check's embedding stage on a request (feature `embed`): when the default
//! stages' score of the highest-scoring text falls in the band the classifier decides
//! ([`SemanticModel`](crate::inspect::semantic::SemanticModel)), that text is embedded on the [`EmbedPool`] (at most `max_windows`
//! windows, under `timeout`) and the classifier decides. A saturated pool, a timeout or
//! an error decides by `on_error`. The embedding of a one-window text is kept in the
//! request's extensions as a [`PromptEmbedding`], for the stages below.

use std::sync::Arc;

use loom_core::LlmRequest;
use loom_tokens::embed::{EmbedPool, PromptEmbedding};
use tracing::debug;

use super::config::OnEmbeddingError;
use super::policy::{Finding, INJECTION, Policy};
use super::text::inspected_texts;
use crate::inspect::semantic::SemanticModel;
use crate::observer::GuardObserver;

/// Runs the stage on `request` with `model` when `policy` asks for it and the score is in
/// the band.
pub(super) async fn decide(
    observer: &dyn GuardObserver,
    pool: &EmbedPool,
    model: &SemanticModel,
    policy: &Policy,
    request: &mut LlmRequest,
    findings: &mut [Finding],
) {
    let Some(stage) = policy.embedding_stage() else { return };
    let Some(finding) = findings.iter_mut().find(|finding| &*finding.check == INJECTION) else { return };
    let Some(injection) = finding.injection.as_mut() else { return };
    if !model.in_band(injection.score) {
        return;
    }
    let Some(text) = injection
        .top
        .and_then(|top| inspected_texts(&request.payload).get(top).map(|text| text.text.to_string()))
    else {
        return;
    };
    let (embedded, outcome) = match pool.try_embed_windows(text.clone(), stage.max_windows) {
        Ok(pending) => match tokio::time::timeout(stage.timeout, pending).await {
            Ok(Ok(windows)) => (Some(windows), "ok"),
            Ok(Err(error)) => {
                debug!(%error, "embedding stage: no embedding");
                (None, "error")
            }
            Err(_) => (None, "timeout"),
        },
        Err(_) => (None, "saturated"),
    };
    observer.embedding(outcome);
    let Some(windows) = embedded else {
        if stage.on_error == OnEmbeddingError::Block {
            finding.fired = true;
        }
        return;
    };
    let verdict = model.decide(injection.score, windows.iter().map(|window| window.as_slice()));
    injection.embedding = Some(verdict.probability);
    finding.fired = verdict.injection;
    if windows.len() == 1
        && let Some(only) = windows.into_iter().next()
    {
        request.context.extensions.insert(PromptEmbedding::new(&text, Arc::new(only)));
    }
}
