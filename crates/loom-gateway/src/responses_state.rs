//! Conversations kept for `previous_response_id`: bounded, expiring, per caller.
//!
//! Providers Loom translates the Responses API for keep no state, so Loom keeps each
//! stored response's whole conversation (its input and its output, as canonical
//! messages) under the response id, in the state backend of `ai_gateway.state`: this
//! process' memory, or Redis (shared by every instance, so any of them continues a
//! conversation another stored). Entries are scoped to the caller (a hash of the key it
//! presented, the same on every instance), so one tenant cannot continue another's
//! conversation.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use loom_core::{ErrorKind, LoomError, Message};
use loom_guard::{Backend, KeyHash, StateConfig};
use tokio::time::Instant;
use tracing::warn;

#[path = "responses_redis.rs"]
mod redis;

pub use self::redis::RedisConversations;

/// How much the conversation store keeps (`ai_gateway.responses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseStoreLimits {
    /// How long a conversation stays continuable.
    pub ttl: Duration,
    /// Most conversations kept at once in memory; the oldest go first.
    pub max_entries: usize,
    /// Most bytes (as JSON) all conversations kept in memory may take; the oldest go first.
    pub max_bytes: usize,
    /// Most bytes (as JSON) one conversation may take; a longer one is not kept.
    pub max_conversation_bytes: usize,
}

impl Default for ResponseStoreLimits {
    /// One hour, 10 000 conversations, 256 MiB in all, 16 MiB each.
    fn default() -> Self {
        ResponseStoreLimits {
            ttl: Duration::from_secs(3600),
            max_entries: 10_000,
            max_bytes: 256 << 20,
            max_conversation_bytes: 16 << 20,
        }
    }
}

/// Who may continue a conversation: a hash of the caller's key (never the key itself),
/// the same in every process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConversationScope(KeyHash);

impl ConversationScope {
    /// The scope of a caller that presented `key` (none: the gateway has no keys).
    pub fn of(key: Option<&str>) -> Self {
        // Domain-separated, so a scope never equals the key's own stored hash.
        ConversationScope(KeyHash::of(&format!("loom-responses-scope\n{}", key.unwrap_or_default())))
    }

    fn to_hex(self) -> String {
        self.0.to_hex()
    }
}

/// Why a conversation could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The Redis backend failed or did not answer (the message carries no secret).
    #[error("conversation state backend: {0}")]
    Backend(String),
}

impl From<StoreError> for LoomError {
    /// A 503 in OpenAI's shape: the conversation exists, maybe, but cannot be read now.
    fn from(error: StoreError) -> Self {
        warn!(%error, "cannot read a stored conversation");
        let mut refusal = LoomError::new(
            ErrorKind::Overloaded,
            "The conversation state backend is unavailable, so `previous_response_id` cannot be \
             continued now; try again later",
        )
        .with_code("conversation_state_unavailable");
        refusal.param = Some("previous_response_id".to_owned());
        refusal
    }
}

/// Conversations by response id, in this process or on Redis.
// One per gateway, built at start-up: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ResponseStore {
    /// In this process.
    Memory(MemoryConversations),
    /// On Redis, shared by every instance.
    Redis(RedisConversations),
}

impl ResponseStore {
    /// An empty in-memory store with `limits`.
    pub fn memory(limits: ResponseStoreLimits) -> Self {
        ResponseStore::Memory(MemoryConversations::new(limits))
    }

    /// The store of `ai_gateway.state`'s backend (Redis connects lazily).
    pub fn from_config(state: &StateConfig, limits: ResponseStoreLimits) -> Result<Self, StoreError> {
        Ok(match state.backend {
            Backend::Memory => ResponseStore::memory(limits),
            Backend::Redis => ResponseStore::Redis(RedisConversations::new(state, limits)?),
        })
    }

    /// The conversation of response `id`, if `scope` stored it and it has not expired.
    pub async fn get(
        &self,
        id: &str,
        scope: ConversationScope,
    ) -> Result<Option<Arc<Vec<Message>>>, StoreError> {
        match self {
            ResponseStore::Memory(memory) => Ok(memory.get(id, scope)),
            ResponseStore::Redis(redis) => redis.get(id, scope).await.map(|found| found.map(Arc::new)),
        }
    }

    /// Keeps `messages` as the conversation of response `id`, for `scope`. A failure is
    /// logged and counted, never the request's: only a later continuation misses it.
    pub async fn put(&self, id: &str, scope: ConversationScope, messages: Vec<Message>) {
        let outcome = match self {
            ResponseStore::Memory(memory) => {
                memory.put(id.to_owned(), scope, messages);
                Ok(())
            }
            ResponseStore::Redis(redis) => redis.put(id, scope, &messages).await,
        };
        if let Err(error) = outcome {
            self.failures().fetch_add(1, Ordering::Relaxed);
            warn!(%error, "cannot keep a conversation for previous_response_id");
        }
    }

    /// How many conversations could not be kept since start.
    pub fn store_failures(&self) -> u64 {
        self.failures().load(Ordering::Relaxed)
    }

    fn failures(&self) -> &AtomicU64 {
        match self {
            ResponseStore::Memory(memory) => &memory.failures,
            ResponseStore::Redis(redis) => redis.failures(),
        }
    }
}

/// Conversations by response id, in memory.
pub struct MemoryConversations {
    limits: ResponseStoreLimits,
    inner: Mutex<Entries>,
    failures: AtomicU64,
}

#[derive(Default)]
struct Entries {
    by_id: HashMap<String, Entry>,
    /// Ids in the order they were stored (which is also the order they expire in).
    order: VecDeque<String>,
    bytes: usize,
}

