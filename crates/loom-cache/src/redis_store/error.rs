//! What can go wrong talking to the cache's Redis.

use std::fmt::Display;
use std::time::Duration;

/// A failed Redis cache operation; the caller treats it as a miss.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisStoreError {
    /// Redis refused the call or could not be reached (the message carries no URL secret).
    #[error("cache redis: {0}")]
    Backend(String),
    /// Redis did not answer in time.
    #[error("cache redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The store was used outside a Tokio runtime.
    #[error("the cache redis store needs a Tokio runtime")]
    NoRuntime,
    /// Something to store (or read back) is over the store's bound.
    #[error("cache redis: the {what} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A vector that is empty or holds a NaN or an infinity.
    #[error("cache redis: a vector must hold at least one number, all finite")]
    InvalidVector,
    /// Something stored under the cache's keys is not what the store writes.
    #[error("cache redis: a stored {0} is malformed")]
    Malformed(&'static str),
}

impl RedisStoreError {
    /// Whether this is Redis failing (unreachable, refusing, slow), as opposed to a refused input.
    pub fn is_backend_failure(&self) -> bool {
        matches!(self, RedisStoreError::Backend(_) | RedisStoreError::Timeout(_))
    }
}

/// A backend error whose message carries none of `secrets`.
pub(super) fn scrubbed(error: &impl Display, secrets: &[String]) -> RedisStoreError {
    RedisStoreError::Backend(loom_guard::state::without_secrets(error, secrets))
}
