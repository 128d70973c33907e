//! Token counts for accounting, from the tokenizer registry.

use std::io;

use loom_core::message::ContentPart;
use loom_core::{ChatRequest, Content, EmbeddingInput, EmbeddingsRequest};

use crate::image;
use crate::registry::{TokenCounter, TokenizerRegistry};

/// Tokens a ceiling allows for each message, tool call, tool and the reply priming, on
/// top of their bytes: well above the rules' constants (3 per message or tool call, 7-10
/// per function plus 3 per property, 12 after the tools, a tokenizer's special tokens).
const FRAMING_CEILING: u64 = 16;

/// The counter for `model`; models no rule knows get the registry's fallback, and
/// without one nothing can be counted (0 tokens, not exact).
fn counter(registry: &TokenizerRegistry, model: &str) -> Option<TokenCounter> {
    #[cfg(test)]
    counted_on::note(model);
    registry.counter(model, None).ok()
}

/// Which threads counted for which model, so tests can tell what ran off the worker.
#[cfg(test)]
pub(crate) mod counted_on {
    use std::sync::Mutex;
    use std::thread::{self, ThreadId};

    static THREADS: Mutex<Vec<(String, ThreadId)>> = Mutex::new(Vec::new());

    /// Notes that the current thread counts for `model`.
    pub(crate) fn note(model: &str) {
        let mut threads = THREADS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        threads.push((model.to_owned(), thread::current().id()));
    }

    /// The threads that counted for `model`, in order.
    pub(crate) fn threads(model: &str) -> Vec<ThreadId> {
        let threads = THREADS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        threads.iter().filter(|(counted, _)| counted == model).map(|(_, thread)| *thread).collect()
    }
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

/// A rough input size of any request without a tokenizer (4 bytes of text per token plus
/// framing), for
/// stages that must reserve tokens before the provider reports them.
pub fn rough_input_tokens(payload: &loom_core::RequestPayload) -> u64 {
    match payload {
        loom_core::RequestPayload::Chat(chat) | loom_core::RequestPayload::CountTokens(chat) => {
            rough_chat(chat)
        }
        loom_core::RequestPayload::Embeddings(embeddings) => embeddings_text_bytes(embeddings).div_ceil(4),
    }
}

/// Input tokens of a chat request, and whether the count is exact; never more than
/// its size allows ([`ChatSize::ceiling`]).
pub(crate) fn chat(registry: &TokenizerRegistry, chat: &ChatRequest) -> (u64, bool) {
    chat_of_size(registry, chat, &ChatSize::of(chat))
}

/// [`chat`] for a request whose size is known.
pub(crate) fn chat_of_size(registry: &TokenizerRegistry, chat: &ChatRequest, size: &ChatSize) -> (u64, bool) {
    match counter(registry, &chat.model) {
        Some(counter) => {
            let estimate = counter.count_chat(chat).estimate();
            bounded(estimate.tokens, estimate.exact, size.ceiling())
        }
        None => (0, false),
    }
}

/// `tokens` capped at `ceiling`; a capped count is not exact.
fn bounded(tokens: usize, exact: bool, ceiling: u64) -> (u64, bool) {
    let tokens = u64::try_from(tokens).unwrap_or(u64::MAX);
    if tokens > ceiling { (ceiling, false) } else { (tokens, exact) }
}

/// What a chat request holds that can become tokens.
pub(crate) struct ChatSize {
    /// Bytes of text: roles, names, contents, tool calls, tool definitions as JSON.
    pub(crate) text_bytes: u64,
    /// Messages, tool calls and tools, plus one for the reply priming.
    items: u64,
    images: u64,
}

impl ChatSize {
    /// Measures `chat` without copying it.
    pub(crate) fn of(chat: &ChatRequest) -> ChatSize {
        let mut bytes = ByteCount::default();
        let mut items: u64 = 1; // the reply priming, and the tools' closing constant
        let mut images: u64 = 0;
        for message in &chat.messages {
            items += 1;
            bytes.add(message.role.as_str());
            for text in [&message.name, &message.refusal].into_iter().flatten() {
                bytes.add(text);
            }
            match &message.content {
                None => {}
                Some(Content::Text(text)) => bytes.add(text),
                Some(Content::Parts(parts)) => {
                    for part in parts {
                        match part {
                            ContentPart::Text(part) => bytes.add(&part.text),
                            ContentPart::Thinking(part) => bytes.add(&part.thinking),
                            ContentPart::ImageUrl(_) => images += 1,
                            ContentPart::InputAudio(_)
                            | ContentPart::File(_)
                            | ContentPart::RedactedThinking(_)
                            | ContentPart::Other(_) => {}
                        }
                    }
                }
            }
            for call in message.tool_calls.iter().flatten() {
                items += 1;
                bytes.add(&call.function.name);
                bytes.add(&call.function.arguments);
            }
        }
        for tool in chat.tools.iter().flatten() {
            items += 1;
            // Counted through a writer: the tool's JSON is never held in memory.
            if serde_json::to_writer(&mut bytes, tool).is_err() {
                bytes.0 = u64::MAX;
            }
        }
        ChatSize { text_bytes: bytes.0, items, images }
    }

