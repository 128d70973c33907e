//! The error every fallible loom-guard operation returns.

use thiserror::Error;

/// What went wrong in a guard operation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuardError {
    /// The state backend failed or timed out (the message never carries a password).
    #[error("state backend: {0}")]
    Backend(String),
    /// No key has this id.
    #[error("no key with id `{0}`")]
    NotFound(String),
    /// The key comes from the configuration file and cannot be changed at run time.
    #[error("key `{0}` comes from the configuration and is read-only")]
    ReadOnlyKey(String),
    /// A field of a request (a new key, a patch) or of the configuration is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field's path, e.g. `limits[0].requests_per_minute`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl GuardError {
    /// An `Invalid` error for one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        GuardError::Invalid { field: field.into(), message: message.into() }
    }
}
