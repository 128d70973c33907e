//! Errors of the embedder and its pool.

use std::path::PathBuf;

/// Why a model could not be loaded or a text not embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file is missing or cannot be read.
    #[error("cannot read {file}: {message}")]
    Read {
        /// The file.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A model file was read but its content is unusable.
    #[error("malformed {file}: {message}")]
    Malformed {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The tokenizer failed on the input.
    #[error("cannot tokenize the input: {0}")]
    Tokenize(String),
    /// The forward pass failed.
    #[error("embedding failed: {0}")]
    Model(String),
    /// The pool shut down, or its worker failed, before the job ran.
    #[error("the embedding pool stopped before the job ran")]
    PoolStopped,
    /// The caller stopped waiting (its future was dropped) while the job ran.
    #[error("the caller stopped waiting for the embedding")]
    Abandoned,
    /// The pool's threads could not be started.
    #[error("cannot start the embedding pool: {0}")]
    Spawn(String),
}
