//! One Redis connection per Tokio runtime: a worker's calls stay on its own thread, with no
//! cross-thread wake-up to reach a connection driven elsewhere. Shared by every Redis user
//! in Loom (limits and keys, the Responses store, the response cache).

use std::sync::Mutex;
use std::time::Duration;

use redis::Client;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// At most this many runtimes keep a connection (a process has one per worker).
const MAX_CONNECTIONS: usize = 64;

/// A Redis client and its connections, one per runtime, made on first use there.
pub struct RuntimeConnections {
    client: Client,
    config: ConnectionManagerConfig,
    connections: Mutex<Vec<(tokio::runtime::Id, ConnectionManager)>>,
}

/// Why no connection could be had.
#[derive(Debug)]
pub enum ConnectionError {
    /// Not called on a Tokio runtime.
    NoRuntime,
    /// The connection could not be set up (its message may carry the URL: scrub it).
    Redis(redis::RedisError),
}

impl RuntimeConnections {
    /// Connections of `client` that retry twice and give up on a call after `timeout`.
    pub fn new(client: Client, timeout: Duration) -> RuntimeConnections {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(timeout);
        RuntimeConnections { client, config, connections: Mutex::new(Vec::new()) }
    }

    /// The client (for connections of another kind, e.g. one of its own for blocking reads).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The connection of the runtime this runs on.
    pub fn get(&self) -> Result<ConnectionManager, ConnectionError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConnectionError::NoRuntime)?.id();
        let mut connections = self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, connection)) = connections.iter().find(|(id, _)| *id == runtime) {
            return Ok(connection.clone());
        }
        let connection = ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            .map_err(ConnectionError::Redis)?;
        if connections.len() >= MAX_CONNECTIONS {
            // The oldest runtime is the likeliest to be gone (tests make many).
            connections.remove(0);
        }
        connections.push((runtime, connection.clone()));
        Ok(connection)
    }
}
