//! Entries in this process: bounded by bytes, least recently used evicted first, each
//! with its own expiry.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use hashlink::LinkedHashMap;

use crate::entry::CachedAnswer;
use crate::key::EntryId;

/// Bytes an entry costs beyond its JSON: the map slot, the id and the bookkeeping.
const SLOT_OVERHEAD: u64 = 160;

/// The in-process entries.
pub struct MemoryStore {
    max_bytes: u64,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Least recently used first.
    entries: LinkedHashMap<EntryId, Slot>,
    bytes: u64,
}

struct Slot {
    answer: Arc<CachedAnswer>,
    expires_at: Instant,
    bytes: u64,
}

/// An entry to keep.
pub struct NewEntry {
    /// Its id.
    pub id: EntryId,
    /// The answer.
    pub answer: Arc<CachedAnswer>,
    /// Size of its JSON.
    pub bytes: u64,
    /// When it stops being served.
    pub expires_at: Instant,
}

impl MemoryStore {
    /// An empty store holding at most `max_bytes`.
    pub fn new(max_bytes: u64) -> MemoryStore {
        MemoryStore { max_bytes, inner: Mutex::new(Inner { entries: LinkedHashMap::new(), bytes: 0 }) }
    }

    /// The live entry `id`, now the most recently used.
    pub fn get(&self, id: &EntryId, now: Instant) -> Option<Arc<CachedAnswer>> {
        let mut inner = self.lock();
        let slot = inner.entries.to_back(id)?;
        if slot.expires_at <= now {
            inner.remove(id);
            return None;
        }
        Some(slot.answer.clone())
    }

    /// Keeps `entry` (replacing one with its id); returns the ids evicted to make room
    /// (expired ones first, then the least recently used).
    pub fn insert(&self, entry: NewEntry, now: Instant) -> Vec<EntryId> {
        let size = entry.bytes.saturating_add(SLOT_OVERHEAD);
        let mut evicted = Vec::new();
        if size > self.max_bytes {
            return evicted;
        }
        let mut inner = self.lock();
        inner.remove(&entry.id);
        if inner.bytes + size > self.max_bytes {
            let expired: Vec<EntryId> =
                inner.entries.iter().filter(|(_, slot)| slot.expires_at <= now).map(|(id, _)| *id).collect();
            for id in expired {
                inner.remove(&id);
                evicted.push(id);
            }
        }
        while inner.bytes + size > self.max_bytes {
            let Some((id, slot)) = inner.entries.pop_front() else { break };
            inner.bytes -= slot.bytes;
            evicted.push(id);
        }
        inner.bytes += size;
        inner
            .entries
            .insert(entry.id, Slot { answer: entry.answer, expires_at: entry.expires_at, bytes: size });
        evicted
    }

    /// Removes the entries `matches` selects; returns their ids.
    pub fn remove_where(&self, matches: impl Fn(&CachedAnswer) -> bool) -> Vec<EntryId> {
        let mut inner = self.lock();
        let ids: Vec<EntryId> =
            inner.entries.iter().filter(|(_, slot)| matches(&slot.answer)).map(|(id, _)| *id).collect();
        for id in &ids {
            inner.remove(id);
        }
        ids
    }

    /// Entries held (expired ones included until they are found or evicted).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the entries take.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data: every change
        // above updates `bytes` and `entries` together.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn remove(&mut self, id: &EntryId) {
        if let Some(slot) = self.entries.remove(id) {
            self.bytes -= slot.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    fn answer(model: &str) -> Arc<CachedAnswer> {
        let response = serde_json::value::to_raw_value(&serde_json::json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": model, "choices": []
        }))
        .unwrap();
        Arc::new(CachedAnswer {
            response,
            provider: "p".into(),
            namespace: "global".into(),
            model: model.into(),
            question: None,
            stored_at: 0,
            expires_at_ms: 0,
        })
    }

    fn entry(id: u8, bytes: u64, expires_at: Instant) -> NewEntry {
        NewEntry { id: [id; 32], answer: answer(&format!("m{id}")), bytes, expires_at }
    }

    #[test]
    fn least_recently_used_goes_first_and_bytes_stay_bounded() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let store = MemoryStore::new(3 * (100 + SLOT_OVERHEAD));
        for id in 1..=3 {
            assert!(store.insert(entry(id, 100, later), now).is_empty());
        }
        assert!(store.get(&[1; 32], now).is_some());
        assert_eq!(store.insert(entry(4, 100, later), now), vec![[2; 32]]);
        assert!(store.get(&[2; 32], now).is_none());
        assert_eq!(store.len(), 3);
        assert_eq!(store.bytes(), 3 * (100 + SLOT_OVERHEAD));
        // Too big for the whole store: not kept, nothing evicted.
        assert!(store.insert(entry(5, 10_000, later), now).is_empty());
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn expired_entries_are_not_served_and_are_evicted_first() {
        let now = Instant::now();
        let store = MemoryStore::new(2 * (100 + SLOT_OVERHEAD));
        store.insert(entry(1, 100, now + Duration::from_secs(60)), now);
        store.insert(entry(2, 100, now + Duration::from_secs(1)), now);
        let later = now + Duration::from_secs(2);
        assert_eq!(store.insert(entry(3, 100, later + Duration::from_secs(60)), later), vec![[2; 32]]);
        assert!(store.get(&[1; 32], later).is_some());
        assert!(store.get(&[1; 32], now + Duration::from_secs(61)).is_none());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn replacing_an_entry_counts_its_bytes_once() {
        let now = Instant::now();
        let store = MemoryStore::new(10_000);
        store.insert(entry(1, 100, now + Duration::from_secs(60)), now);
        store.insert(entry(1, 300, now + Duration::from_secs(60)), now);
        assert_eq!(store.bytes(), 300 + SLOT_OVERHEAD);
        assert_eq!(store.remove_where(|answer| answer.model == "m1"), vec![[1; 32]]);
        assert_eq!(store.bytes(), 0);
    }
}