struct Entry {
    scope: ConversationScope,
    messages: Arc<Vec<Message>>,
    bytes: usize,
    stored_at: Instant,
}

impl MemoryConversations {
    /// An empty store with `limits`.
    pub fn new(limits: ResponseStoreLimits) -> Self {
        MemoryConversations { limits, inner: Mutex::new(Entries::default()), failures: AtomicU64::new(0) }
    }

    /// The conversation of response `id`, if `scope` stored it and it has not expired.
    pub fn get(&self, id: &str, scope: ConversationScope) -> Option<Arc<Vec<Message>>> {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.evict(&self.limits, Instant::now());
        let entry = entries.by_id.get(id)?;
        (entry.scope == scope).then(|| entry.messages.clone())
    }

    /// Keeps `messages` as the conversation of response `id`, for `scope`.
    pub fn put(&self, id: String, scope: ConversationScope, messages: Vec<Message>) {
        let bytes = serde_json::to_vec(&messages).map_or(usize::MAX, |json| json.len());
        if bytes > self.limits.max_bytes
            || bytes > self.limits.max_conversation_bytes
            || self.limits.max_entries == 0
        {
            return;
        }
        let now = Instant::now();
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = Entry { scope, messages: Arc::new(messages), bytes, stored_at: now };
        if let Some(replaced) = entries.by_id.insert(id.clone(), entry) {
            entries.bytes -= replaced.bytes;
            entries.order.retain(|kept| kept != &id);
        }
        entries.bytes += bytes;
        entries.order.push_back(id);
        entries.evict(&self.limits, now);
    }

    /// How many conversations are kept.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).by_id.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Entries {
    /// Drops expired entries, then the oldest while over a limit.
    fn evict(&mut self, limits: &ResponseStoreLimits, now: Instant) {
        while let Some(oldest) = self.order.front() {
            let Some(entry) = self.by_id.get(oldest) else {
                self.order.pop_front();
                continue;
            };
            let expired = now.saturating_duration_since(entry.stored_at) >= limits.ttl;
            let over = self.by_id.len() > limits.max_entries || self.bytes > limits.max_bytes;
            if !expired && !over {
                break;
            }
            if let Some(id) = self.order.pop_front()
                && let Some(removed) = self.by_id.remove(&id)
            {
                self.bytes -= removed.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loom_core::Role;

    fn conversation(text: &str) -> Vec<Message> {
        vec![Message::text(Role::User, text)]
    }

    #[test]
    fn only_the_scope_that_stored_a_conversation_reads_it() {
        let store = MemoryConversations::new(ResponseStoreLimits::default());
        let (alice, bob) = (ConversationScope::of(Some("key-a")), ConversationScope::of(Some("key-b")));
        store.put("resp_1".into(), alice, conversation("hi"));
        assert_eq!(store.get("resp_1", alice).as_deref(), Some(&conversation("hi")));
        assert_eq!(store.get("resp_1", bob), None);
        assert_eq!(store.get("resp_2", alice), None);
        assert_eq!(ConversationScope::of(None), ConversationScope::of(None));
    }

    #[tokio::test(start_paused = true)]
    async fn conversations_expire_and_the_oldest_go_first() {
        let limits = ResponseStoreLimits {
            ttl: Duration::from_secs(60),
            max_entries: 2,
            ..ResponseStoreLimits::default()
        };
        let store = MemoryConversations::new(limits);
        let scope = ConversationScope::of(None);
        store.put("resp_1".into(), scope, conversation("one"));
        store.put("resp_2".into(), scope, conversation("two"));
        store.put("resp_3".into(), scope, conversation("three"));
        assert_eq!((store.len(), store.get("resp_1", scope)), (2, None));
        tokio::time::advance(Duration::from_secs(30)).await;
        store.put("resp_4".into(), scope, conversation("four"));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(store.get("resp_3", scope), None, "stored 61 s ago");
        assert_eq!(store.get("resp_4", scope).as_deref(), Some(&conversation("four")));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn the_byte_limit_holds() {
        let one = serde_json::to_vec(&conversation("0123456789")).unwrap().len();
        let limits = ResponseStoreLimits { max_bytes: one * 2, ..ResponseStoreLimits::default() };
        let store = MemoryConversations::new(limits);
        let scope = ConversationScope::of(None);
        for id in ["resp_1", "resp_2", "resp_3"] {
            store.put(id.into(), scope, conversation("0123456789"));
        }
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("resp_1", scope), None);
        store.put("resp_big".into(), scope, conversation(&"x".repeat(one * 2)));
        assert_eq!(store.get("resp_big", scope), None, "larger than the whole budget: not kept");
    }

    #[test]
    fn a_conversation_over_its_own_cap_is_not_kept() {
        let one = serde_json::to_vec(&conversation("0123456789")).unwrap().len();
        let limits = ResponseStoreLimits { max_conversation_bytes: one, ..ResponseStoreLimits::default() };
        let store = MemoryConversations::new(limits);
        let scope = ConversationScope::of(None);
        store.put("resp_fits".into(), scope, conversation("0123456789"));
        store.put("resp_over".into(), scope, conversation("0123456789x"));
        assert_eq!(store.get("resp_fits", scope).as_deref(), Some(&conversation("0123456789")));
        assert_eq!(store.get("resp_over", scope), None);
    }

    #[test]
    fn scopes_hash_the_key_the_same_way_in_every_process() {
        // A fixed value: instances sharing Redis must agree on it (and it is not the key).
        assert_eq!(
            ConversationScope::of(Some("sk-test")).to_hex(),
            loom_guard::KeyHash::of("loom-responses-scope\nsk-test").to_hex()
        );
        assert_ne!(ConversationScope::of(Some("sk-test")).0, loom_guard::KeyHash::of("sk-test"));
    }
}
