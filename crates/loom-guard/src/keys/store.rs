//! The store of keys: configuration keys plus run-time keys, looked up by hash from a snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{KeyHash, KeyPatch, KeySource, NewKey, VirtualKey, generate_key, random_bytes};
use crate::GuardError;
use crate::config::AuthConfig;
use crate::state::{GuardState, RedisState};

/// How often [`KeyStore::spawn_refresh`] polls by default.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_millis(500);

/// What a presented key turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A live key.
    Found(Arc<VirtualKey>),
    /// No key has this hash.
    Unknown,
    /// The key's expiry has passed.
    Expired(Arc<VirtualKey>),
    /// The key was revoked.
    Revoked(Arc<VirtualKey>),
}

/// Configuration keys plus keys created at run time (kept in the state backend).
#[derive(Debug)]
pub struct KeyStore {
    config_keys: Vec<Arc<VirtualKey>>,
    snapshot: RwLock<Arc<Snapshot>>,
    backend: KeyBackend,
}

#[derive(Debug, Default)]
struct Snapshot {
    by_hash: HashMap<KeyHash, Arc<VirtualKey>>,
    /// Every key by id, configuration keys first in id order.
    by_id: BTreeMap<String, Arc<VirtualKey>>,
}

#[derive(Debug)]
enum KeyBackend {
    /// Run-time keys live in this process only.
    Memory(Mutex<BTreeMap<String, Arc<VirtualKey>>>),
    /// Run-time keys live in Redis; `seen` is the version the snapshot was built from.
    Redis { state: RedisState, seen: tokio::sync::Mutex<Option<u64>> },
}

/// A run-time key as stored in Redis: the record plus its hash (never the plaintext).
#[derive(Serialize, Deserialize)]
struct StoredKey {
    #[serde(flatten)]
    key: VirtualKey,
    key_sha256: String,
}

impl KeyStore {
    /// A store of `auth`'s keys whose run-time keys live in `state`. Fails on a
    /// configuration key that validation would refuse. Call [`KeyStore::refresh`] (or use
    /// [`KeyStore::open`]) to load the run-time keys already in Redis.
    pub fn new(auth: &AuthConfig, state: &GuardState) -> Result<Self, GuardError> {
        if let Some(problem) = auth.validate().into_iter().next() {
            return Err(GuardError::Invalid { field: problem.path, message: problem.message });
        }
        let config_keys: Vec<Arc<VirtualKey>> =
            auth.keys.iter().filter_map(VirtualKey::from_config).map(Arc::new).collect();
        let backend = match state {
            GuardState::Memory(_) => KeyBackend::Memory(Mutex::default()),
            GuardState::Redis(redis) => {
                KeyBackend::Redis { state: redis.clone(), seen: tokio::sync::Mutex::new(None) }
            }
        };
        let store = KeyStore { snapshot: RwLock::default(), config_keys, backend };
        store.publish(std::iter::empty());
        Ok(store)
    }

    /// [`KeyStore::new`], then the run-time keys loaded from the backend.
    pub async fn open(auth: &AuthConfig, state: &GuardState) -> Result<Self, GuardError> {
        let store = KeyStore::new(auth, state)?;
        store.refresh().await?;
        Ok(store)
    }

    /// What `presented` is, at `now`. No I/O: answers from the current snapshot. The map
    /// finds the candidate by hash; the full hashes are then compared in constant time.
    pub fn lookup(&self, presented: &str, now: SystemTime) -> Lookup {
        let hash = KeyHash::of(presented);
        let snapshot = self.current();
        let Some(key) = snapshot.by_hash.get(&hash).filter(|key| key.hash.constant_time_eq(&hash)) else {
            return Lookup::Unknown;
        };
        if key.revoked {
            Lookup::Revoked(key.clone())
        } else if !key.is_live(now) {
            Lookup::Expired(key.clone())
        } else {
            Lookup::Found(key.clone())
        }
    }

    /// The key with this id, if any.
    pub fn get(&self, id: &str) -> Option<Arc<VirtualKey>> {
        self.current().by_id.get(id).cloned()
    }

    /// Every key, configuration keys included, ordered by id (serializing one shows no secret).
    pub fn list(&self) -> Vec<Arc<VirtualKey>> {
        self.current().by_id.values().cloned().collect()
    }

    /// Creates a key; returns its plaintext (shown this once, never stored) and its record.
    pub async fn create(&self, new: NewKey) -> Result<(String, Arc<VirtualKey>), GuardError> {
        new.validate()?;
        let id = match &new.id {
            Some(id) => id.clone(),
            None => generated_id()?,
        };
        if self.is_config_key(&id) || self.get(&id).is_some() {
            return Err(GuardError::invalid("id", format!("a key with id `{id}` exists")));
        }
        let (plaintext, hash) = generate_key()?;
        let key = Arc::new(new.into_key(id.clone(), hash, whole_seconds(SystemTime::now())));
        match &self.backend {
            KeyBackend::Memory(keys) => {
                let mut keys = lock(keys);
                if keys.contains_key(&id) {
                    return Err(GuardError::invalid("id", format!("a key with id `{id}` exists")));
                }
                keys.insert(id, key.clone());
                self.publish(keys.values().cloned());
            }
            KeyBackend::Redis { state, .. } => {
                if !state.write_key_record(&id, &stored_json(&key)?, None).await? {
                    return Err(GuardError::invalid("id", format!("a key with id `{id}` exists")));
                }
                self.refresh().await?;
            }
        }
        Ok((plaintext, key))
    }

