//! Token counts for accounting, from the tokenizer registry.

use loom_core::{ChatRequest, EmbeddingInput, EmbeddingsRequest};

use crate::registry::{TokenCounter, TokenizerRegistry};

/// The counter for `model`; models no rule knows get the registry's fallback, and
/// without one nothing can be counted (0 tokens, not exact).
fn counter(registry: &TokenizerRegistry, model: &str) -> Option<TokenCounter> {
    registry.counter(model, None).ok()
}

/// A rough input size without a tokenizer: 4 bytes of text per token plus OpenAI's
/// per-message framing (3) and reply priming (3). Used when exact counts are not needed
/// up front; provider-reported usage replaces it.
pub(crate) fn rough_chat(chat: &ChatRequest) -> u64 {
    let text: usize = chat
        .messages
        .iter()
        .filter_map(|message| message.content.as_ref())
        .map(|content| match content {
            loom_core::Content::Text(text) => text.len(),
            loom_core::Content::Parts(_) => content.joined_text().len(),
        })
        .sum();
    (text as u64).div_ceil(4) + 3 * chat.messages.len() as u64 + 3
}

/// Input tokens of a chat request, and whether the count is exact.
pub(crate) fn chat(registry: &TokenizerRegistry, chat: &ChatRequest) -> (u64, bool) {
    match counter(registry, &chat.model) {
        Some(counter) => {
            let estimate = counter.count_chat(chat).estimate();
            (estimate.tokens as u64, estimate.exact)
        }
        None => (0, false),
    }
}

/// Tokens of an output text, and whether the count is exact.
pub(crate) fn text(registry: &TokenizerRegistry, model: &str, text: &str) -> (u64, bool) {
    match counter(registry, model) {
        Some(counter) => {
            let estimate = counter.count_text(text);
            (estimate.tokens as u64, estimate.exact)
        }
        None => (0, false),
    }
}

/// Input tokens of an embeddings request.
pub(crate) fn embeddings(registry: &TokenizerRegistry, request: &EmbeddingsRequest) -> (u64, bool) {
    let one = |input: &str| text(registry, &request.model, input);
    match &request.input {
        EmbeddingInput::Text(input) => one(input),
        EmbeddingInput::Texts(inputs) => inputs.iter().fold((0, true), |(sum, exact), input| {
            let (tokens, input_exact) = one(input);
            (sum + tokens, exact && input_exact)
        }),
        EmbeddingInput::Tokens(tokens) => (tokens.len() as u64, true),
        EmbeddingInput::TokenBatches(batches) => (batches.iter().map(|batch| batch.len() as u64).sum(), true),
    }
}
