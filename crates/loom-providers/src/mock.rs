//! The built-in `mock` provider: deterministic answers with no network, for demos and tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use futures_util::StreamExt;
use loom_core::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Content, Delta, Embedding, EmbeddingInput,
    EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage, FinishReason, LlmRequest,
    LlmResponse, LoomError, Message, RequestPayload, ResponsePayload, Role, StreamChunk, TokenCount, Usage,
};
use serde_json::Map;
use tower::Service;

use crate::config::MockSettings;

/// Dimensions of mock embeddings.
const MOCK_EMBEDDING_DIMENSIONS: usize = 8;

/// A provider that answers from the request itself, with configurable latency.
#[derive(Clone)]
pub struct MockProvider {
    inner: Arc<MockInner>,
}

struct MockInner {
    name: Arc<str>,
    settings: MockSettings,
}

impl MockProvider {
    /// A mock named `name` answering as `settings` say.
    pub fn new(name: &str, settings: MockSettings) -> Self {
        MockProvider { inner: Arc::new(MockInner { name: Arc::from(name), settings }) }
    }

    /// The provider's configured name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

/// The reply text: the configured one, or an echo of the last user message.
fn reply_text(settings: &MockSettings, chat: &ChatRequest) -> String {
    if let Some(reply) = &settings.reply {
        return reply.clone();
    }
    let last_user = chat
        .messages
        .iter()
        .rev()
        .find(|message| message.role == Role::User)
        .and_then(|message| message.content.as_ref())
        .map(Content::joined_text)
        .unwrap_or_default();
    format!("Hello from Loom's mock provider! You said: {last_user}")
}

/// Whitespace-separated words: the mock's notion of a token.
fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn prompt_tokens(chat: &ChatRequest) -> u64 {
    chat.messages
        .iter()
        .filter_map(|message| message.content.as_ref())
        .map(|content| word_count(&content.joined_text()))
        .sum()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

fn completion_id(request: &LlmRequest) -> String {
    format!("chatcmpl-mock-{}", request.context.request_id)
}

impl MockInner {
    fn chat(&self, id: String, chat: &ChatRequest) -> ChatResponse {
        let text = reply_text(&self.settings, chat);
        let usage = Usage::new(prompt_tokens(chat), word_count(&text));
        ChatResponse {
            id,
            object: "chat.completion".to_owned(),
            created: unix_now(),
            model: chat.model.clone(),
            choices: vec![Choice {
                index: 0,
                message: Message::text(Role::Assistant, text),
                finish_reason: Some(FinishReason::Stop),
                logprobs: None,
                extra: Map::new(),
            }],
            usage: Some(usage),
            system_fingerprint: None,
            extra: Map::new(),
        }
    }

    fn chunks(&self, id: String, chat: &ChatRequest) -> Vec<ChatChunk> {
        let text = reply_text(&self.settings, chat);
        let created = unix_now();
        let chunk = |delta: Delta, finish_reason: Option<FinishReason>| ChatChunk {
            id: id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created,
            model: chat.model.clone(),
            choices: vec![ChunkChoice { index: 0, delta, finish_reason, logprobs: None, extra: Map::new() }],
            usage: None,
            start_usage: None,
            system_fingerprint: None,
            extra: Map::new(),
        };
        let mut chunks = vec![chunk(
            Delta { role: Some(Role::Assistant), content: Some(String::new()), ..Delta::default() },
            None,
        )];
        for (index, word) in text.split(' ').enumerate() {
            let piece = if index == 0 { word.to_owned() } else { format!(" {word}") };
            chunks.push(chunk(Delta { content: Some(piece), ..Delta::default() }, None));
        }
        chunks.push(chunk(Delta::default(), Some(FinishReason::Stop)));
        if chat.wants_stream_usage() {
            let mut last = chunk(Delta::default(), None);
            last.choices.clear();
            last.usage = Some(Usage::new(prompt_tokens(chat), word_count(&text)));
            chunks.push(last);
        }
        chunks
    }

    fn embeddings(&self, request: &EmbeddingsRequest) -> EmbeddingsResponse {
        let inputs: Vec<String> = match &request.input {
            EmbeddingInput::Text(text) => vec![text.clone()],
            EmbeddingInput::Texts(texts) => texts.clone(),
            EmbeddingInput::Tokens(tokens) => vec![format!("{tokens:?}")],
            EmbeddingInput::TokenBatches(batches) => {
                batches.iter().map(|tokens| format!("{tokens:?}")).collect()
            }
        };
        let base64 = request.encoding_format.as_deref() == Some("base64");
        let data = inputs
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let vector = mock_vector(text);
                let embedding = if base64 {
                    let bytes: Vec<u8> =
                        vector.iter().flat_map(|value| (*value as f32).to_le_bytes()).collect();
                    EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    EmbeddingVector::Float(vector)
                };
                Embedding { object: "embedding".to_owned(), index: index as u32, embedding }
            })
            .collect();
        let tokens: u64 = inputs.iter().map(|text| word_count(text)).sum();
        EmbeddingsResponse {
            object: "list".to_owned(),
            data,
            model: request.model.clone(),
            usage: Some(EmbeddingsUsage { prompt_tokens: tokens, total_tokens: tokens }),
            extra: Map::new(),
        }
    }
}

/// A deterministic unit vector derived from the text's bytes (FNV-1a seeded per dimension).
fn mock_vector(text: &str) -> Vec<f64> {
    let raw: Vec<f64> = (0..MOCK_EMBEDDING_DIMENSIONS as u64)
        .map(|dimension| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ dimension;
            for byte in text.bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            (hash % 2000) as f64 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|value| value * value).sum::<f64>().sqrt().max(f64::EPSILON);
    raw.iter().map(|value| ((value / norm) * 1e6).round() / 1e6).collect()
}

impl Service<LlmRequest> for MockProvider {
    type Response = LlmResponse;
    type Error = LoomError;
    type Future = Pin<Box<dyn Future<Output = Result<LlmResponse, LoomError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LoomError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: LlmRequest) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let latency = inner.settings.latency;
            if !latency.is_zero() {
                // The simulated upstream's time, not Loom's.
                tokio::time::sleep(latency).await;
                request.context.upstream_time.add(latency);
            }
            let id = completion_id(&request);
            let payload = match &request.payload {
                RequestPayload::Chat(chat) if chat.is_stream() => {
                    let chunks = inner.chunks(id, chat);
                    let delay = inner.settings.chunk_delay;
                    let stream = futures_util::stream::iter(chunks.into_iter().enumerate()).then(
                        move |(index, chunk)| async move {
                            if index > 0 && !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            Ok(StreamChunk::from(chunk))
                        },
                    );
                    ResponsePayload::Stream(Box::pin(stream))
                }
                RequestPayload::Chat(chat) => ResponsePayload::Chat(inner.chat(id, chat).into()),
                RequestPayload::Embeddings(embeddings) => {
                    ResponsePayload::Embeddings(inner.embeddings(embeddings))
                }
                RequestPayload::CountTokens(chat) => {
                    ResponsePayload::TokenCount(TokenCount::uncounted(chat.clone()))
                }
            };
            Ok(LlmResponse::new(inner.name.clone(), payload))
        })
    }
}