    /// Changes a run-time key (configuration keys are read-only).
    pub async fn update(&self, id: &str, patch: KeyPatch) -> Result<Arc<VirtualKey>, GuardError> {
        patch.validate()?;
        self.modify(id, move |key| patch.clone().apply(key)).await
    }

    /// Revokes a run-time key: it stops working on every instance at their next refresh.
    pub async fn revoke(&self, id: &str) -> Result<(), GuardError> {
        self.modify(id, |key| VirtualKey { revoked: true, ..key.clone() }).await.map(drop)
    }

    /// Reloads run-time keys from the backend when their version changed (one GET when not).
    pub async fn refresh(&self) -> Result<(), GuardError> {
        let KeyBackend::Redis { state, seen } = &self.backend else { return Ok(()) };
        let mut seen = seen.lock().await;
        let version = state.keys_version().await?;
        if *seen == Some(version) {
            return Ok(());
        }
        let (version, records) = state.key_records().await?;
        let mut keys = Vec::with_capacity(records.len());
        for (id, json) in records {
            match parse_stored(&json) {
                Ok(key) => keys.push(Arc::new(key)),
                Err(error) => tracing::warn!(key_id = %id, %error, "skipping an unreadable stored key"),
            }
        }
        self.publish(keys.into_iter());
        *seen = Some(version);
        Ok(())
    }

