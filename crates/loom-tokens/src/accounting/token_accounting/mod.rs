//! `TokenAccountingLayer`: estimates each request's input tokens for later stages,
//! asks streaming upstreams for usage, and records a [`UsageRecord`] for every
//! request — whole, streamed, failed, or cut off by a client that went away.
//!
//! Texts of at least [`BLOCKING_COUNT_BYTES`](super::BLOCKING_COUNT_BYTES) are tokenized on tokio's blocking pool
//! (inputs, token counts, unreported output), never on the thread polling the request.
//!
//! Over any `Service<LlmRequest>` (needs the `accounting` feature):
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use loom_core::{
//!     ChatRequest, ChatResponse, LlmRequest, LlmResponse, LoomError, Message, RequestContext, ResponsePayload,
//!     Role,
//! };
//! use loom_tokens::TokenizerRegistry;
//! use loom_tokens::accounting::{
//!     DEFAULT_MAX_AGGREGATE_BYTES, Dimension, PriceTable, TokenAccountingLayer, UsageRecorder,
//! };
//! use tower::{Layer, ServiceExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Usage kept in memory (no ledger), within the default memory budget.
//! let recorder =
//!     Arc::new(UsageRecorder::new(None, Duration::from_secs(1), DEFAULT_MAX_AGGREGATE_BYTES, Vec::new())?);
//! let tokenizers = Arc::new(TokenizerRegistry::new());
//! let layer = TokenAccountingLayer::new(recorder.clone(), PriceTable::new(), tokenizers, false);
//!
//! // Your backend: here one that answers every chat with its usage.
//! let backend = tower::service_fn(|_request: LlmRequest| async {
//!     let answer: ChatResponse = serde_json::from_value(serde_json::json!({
//!         "id": "c1", "model": "gpt-4o", "choices": [],
//!         "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
//!     }))
//!     .map_err(|error| LoomError::internal(error.to_string()))?;
//!     Ok::<_, LoomError>(LlmResponse::new("my-backend", ResponsePayload::Chat(answer.into())))
//! });
//!
//! let chat = ChatRequest::new("gpt-4o", vec![Message::text(Role::User, "Hi")]);
//! layer.layer(backend).oneshot(LlmRequest::chat(RequestContext::new("req-1"), chat)).await?;
//! let per_model = recorder.report(Dimension::Model, 0, i64::MAX)?;
//! assert_eq!(per_model[0].group, "gpt-4o");
//! assert_eq!((per_model[0].totals.input_tokens, per_model[0].totals.output_tokens), (12, 5));
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run())
//! # .map_err(|error| error.to_string())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod layer;
mod pending;
mod service;
mod stream;
#[cfg(test)]
mod tests;

pub use layer::TokenAccountingLayer;
pub use service::TokenAccounting;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::Stream;
use loom_core::{
    ChatAnswer, ChatChunk, ChunkStream, Content, InputTokenEstimate, LlmRequest, LlmResponse, LoomError,
    RequestPayload, ResponsePayload, StreamChunk, Usage, WireChunk,
};
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::accounting::estimate::{self, ChatSize};
use crate::accounting::offload;
use crate::accounting::prices::PriceTable;
use crate::accounting::record::{Outcome, UsageRecord, UsageSource};
use crate::accounting::recorder::UsageRecorder;
use crate::accounting::report::{RecordedUsage, UsageReport};
use crate::registry::TokenizerRegistry;

use pending::Pending;
use stream::{Meter, MeteredStream};

/// Status recorded for a request whose client disconnected (nginx's convention).
pub const CLIENT_CLOSED_STATUS: u16 = 499;
/// Status recorded for a request dropped at the gateway's request timeout before it
/// was answered (what the client is sent then).
pub const TIMEOUT_STATUS: u16 = 504;

#[derive(Clone)]
struct Accounting {
    recorder: Arc<UsageRecorder>,
    prices: PriceTable,
    tokenizers: Arc<TokenizerRegistry>,
    /// Count every request's input exactly before sending it (the `cost` strategy needs
    /// it); otherwise a rough size estimate stands in until the provider reports usage.
    count_input: bool,
    /// The gateway's request timeout: a request dropped after it was timed out, not
    /// abandoned by its client.
    request_timeout: Option<Duration>,
}

impl Accounting {
    /// How a request that is dropped before it ended did end: timed out when it is
    /// past the request timeout, else its client went away. `answered`: the client has
    /// seen the answer's status (200) and part of a stream.
    fn ended_early(&self, pending: &Pending, answered: bool) -> (Outcome, u16) {
        match self.request_timeout {
            Some(limit) if pending.received_at.elapsed() >= limit => {
                (Outcome::Error, if answered { 200 } else { TIMEOUT_STATUS })
            }
            _ => (Outcome::Cancelled, CLIENT_CLOSED_STATUS),
        }
    }
}
