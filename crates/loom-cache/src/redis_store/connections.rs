//! Connections to the cache's Redis: one per Tokio runtime (a worker's calls stay on its own
//! thread), every call bounded by the store's timeout and scrubbed of URL secrets.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client};

use super::error::{RedisStoreError, scrubbed};

/// At most this many runtimes keep a connection (a process has one per worker).
const MAX_CONNECTIONS: usize = 64;

/// The client and its per-runtime connections.
pub(super) struct Connections {
    client: Client,
    manager_config: ConnectionManagerConfig,
    connections: Mutex<Vec<(tokio::runtime::Id, ConnectionManager)>>,
    timeout: Duration,
    /// Parts of the URL that must never reach an error message.
    secrets: Vec<String>,
}

impl Connections {
    /// Connections to `url`, made on first use.
    pub(super) fn new(url: &str, timeout: Duration) -> Result<Self, RedisStoreError> {
        let secrets = loom_guard::state::url_secrets(url);
        let client = Client::open(url).map_err(|error| scrubbed(&error, &secrets))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(timeout);
        Ok(Connections { client, manager_config, connections: Mutex::new(Vec::new()), timeout, secrets })
    }

    /// The connection of the runtime this runs on (made on first use there).
    pub(super) fn connection(&self) -> Result<ConnectionManager, RedisStoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RedisStoreError::NoRuntime)?.id();
        let mut connections = self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, connection)) = connections.iter().find(|(id, _)| *id == runtime) {
            return Ok(connection.clone());
        }
        let connection =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.manager_config.clone())
                .map_err(|error| scrubbed(&error, &self.secrets))?;
        if connections.len() >= MAX_CONNECTIONS {
            // The oldest runtime is the likeliest to be gone (tests make many).
            connections.remove(0);
        }
        connections.push((runtime, connection.clone()));
        Ok(connection)
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
        self.call(self.timeout, self.client.get_multiplexed_async_connection_with_config(&config)).await
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
