//! The cache's entries and index sync on a Redis shared by every instance.
//!
//! Entries are opaque bytes with a ttl; semantic entries also append an insert event to a
//! stream that every instance follows ([`RedisCacheStore::follow`]) to keep its local vector
//! index in step, so an answer stored through one instance is found by the others. Redis
//! down or slow: every call fails within the store's timeout and the caller misses.
//!
//! # Keys
//!
//! All keys start with the hash tag `{prefix}` (like the guard's and the Responses store's,
//! so they share a Redis Cluster slot and MULTI works), then `:cache:`:
//!
//! - `{prefix}:cache:e:<namespace>:<model>:<id>`: an entry, its value a format byte (1) and
//!   the caller's bytes, expiring with the entry's ttl. Namespace and model are hex-encoded
//!   UTF-8 and the id is hex, so a client-chosen model name cannot put `*`, `?`, `[` or `:`
//!   into the SCAN patterns deletes use.
//! - `{prefix}:cache:log`: the sync stream ([`IndexEvent`]s), trimmed to about
//!   [`DEFAULT_MAX_EVENTS`] (or [`RedisCacheStore::with_max_events`]): an instance starting
//!   later replays what is left, so older semantic entries reach it only as exact hits.
//!
//! # Bounds
//!
//! Values up to [`MAX_VALUE_BYTES`], namespaces up to [`MAX_NAMESPACE_BYTES`], model names up
//! to [`MAX_MODEL_BYTES`], vectors of 1 to [`MAX_DIMENSIONS`] finite numbers; the same bounds
//! apply to what is read back, since Redis content is treated as untrusted. Expiry times in
//! events come from the writer's clock.
//!
//! ```no_run
//! use std::time::Duration;
//! use loom_cache::redis_store::{NewEntry, RedisCacheStore};
//!
//! # async fn example() -> Result<(), loom_cache::redis_store::RedisStoreError> {
//! let store = RedisCacheStore::new("redis://127.0.0.1:6379/", "loom", Duration::from_millis(200))?;
//! let id = [7; 32];
//! store
//!     .put(NewEntry {
//!         namespace: "team-a",
//!         model: "gpt-4o",
//!         id: &id,
//!         value: b"the stored answer",
//!         ttl: Duration::from_secs(3600),
//!         semantic: Some(([1; 32], &[0.6, 0.8])),
//!     })
//!     .await?;
//! assert_eq!(store.get("team-a", "gpt-4o", &id).await?, Some(b"the stored answer".to_vec()));
//! // Elsewhere, for the life of the instance: keep the local index in step.
//! store.follow(|event| println!("{event:?}")).await;
//! # Ok(())
//! # }
//! ```

mod connections;
mod error;
mod event;
mod follow;
mod keys;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use self::connections::Connections;
pub use self::error::RedisStoreError;
pub use self::event::IndexEvent;
use self::keys::Keys;

pub use crate::key::{EntryId, PartitionKey};

/// The largest value stored or read back.
pub const MAX_VALUE_BYTES: usize = 8 * 1024 * 1024;

/// The longest namespace.
pub const MAX_NAMESPACE_BYTES: usize = 256;

/// The longest model name (a client chooses it).
pub const MAX_MODEL_BYTES: usize = 256;

/// The most dimensions a vector may have.
pub const MAX_DIMENSIONS: usize = 8192;

/// About how many events the sync stream keeps.
pub const DEFAULT_MAX_EVENTS: usize = 100_000;

/// The longest ttl kept; longer ones are cut to it.
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The first byte of every stored value: the format of what follows.
const VALUE_FORMAT: u8 = 1;

/// Keys scanned per SCAN call when deleting.
const SCAN_COUNT: usize = 1000;

/// Cache entries and the index sync stream on Redis; shared by the Tokio runtimes of a process.
pub struct RedisCacheStore {
    connections: Connections,
    keys: Keys,
    max_events: usize,
    failures: AtomicU64,
    malformed_events: AtomicU64,
}

/// An entry to store.
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    /// The tenant namespace.
    pub namespace: &'a str,
    /// The model, after mapping.
    pub model: &'a str,
    /// The entry's id.
    pub id: &'a EntryId,
    /// The answer, opaque.
    pub value: &'a [u8],
    /// How long Redis keeps it (zero: not stored).
    pub ttl: Duration,
    /// For a semantic entry: its partition and the embedding of its last user turn.
    pub semantic: Option<(PartitionKey, &'a [f32])>,
}

