//! Conversations kept for `previous_response_id`: bounded, expiring, per caller.
//!
//! Providers Loom translates the Responses API for keep no state, so Loom keeps each
//! stored response's whole conversation (its input and its output, as canonical
//! messages) under the response id. Entries are scoped to the caller (a keyed hash of
//! the key it presented), so one tenant cannot continue another's conversation. The
//! memory backend is the only one yet; [`ResponseStore`] is the type a Redis backend
//! would slot in behind.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use loom_core::Message;
use tokio::time::Instant;

/// How much [`ResponseStore`] keeps.
#[derive(Debug, Clone, Copy)]
pub struct ResponseStoreLimits {
    /// How long a conversation stays continuable.
    pub ttl: Duration,
    /// Most conversations kept at once; the oldest go first.
    pub max_entries: usize,
    /// Most bytes (as JSON) all kept conversations may take; the oldest go first.
    pub max_bytes: usize,
}

impl Default for ResponseStoreLimits {
    /// One hour, 10 000 conversations, 256 MiB.
    fn default() -> Self {
        ResponseStoreLimits { ttl: Duration::from_secs(3600), max_entries: 10_000, max_bytes: 256 << 20 }
    }
}

/// Who may continue a conversation: a keyed hash of the caller's key (never the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConversationScope(u64);

/// Conversations by response id, in memory.
pub struct ResponseStore {
    limits: ResponseStoreLimits,
    hasher: RandomState,
    inner: Mutex<Entries>,
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

impl ResponseStore {
    /// An empty store with `limits`.
    pub fn new(limits: ResponseStoreLimits) -> Self {
        ResponseStore { limits, hasher: RandomState::new(), inner: Mutex::new(Entries::default()) }
    }

    /// The scope of a caller that presented `key` (none: the gateway has no keys).
    pub fn scope(&self, key: Option<&str>) -> ConversationScope {
        ConversationScope(self.hasher.hash_one(key.unwrap_or_default()))
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
        let bytes = serde_json::to_vec(&messages).map_or(0, |json| json.len());
        if bytes > self.limits.max_bytes || self.limits.max_entries == 0 {
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
        let store = ResponseStore::new(ResponseStoreLimits::default());
        let (alice, bob) = (store.scope(Some("key-a")), store.scope(Some("key-b")));
        store.put("resp_1".into(), alice, conversation("hi"));
        assert_eq!(store.get("resp_1", alice).as_deref(), Some(&conversation("hi")));
        assert_eq!(store.get("resp_1", bob), None);
        assert_eq!(store.get("resp_2", alice), None);
        assert_eq!(store.scope(None), store.scope(None));
    }

    #[tokio::test(start_paused = true)]
    async fn conversations_expire_and_the_oldest_go_first() {
        let limits = ResponseStoreLimits { ttl: Duration::from_secs(60), max_entries: 2, max_bytes: 1 << 20 };
        let store = ResponseStore::new(limits);
        let scope = store.scope(None);
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
        let limits =
            ResponseStoreLimits { ttl: Duration::from_secs(60), max_entries: 100, max_bytes: one * 2 };
        let store = ResponseStore::new(limits);
        let scope = store.scope(None);
        for id in ["resp_1", "resp_2", "resp_3"] {
            store.put(id.into(), scope, conversation("0123456789"));
        }
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("resp_1", scope), None);
        store.put("resp_big".into(), scope, conversation(&"x".repeat(one * 2)));
        assert_eq!(store.get("resp_big", scope), None, "larger than the whole budget: not kept");
    }
}
