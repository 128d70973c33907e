//! Errors of token counting.

use std::path::PathBuf;

/// Why a tokenizer could not be resolved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No built-in tokenizer or estimate rule for the model, and no fallback configured.
    #[error(
        "no tokenizer known for model `{0}`; name one (o200k_base, cl100k_base or a tokenizer.json path)"
    )]
    UnknownModel(String),
    /// A tokenizer name that is neither built in nor a path to a `tokenizer.json`.
    #[error("unknown tokenizer `{0}`: expected o200k_base, cl100k_base or a path to a tokenizer.json")]
    UnknownEncoding(String),
    /// A HuggingFace `tokenizer.json` that cannot be read or parsed.
    #[error("cannot load tokenizer {path}: {message}")]
    LoadTokenizer {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}
