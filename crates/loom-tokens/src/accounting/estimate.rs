//! Token counts for accounting, from the crate's counters.

use loom_core::{ChatRequest, EmbeddingInput, EmbeddingsRequest};

/// Input tokens of a chat request, and whether the count is exact.
pub(crate) fn chat(chat: &ChatRequest) -> (u64, bool) {
    let estimate = crate::count_chat(&chat.model, chat);
    (estimate.tokens as u64, estimate.exact)
}

/// Tokens of an output text, and whether the count is exact.
pub(crate) fn text(model: &str, text: &str) -> (u64, bool) {
    let estimate = crate::count_text(model, text);
    (estimate.tokens as u64, estimate.exact)
}

/// Input tokens of an embeddings request.
pub(crate) fn embeddings(request: &EmbeddingsRequest) -> (u64, bool) {
    match &request.input {
        EmbeddingInput::Text(one) => text(&request.model, one),
        EmbeddingInput::Texts(many) => many.iter().fold((0, true), |(sum, exact), one| {
            let (tokens, one_exact) = text(&request.model, one);
            (sum + tokens, exact && one_exact)
        }),
        EmbeddingInput::Tokens(tokens) => (tokens.len() as u64, true),
        EmbeddingInput::TokenBatches(batches) => (batches.iter().map(|batch| batch.len() as u64).sum(), true),
    }
}