impl RedisCacheStore {
    /// A store on the Redis at `url`, keys under `{prefix}`, every call bounded by `timeout`;
    /// connects on first use and reconnects by itself.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, RedisStoreError> {
        Ok(RedisCacheStore {
            connections: Connections::new(url, timeout)?,
            keys: Keys::new(prefix),
            max_events: DEFAULT_MAX_EVENTS,
            failures: AtomicU64::new(0),
            malformed_events: AtomicU64::new(0),
        })
    }

    /// The same store with the sync stream trimmed to about `max_events` events.
    pub fn with_max_events(mut self, max_events: usize) -> Self {
        self.max_events = max_events.max(1);
        self
    }

    /// The value of entry `id`, if stored and not expired.
    pub async fn get(
        &self,
        namespace: &str,
        model: &str,
        id: &EntryId,
    ) -> Result<Option<Vec<u8>>, RedisStoreError> {
        if namespace.len() > MAX_NAMESPACE_BYTES || model.len() > MAX_MODEL_BYTES {
            // Nothing is stored under names that long.
            return Ok(None);
        }
        let key = self.keys.entry(namespace, model, id);
        let result = async {
            let mut connection = self.connections.connection()?;
            // One byte more than a stored value may have, so an oversized one shows.
            let last = MAX_VALUE_BYTES + 1;
            let mut read = redis::cmd("GETRANGE");
            read.arg(&key).arg(0).arg(last);
            let stored: Vec<u8> =
                self.connections.call(self.connections.timeout(), read.query_async(&mut connection)).await?;
            match stored.split_first() {
                // GETRANGE gives "" for a missing key; a stored value is never empty.
                None => Ok(None),
                Some((&VALUE_FORMAT, value)) if value.len() <= MAX_VALUE_BYTES => Ok(Some(value.to_vec())),
                Some((&VALUE_FORMAT, _)) => Err(RedisStoreError::TooLarge {
                    what: "stored value",
                    size: stored.len() - 1,
                    limit: MAX_VALUE_BYTES,
                }),
                Some(_) => Err(RedisStoreError::Malformed("entry")),
            }
        };
        self.counted(result.await)
    }

    /// Stores `entry` with its ttl; a semantic entry also appends an insert event to the sync
    /// stream, in the same MULTI.
    pub async fn put(&self, entry: NewEntry<'_>) -> Result<(), RedisStoreError> {
        let result = async {
            check_entry(&entry)?;
            if entry.ttl.is_zero() {
                return Ok(());
            }
            let ttl = entry.ttl.min(MAX_TTL);
            let mut value = Vec::with_capacity(entry.value.len() + 1);
            value.push(VALUE_FORMAT);
            value.extend_from_slice(entry.value);
            let mut transaction = redis::pipe();
            transaction
                .atomic()
                .cmd("SET")
                .arg(self.keys.entry(entry.namespace, entry.model, entry.id))
                .arg(value)
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .ignore();
            if let Some((partition, vector)) = entry.semantic {
                let expires_at = SystemTime::now() + ttl;
                let fields = event::insert_fields(
                    entry.namespace,
                    entry.model,
                    entry.id,
                    &partition,
                    vector,
                    expires_at,
                );
                self.append_event(&mut transaction, &fields);
            }
            let mut connection = self.connections.connection()?;
            let run = transaction.query_async::<()>(&mut connection);
            self.connections.call(self.connections.timeout(), run).await
        };
        self.counted(result.await)
    }

    /// Deletes the entries of `namespace` and `model` (`None`: any; both `None`: all), then
    /// appends a clear event (a clear of all replaces the whole stream); the number deleted. Each Redis round trip is bounded by the
    /// timeout, not the whole scan.
    pub async fn delete(&self, namespace: Option<&str>, model: Option<&str>) -> Result<u64, RedisStoreError> {
        if namespace.is_some_and(|namespace| namespace.len() > MAX_NAMESPACE_BYTES)
            || model.is_some_and(|model| model.len() > MAX_MODEL_BYTES)
        {
            return Ok(0);
        }
        let result = async {
            let mut connection = self.connections.connection()?;
            let timeout = self.connections.timeout();
            let pattern = self.keys.entries_pattern(namespace, model);
            let mut cursor: u64 = 0;
            let mut deleted: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(SCAN_COUNT);
                let (next, keys): (u64, Vec<Vec<u8>>) =
                    self.connections.call(timeout, scan.query_async(&mut connection)).await?;
                if !keys.is_empty() {
                    let mut unlink = redis::cmd("UNLINK");
                    unlink.arg(keys);
                    deleted +=
                        self.connections.call(timeout, unlink.query_async::<u64>(&mut connection)).await?;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            let mut append = redis::pipe();
            append.atomic();
            if namespace.is_none() && model.is_none() {
                // Everything before a clear of all is moot: later instances need not replay it.
                append.cmd("XTRIM").arg(self.keys.log()).arg("MAXLEN").arg(0).ignore();
            }
            self.append_event(&mut append, &event::clear_fields(namespace, model));
            self.connections.call(timeout, append.query_async::<()>(&mut connection)).await?;
            Ok(deleted)
        };
        self.counted(result.await)
    }

    /// Replays the sync stream from its start (skipping expired inserts), then follows it,
    /// calling `apply` with each event in order; runs until dropped.
    ///
    /// Every instance sees its own events too, and after a reconnection to another server
    /// (restarted or failed over) the stream is replayed from its start again: `apply` must
    /// take an event it has seen before. Redis errors are retried with backoff (50 ms
    /// doubling to 2 s); malformed events are skipped and counted
    /// ([`RedisCacheStore::malformed_events`]).
    pub async fn follow(&self, apply: impl Fn(IndexEvent) + Send + Sync) {
        self.follow_stream(&apply).await;
    }

    /// How many operations failed (Redis down, slow or refusing, or a refused input), the
    /// follower's failed reads included.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// How many stream events the follower skipped as malformed.
    pub fn malformed_events(&self) -> u64 {
        self.malformed_events.load(Ordering::Relaxed)
    }

    /// Adds an XADD of `fields` to the sync stream, trimmed to about `max_events`.
    fn append_event(&self, pipeline: &mut redis::Pipeline, fields: &[(&'static str, Vec<u8>)]) {
        let add =
            pipeline.cmd("XADD").arg(self.keys.log()).arg("MAXLEN").arg("~").arg(self.max_events).arg("*");
        for (name, value) in fields {
            add.arg(*name).arg(value.as_slice());
        }
        add.ignore();
    }

    /// `result`, counted in [`RedisCacheStore::failures`] when it is an error.
    fn counted<T>(&self, result: Result<T, RedisStoreError>) -> Result<T, RedisStoreError> {
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl fmt::Debug for RedisCacheStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: only the key layout is shown.
        formatter.debug_struct("RedisCacheStore").field("log", &self.keys.log()).finish_non_exhaustive()
    }
}

/// Refuses an entry over the bounds.
fn check_entry(entry: &NewEntry<'_>) -> Result<(), RedisStoreError> {
    let too_large = |what, size, limit| {
        if size > limit { Err(RedisStoreError::TooLarge { what, size, limit }) } else { Ok(()) }
    };
    too_large("namespace", entry.namespace.len(), MAX_NAMESPACE_BYTES)?;
    too_large("model name", entry.model.len(), MAX_MODEL_BYTES)?;
    too_large("value", entry.value.len(), MAX_VALUE_BYTES)?;
    if let Some((_, vector)) = entry.semantic {
        too_large("vector", vector.len() * 4, MAX_DIMENSIONS * 4)?;
        if vector.is_empty() || !vector.iter().all(|value| value.is_finite()) {
            return Err(RedisStoreError::InvalidVector);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>(_: &T) {}

    #[test]
    fn the_store_and_its_follower_can_move_between_threads() {
        let store = RedisCacheStore::new("redis://127.0.0.1:1/", "loom", Duration::from_millis(10)).unwrap();
        assert_send_sync(&store);
        let follower = store.follow(|_| {});
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&follower);
    }

    #[test]
    fn errors_never_show_the_password() {
        let error = RedisCacheStore::new("redis://:hunter2@host:notaport", "loom", Duration::from_millis(10))
            .err()
            .unwrap();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let store = RedisCacheStore::new("redis://ann:hunter2@host:6379/", "loom", Duration::from_millis(10))
            .unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
    }

    #[test]
    fn entries_over_the_bounds_are_refused() {
        let id = [0; 32];
        let entry = NewEntry {
            namespace: "n",
            model: "m",
            id: &id,
            value: b"v",
            ttl: Duration::from_secs(1),
            semantic: None,
        };
        assert_eq!(check_entry(&entry), Ok(()));
        let long_model = "m".repeat(MAX_MODEL_BYTES + 1);
        assert!(matches!(
            check_entry(&NewEntry { model: &long_model, ..entry }),
            Err(RedisStoreError::TooLarge { what: "model name", .. })
        ));
        let big = vec![0; MAX_VALUE_BYTES + 1];
        assert!(matches!(
            check_entry(&NewEntry { value: &big, ..entry }),
            Err(RedisStoreError::TooLarge { what: "value", .. })
        ));
        assert_eq!(
            check_entry(&NewEntry { semantic: Some(([0; 32], &[f32::NAN])), ..entry }),
            Err(RedisStoreError::InvalidVector)
        );
        assert_eq!(
            check_entry(&NewEntry { semantic: Some(([0; 32], &[])), ..entry }),
            Err(RedisStoreError::InvalidVector)
        );
    }
}