    /// The most input tokens the request can count as, from its size alone: two tokens
    /// per byte of text (no tokenizer makes more than one per byte; scaled estimates and
    /// the tool rule's per-item constants stay under two), [`FRAMING_CEILING`] per
    /// message, tool call and tool, and each image at the most any provider's formula
    /// gives one ([`image::MAX_TOKENS`]). A request cannot claim more than its bytes are
    /// worth.
    pub(crate) fn ceiling(&self) -> u64 {
        self.text_bytes
            .saturating_mul(2)
            .saturating_add(self.items.saturating_mul(FRAMING_CEILING))
            .saturating_add(self.images.saturating_mul(image::MAX_TOKENS as u64))
    }
}

/// Counts the bytes written to it.
#[derive(Default)]
struct ByteCount(u64);

impl ByteCount {
    fn add(&mut self, text: &str) {
        self.0 = self.0.saturating_add(text.len() as u64);
    }
}

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Tokens of an output text, and whether the count is exact.
pub(crate) fn text(registry: &TokenizerRegistry, model: &str, text: &str) -> (u64, bool) {
    match counter(registry, model) {
        Some(counter) => {
            let estimate = counter.count_text(text);
            (u64::try_from(estimate.tokens).unwrap_or(u64::MAX), estimate.exact)
        }
        None => (0, false),
    }
}

/// Bytes of text an embeddings request tokenizes (token inputs need no tokenizer).
pub(crate) fn embeddings_text_bytes(request: &EmbeddingsRequest) -> u64 {
    match &request.input {
        EmbeddingInput::Text(input) => input.len() as u64,
        EmbeddingInput::Texts(inputs) => {
            inputs.iter().fold(0u64, |sum, input| sum.saturating_add(input.len() as u64))
        }
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => 0,
    }
}

/// Input tokens of an embeddings request; a text input counts at most two tokens per
/// byte plus [`FRAMING_CEILING`], as in [`ChatSize::ceiling`].
pub(crate) fn embeddings(registry: &TokenizerRegistry, request: &EmbeddingsRequest) -> (u64, bool) {
    let one = |input: &str| {
        let (tokens, exact) = text(registry, &request.model, input);
        let ceiling = (input.len() as u64).saturating_mul(2).saturating_add(FRAMING_CEILING);
        if tokens > ceiling { (ceiling, false) } else { (tokens, exact) }
    };
    match &request.input {
        EmbeddingInput::Text(input) => one(input),
        EmbeddingInput::Texts(inputs) => inputs.iter().fold((0, true), |(sum, exact), input| {
            let (tokens, input_exact) = one(input);
            (sum.saturating_add(tokens), exact && input_exact)
        }),
        EmbeddingInput::Tokens(tokens) => (tokens.len() as u64, true),
        EmbeddingInput::TokenBatches(batches) => {
            (batches.iter().fold(0u64, |sum, batch| sum.saturating_add(batch.len() as u64)), true)
        }
    }
}

#[cfg(test)]
mod tests {
    use loom_core::{Message, Role};

    use super::*;
    use crate::{Encoding, TokenizerSpec};

    fn image_part(url: &str) -> ContentPart {
        serde_json::from_value(serde_json::json!({"type": "image_url", "image_url": {"url": url}})).unwrap()
    }

    #[test]
    fn a_chat_estimate_never_exceeds_what_the_request_s_size_allows() {
        let registry = TokenizerRegistry::new().with_fallback(TokenizerSpec::from(Encoding::O200kBase));
        let text = ChatRequest::new("gpt-4o", vec![Message::text(Role::User, "Hello there, how are you?")]);
        let (tokens, exact) = chat(&registry, &text);
        assert_eq!((tokens, exact), (3 + 1 + 7 + 3, true), "real counts are untouched");
        // 2 x ("user" + 25 bytes of text) + 16 x (one message + the priming)
        assert_eq!(ChatSize::of(&text).ceiling(), 2 * (4 + 25) + 16 * 2);

        let mut parts = Message::text(Role::User, "");
        parts.content = Some(Content::Parts(vec![image_part("data:image/png;base64,AAAA"); 3]));
        let images = ChatRequest::new("gemini-2.5-flash", vec![parts]);
        assert_eq!(ChatSize::of(&images).ceiling(), 2 * 4 + 16 * 2 + 3 * image::MAX_TOKENS as u64);
        assert_eq!(bounded(usize::MAX, true, 40), (40, false), "a count past the ceiling is capped");
        assert_eq!(bounded(40, true, 40), (40, true));
    }
}
