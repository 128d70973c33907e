//! # loom-tokens
//!
//! Token counting for Loom: exact `o200k_base`/`cl100k_base` counts (equal to Python
//! `tiktoken` on a 2,000-string corpus and on 1 MB inputs, in linear time), HuggingFace
//! `tokenizer.json` files for local models, a model -> tokenizer registry, and chat
//! request counting by OpenAI's documented rules (message framing, tools, images).
//! Anthropic and Gemini models get estimates (`exact: false`); their reported usage is
//! the truth. The rules are in `docs/tokens.md`.
//!
//! Counting needs no async runtime: with default features the crate depends on no tokio,
//! tower, hyper or SQLite. Features add the rest:
//!
//! | feature | adds | pulls in |
//! |---|---|---|
//! | `accounting` | [`accounting`]'s tower layer, usage records, recorder and bounded in-memory aggregates | tokio (`rt`, `time`), tower, futures-util |
//! | `ledger` | `accounting` plus the SQLite usage ledger | rusqlite (bundled SQLite) |
//! | `embed` | [`embed`]: the local all-MiniLM-L6-v2 sentence embedder and its bounded thread pool | candle (CPU), rayon, crossbeam-channel, tokio (`sync`) |
//!
//! ```
//! use loom_core::{ChatRequest, Message, Role};
//! use loom_tokens::{Encoding, Estimate, TokenizerRegistry, count_chat, count_text};
//!
//! // Text, by model name (longest-prefix match on the built-in OpenAI table).
//! assert_eq!(count_text("gpt-4o", "tiktoken is great!")?, Estimate { tokens: 6, exact: true });
//! assert_eq!(Encoding::Cl100kBase.count("お誕生日おめでとう"), 9);
//!
//! // A chat request: 3 per message + role + content, and 3 to prime the reply.
//! let request = ChatRequest::new("gpt-4o", vec![Message::text(Role::User, "Hello!")]);
//! assert_eq!(count_chat("gpt-4o", &request)?, Estimate { tokens: 3 + 1 + 2 + 3, exact: true });
//!
//! // Models no rule knows need a configured tokenizer or a fallback.
//! assert!(count_text("my-local-llama", "hi").is_err());
//! let registry = TokenizerRegistry::new().with_fallback("o200k_base".parse()?);
//! let counter = registry.counter("my-local-llama", None)?;
//! assert_eq!(counter.count_text("hi"), Estimate { tokens: 1, exact: false });
//! # Ok::<(), loom_tokens::TokenError>(())
//! ```

#![warn(missing_docs)]

pub mod accounting;
pub mod chat;
#[cfg(feature = "embed")]
pub mod embed;
pub mod encoding;
pub mod error;
pub mod hf;
pub mod image;
mod openai;
pub mod registry;
pub mod spec;

pub use chat::{ChatBreakdown, ChatCount, Estimate};
pub use encoding::Encoding;
pub use error::TokenError;
pub use hf::HfTokenizer;
pub use registry::{
    Basis, ModelFamily, TokenCounter, Tokenizer, TokenizerRegistry, count_chat, count_text, default_registry,
};
pub use spec::TokenizerSpec;