    /// Polls the backend every `interval` and reloads changed keys, until the store is dropped.
    pub fn spawn_refresh(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let store: Weak<KeyStore> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(store) = store.upgrade() else { break };
                if let Err(error) = store.refresh().await {
                    tracing::warn!(%error, "could not refresh virtual keys; keeping the last ones");
                }
            }
        })
    }

    fn is_config_key(&self, id: &str) -> bool {
        self.config_keys.iter().any(|key| key.id == id)
    }

    async fn modify(
        &self,
        id: &str,
        change: impl Fn(&VirtualKey) -> VirtualKey,
    ) -> Result<Arc<VirtualKey>, GuardError> {
        if self.is_config_key(id) {
            return Err(GuardError::ReadOnlyKey(id.to_owned()));
        }
        match &self.backend {
            KeyBackend::Memory(keys) => {
                let mut keys = lock(keys);
                let current = keys.get(id).ok_or_else(|| GuardError::NotFound(id.to_owned()))?;
                let changed = Arc::new(change(current));
                keys.insert(id.to_owned(), changed.clone());
                self.publish(keys.values().cloned());
                Ok(changed)
            }
            KeyBackend::Redis { state, .. } => {
                // Compare-and-set, retried: another instance may change the key meanwhile.
                for _ in 0..8 {
                    let stored =
                        state.key_record(id).await?.ok_or_else(|| GuardError::NotFound(id.to_owned()))?;
                    let current = parse_stored(&stored).map_err(|error| {
                        GuardError::Backend(format!("stored key `{id}` is unreadable: {error}"))
                    })?;
                    let changed = Arc::new(change(&current));
                    if state.write_key_record(id, &stored_json(&changed)?, Some(&stored)).await? {
                        self.refresh().await?;
                        return Ok(changed);
                    }
                }
                Err(GuardError::Backend(format!("key `{id}` kept changing during the update")))
            }
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces the snapshot with the configuration keys plus `runtime` keys.
    fn publish(&self, runtime: impl Iterator<Item = Arc<VirtualKey>>) {
        let mut snapshot = Snapshot::default();
        for key in runtime.chain(self.config_keys.iter().cloned()) {
            // Configuration keys come last and win a (validated-away) clash.
            snapshot.by_hash.insert(key.hash, key.clone());
            snapshot.by_id.insert(key.id.clone(), key);
        }
        *self.snapshot.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(snapshot);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `time` without its fraction of a second, as records store it (RFC 3339, seconds).
fn whole_seconds(time: SystemTime) -> SystemTime {
    let since_epoch = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs())
}

fn generated_id() -> Result<String, GuardError> {
    let mut bytes = [0u8; 8];
    random_bytes(&mut bytes)?;
    Ok(format!("vk-{}", bytes.iter().map(|byte| format!("{byte:02x}")).collect::<String>()))
}

fn stored_json(key: &VirtualKey) -> Result<String, GuardError> {
    let stored = StoredKey { key: key.clone(), key_sha256: key.hash.to_hex() };
    serde_json::to_string(&stored).map_err(|error| GuardError::Backend(format!("cannot encode key: {error}")))
}

fn parse_stored(json: &str) -> Result<VirtualKey, String> {
    let stored: StoredKey = serde_json::from_str(json).map_err(|error| error.to_string())?;
    let mut key = stored.key;
    key.hash = KeyHash::from_hex(&stored.key_sha256).map_err(|error| error.to_string())?;
    key.source = KeySource::Api;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use loom_core::Secret;

    use super::*;
    use crate::config::KeyConfig;

    fn config_key(id: &str, key: Option<&str>, hash: Option<String>) -> KeyConfig {
        KeyConfig {
            id: id.to_owned(),
            name: None,
            key: key.map(Secret::from),
            key_sha256: hash,
            user: Some("ann".to_owned()),
            team: None,
            metadata: BTreeMap::new(),
            models: vec!["gpt-4o*".to_owned()],
            routes: Vec::new(),
            allow_identity_headers: false,
            expires_at: None,
            limits: Vec::new(),
            budgets: Vec::new(),
            checks: None,
        }
    }

    fn store() -> KeyStore {
        let mut expired = config_key("old", Some("sk-old"), None);
        expired.expires_at = Some(crate::Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(10)));
        let auth = AuthConfig {
            enabled: true,
            keys: vec![
                config_key("plain", Some("sk-plain"), None),
                config_key("hashed", None, Some(KeyHash::of("sk-hashed").to_hex())),
                expired,
            ],
            admin_key: None,
        };
        KeyStore::new(&auth, &GuardState::memory(10)).unwrap()
    }

    fn found_id(lookup: Lookup) -> String {
        match lookup {
            Lookup::Found(key) => key.id.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn config_and_created_keys_are_found_and_others_are_not() {
        let store = store();
        let now = SystemTime::now();
        assert_eq!(found_id(store.lookup("sk-plain", now)), "plain");
        assert_eq!(found_id(store.lookup("sk-hashed", now)), "hashed");
        assert!(matches!(store.lookup("sk-old", now), Lookup::Expired(key) if key.id == "old"));
        assert_eq!(store.lookup("sk-nobody", now), Lookup::Unknown);
        assert_eq!(store.lookup("", now), Lookup::Unknown);

        let (plaintext, key) =
            store.create(NewKey { name: Some("ci".to_owned()), ..NewKey::default() }).await.unwrap();
        assert!(key.id.starts_with("vk-") && key.id.len() == 19, "{}", key.id);
        assert_eq!(found_id(store.lookup(&plaintext, now)), key.id);
        store.revoke(&key.id).await.unwrap();
        assert!(matches!(store.lookup(&plaintext, now), Lookup::Revoked(_)));
    }

    #[tokio::test]
    async fn config_keys_are_read_only_and_unknown_ids_not_found() {
        let store = store();
        assert_eq!(store.revoke("plain").await, Err(GuardError::ReadOnlyKey("plain".to_owned())));
        assert_eq!(
            store.update("plain", KeyPatch::default()).await,
            Err(GuardError::ReadOnlyKey("plain".to_owned()))
        );
        assert_eq!(store.revoke("nope").await, Err(GuardError::NotFound("nope".to_owned())));
        let taken = NewKey { id: Some("plain".to_owned()), ..NewKey::default() };
        assert_eq!(
            store.create(taken).await.unwrap_err(),
            GuardError::invalid("id", "a key with id `plain` exists")
        );
    }

    #[tokio::test]
    async fn the_list_never_shows_a_secret() {
        let store = store();
        let (plaintext, created) =
            store.create(NewKey { id: Some("mine".to_owned()), ..NewKey::default() }).await.unwrap();
        let listed = store.list();
        let ids: Vec<&str> = listed.iter().map(|key| key.id.as_str()).collect();
        assert_eq!(ids, ["hashed", "mine", "old", "plain"]);
        let json = serde_json::to_string(&listed).unwrap();
        for secret in
            [plaintext.as_str(), "sk-plain", &created.hash.to_hex(), &KeyHash::of("sk-hashed").to_hex()]
        {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
    }

    #[tokio::test]
    async fn updates_apply_to_lookups() {
        let store = store();
        let (plaintext, created) = store.create(NewKey::default()).await.unwrap();
        let patch: KeyPatch = serde_json::from_str(r#"{"team":"eng","models":["claude*"]}"#).unwrap();
        let updated = store.update(&created.id, patch).await.unwrap();
        assert_eq!(updated.team.as_deref(), Some("eng"));
        match store.lookup(&plaintext, SystemTime::now()) {
            Lookup::Found(key) => assert!(key.allows_model("claude-3") && !key.allows_model("gpt-4o")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_config_keys_are_refused_by_path() {
        let auth = AuthConfig { keys: vec![config_key("a", None, None)], ..AuthConfig::default() };
        assert_eq!(
            KeyStore::new(&auth, &GuardState::memory(10)).unwrap_err(),
            GuardError::invalid("ai_gateway.auth.keys[0]", "set exactly one of `key` and `key_sha256`")
        );
    }
}
