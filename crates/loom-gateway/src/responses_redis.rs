//! The Redis backend of the conversation store: one key per stored response,
//! `{<prefix>}:resp:<id>`, holding the caller's scope and the conversation as JSON, with
//! the store's ttl as the key's expiry (so Redis bounds it; its `maxmemory` policy
//! bounds the rest).

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use loom_core::Message;
use loom_guard::StateConfig;
use loom_guard::state::{ConnectionError, RuntimeConnections, url_secrets, without_secrets};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Client, SetExpiry, SetOptions};
use serde::{Deserialize, Serialize};

use super::{ConversationScope, ResponseStoreLimits, StoreError};

/// Longest response id looked up: ids Loom and OpenAI make are far shorter, and a client
/// cannot make Loom build huge keys.
const MAX_ID_BYTES: usize = 256;

/// Conversations on a Redis shared by every instance.
pub struct RedisConversations {
    /// One connection per Tokio runtime.
    connections: RuntimeConnections,
    /// `{prefix}`: the hash tag every key starts with (the guard's too).
    tag: String,
    timeout: Duration,
    limits: ResponseStoreLimits,
    /// Parts of the URL that must never reach an error message.
    secrets: Vec<String>,
    failures: AtomicU64,
}

/// What one key holds.
#[derive(Serialize, Deserialize)]
struct Stored<M> {
    /// The scope's hash, hex.
    scope: String,
    messages: M,
}

impl RedisConversations {
    /// A store on the Redis at `config.url`; connects on first use and reconnects by itself.
    pub fn new(config: &StateConfig, limits: ResponseStoreLimits) -> Result<Self, StoreError> {
        let url = config.url.as_ref().ok_or_else(|| {
            StoreError::Backend("ai_gateway.state.url is required when backend is redis".into())
        })?;
        let secrets = url_secrets(url.expose());
        let client = Client::open(url.expose()).map_err(|error| scrubbed(&error, &secrets))?;
        Ok(RedisConversations {
            connections: RuntimeConnections::new(client, config.timeout),
            tag: format!("{{{}}}", config.key_prefix),
            timeout: config.timeout,
            limits,
            secrets,
            failures: AtomicU64::new(0),
        })
    }

    pub(super) fn failures(&self) -> &AtomicU64 {
        &self.failures
    }

    /// The Redis key of response `id`.
    fn key(&self, id: &str) -> String {
        format!("{}:resp:{id}", self.tag)
    }

    /// The conversation of response `id`, if `scope` stored it and it has not expired.
    pub async fn get(&self, id: &str, scope: ConversationScope) -> Result<Option<Vec<Message>>, StoreError> {
        if id.len() > MAX_ID_BYTES {
            return Ok(None);
        }
        let mut connection = self.connection()?;
        let key = self.key(id);
        let stored: Option<Vec<u8>> = self.call(async move { connection.get(key).await }).await?;
        let Some(stored) = stored else { return Ok(None) };
        let stored: Stored<Vec<Message>> = serde_json::from_slice(&stored).map_err(|error| {
            StoreError::Backend(format!("a stored conversation does not decode: {error}"))
        })?;
        Ok((stored.scope == scope.to_hex()).then_some(stored.messages))
    }

    /// Keeps `messages` as the conversation of response `id`, for `scope`; one over
    /// `max_conversation_bytes` is not kept.
    pub async fn put(
        &self,
        id: &str,
        scope: ConversationScope,
        messages: &[Message],
    ) -> Result<(), StoreError> {
        if id.len() > MAX_ID_BYTES || self.limits.max_entries == 0 {
            return Ok(());
        }
        let stored = Stored { scope: scope.to_hex(), messages };
        let json = serde_json::to_vec(&stored)
            .map_err(|error| StoreError::Backend(format!("a conversation does not encode: {error}")))?;
        if json.len() > self.limits.max_conversation_bytes {
            return Ok(());
        }
        let seconds = self.limits.ttl.as_secs().max(1);
        let options = SetOptions::default().with_expiration(SetExpiry::EX(seconds));
        let mut connection = self.connection()?;
        let key = self.key(id);
        self.call(async move { connection.set_options::<_, _, ()>(key, json, options).await }).await
    }

    /// The connection of the runtime this runs on (made on first use there).
    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        self.connections.get().map_err(|error| match error {
            ConnectionError::NoRuntime => {
                StoreError::Backend("the redis state backend needs a Tokio runtime".to_owned())
            }
            ConnectionError::Redis(error) => scrubbed(&error, &self.secrets),
        })
    }

    /// Runs one Redis call within the timeout, with a scrubbed error.
    async fn call<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, StoreError> {
        let timed_out = || StoreError::Backend(format!("Redis did not answer within {:?}", self.timeout));
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Err(error)) if error.is_timeout() => Err(timed_out()),
            Ok(result) => result.map_err(|error| scrubbed(&error, &self.secrets)),
            Err(_) => Err(timed_out()),
        }
    }
}

/// A backend error whose message carries none of `secrets`.
fn scrubbed(error: &impl Display, secrets: &[String]) -> StoreError {
    StoreError::Backend(without_secrets(error, secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_show_the_password() {
        let secrets = url_secrets("redis://ann:hunter2@host:6379/0");
        let error = scrubbed(&"connect to ann:hunter2@host failed (hunter2)", &secrets);
        assert_eq!(error.to_string(), "conversation state backend: connect to ***@host failed (***)");
        let config = StateConfig {
            backend: loom_guard::Backend::Redis,
            url: Some(loom_core::Secret::new("redis://:hunter2@host:notaport")),
            ..StateConfig::default()
        };
        let error = RedisConversations::new(&config, ResponseStoreLimits::default()).err().unwrap();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
