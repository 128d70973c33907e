//! Connections to the cache's Redis: one per Tokio runtime (`RuntimeConnections`, a
//! worker's calls stay on its own thread), every call bounded by the store's timeout and
//! scrubbed of URL secrets.

use std::future::Future;
use std::time::Duration;

use loom_guard::state::{ConnectionError, RuntimeConnections};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client};

use super::error::{RedisStoreError, scrubbed};

/// The client and its per-runtime connections.
pub(super) struct Connections {
    connections: RuntimeConnections,
    timeout: Duration,
    /// Parts of the URL that must never reach an error message.
    secrets: Vec<String>,
}

impl Connections {
    /// Connections to `url`, made on first use.
    pub(super) fn new(url: &str, timeout: Duration) -> Result<Self, RedisStoreError> {
        let secrets = loom_guard::state::url_secrets(url);
        let client = Client::open(url).map_err(|error| scrubbed(&error, &secrets))?;
        Ok(Connections { connections: RuntimeConnections::new(client, timeout), timeout, secrets })
    }

    /// The connection of the runtime this runs on (made on first use there).
    pub(super) fn connection(&self) -> Result<ConnectionManager, RedisStoreError> {
        self.connections.get().map_err(|error| match error {
            ConnectionError::NoRuntime => RedisStoreError::NoRuntime,
            ConnectionError::Redis(error) => scrubbed(&error, &self.secrets),
        })
    }

    /// A connection of its own for blocking reads (a blocked XREAD would stall every call
    /// sharing its connection), whose replies may take `block` longer than the timeout.
    pub(super) async fn blocking_connection(
        &self,
        block: Duration,
    ) -> Result<MultiplexedConnection, RedisStoreError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout + block));
        self.call(
            self.timeout,
            self.connections.client().get_multiplexed_async_connection_with_config(&config),
        )
        .await
    }

    /// The store's timeout.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one Redis call within `limit`, with a scrubbed error.
    pub(super) async fn call<T>(
        &self,
        limit: Duration,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisStoreError> {
        match tokio::time::timeout(limit, call).await {
            Ok(Err(error)) if error.is_timeout() => Err(RedisStoreError::Timeout(limit)),
            Ok(result) => result.map_err(|error| scrubbed(&error, &self.secrets)),
            Err(_) => Err(RedisStoreError::Timeout(limit)),
        }
    }
}
