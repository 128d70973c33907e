//! [`ResponseCache`]: the entries, the policies per route and the counters, shared by every
//! copy of the cache layer and by the admin API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loom_core::{ChatResponse, FinishReason};

use crate::config::{CacheConfig, CachePolicy};
use crate::entry::CachedAnswer;
use crate::key::{EntryId, RequestKey};
use crate::same_question::same_question;
use crate::semantic::{CANDIDATES, Change, QuestionEmbedder, Semantic};
use crate::status::{CacheObserver, CacheStatus, Counters};
use crate::store::memory::{MemoryStore, NewEntry};

/// The response cache.
pub struct ResponseCache {
    config: CacheConfig,
    default_policy: CachePolicy,
    routes: HashMap<String, CachePolicy>,
    memory: MemoryStore,
    counters: Counters,
    observer: Option<Arc<dyn CacheObserver>>,
    /// Lookups by meaning, when an embedder is configured.
    semantic: Option<Semantic>,
    /// Entries shared with other instances.
    #[cfg(feature = "redis")]
    shared: Option<Arc<crate::redis_store::RedisCacheStore>>,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// A stored answer to serve, how it was found, and the similarity of a semantic hit.
    Hit { answer: Arc<CachedAnswer>, status: CacheStatus, similarity: Option<f32> },
    /// Nothing to serve: `Miss`, or `Error` when a store failed.
    Miss(CacheStatus),
}

/// The cache's state, for the admin API.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CacheStats {
    /// Entries held in this process.
    pub entries: usize,
    /// Bytes they take.
    pub memory_bytes: u64,
    /// The bound on those bytes.
    pub max_bytes: u64,
    /// Requests answered with an exact hit since start.
    pub hits: u64,
    /// Requests answered with a semantic hit since start.
    pub semantic_hits: u64,
    /// Requests that missed since start.
    pub misses: u64,
    /// Requests not looked up since start.
    pub bypassed: u64,
    /// Lookups that failed (treated as misses) since start.
    pub errors: u64,
    /// Hits over looked-up requests.
    pub hit_rate: f64,
    /// Questions in the semantic index (`None` without semantic lookups).
    pub semantic_entries: Option<usize>,
    /// Bytes the semantic index takes, estimated.
    pub semantic_memory_bytes: Option<usize>,
    /// Changes to the semantic index dropped because its writer was behind.
    pub semantic_dropped_changes: Option<u64>,
}

impl ResponseCache {
    /// A cache with `config`, and `routes` whose policy differs from the global one.
    pub fn new(
        config: &CacheConfig,
        routes: impl IntoIterator<Item = (String, CachePolicy)>,
    ) -> ResponseCache {
        ResponseCache {
            default_policy: CachePolicy::of(config, None),
            routes: routes.into_iter().collect(),
            memory: MemoryStore::new(config.max_bytes),
            counters: Counters::default(),
            observer: None,
            config: config.clone(),
            semantic: None,
            #[cfg(feature = "redis")]
            shared: None,
        }
    }

    /// Looks requests up by meaning too, with questions embedded by `embedder`.
    pub fn with_semantic(mut self, embedder: Arc<dyn QuestionEmbedder>) -> ResponseCache {
        let config = &self.config.semantic;
        self.semantic =
            Some(Semantic::new(embedder, config.max_entries, config.timeout, config.max_question_bytes));
        self
    }

    /// Keeps entries in `store` too, shared with every instance that uses it.
    #[cfg(feature = "redis")]
    pub fn with_shared(mut self, store: Arc<crate::redis_store::RedisCacheStore>) -> ResponseCache {
        self.shared = Some(store);
        self
    }

    /// Tells `observer` of every lookup.
    pub fn with_observer(mut self, observer: Arc<dyn CacheObserver>) -> ResponseCache {
        self.observer = Some(observer);
        self
    }

    /// The global configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The policy of `route` (the global one for a route without changes).
    pub fn policy(&self, route: Option<&str>) -> &CachePolicy {
        route.and_then(|route| self.routes.get(route)).unwrap_or(&self.default_policy)
    }

    /// The exact entry of `key`: this process's, else the shared store's (a failing shared
    /// store is a miss with status `Error`).
    pub async fn find(&self, key: &RequestKey) -> Lookup {
        match self.entry(key, &key.id).await {
            Ok(Some(answer)) => Lookup::Hit { answer, status: CacheStatus::Hit, similarity: None },
            Ok(None) => Lookup::Miss(CacheStatus::Miss),
            Err(()) => Lookup::Miss(CacheStatus::Error),
        }
    }

    /// An entry of `key`'s question asked in other words, when the route allows semantic
    /// lookups (`threshold`): the nearest stored questions of its partition at or above the
    /// threshold, the first the question guard agrees with. The embedding computed is kept
    /// in `key`, for storing the answer; an embedder that fails or is saturated is a miss.
    pub async fn find_similar(
        &self,
        key: &mut RequestKey,
        threshold: f32,
        extensions: &http::Extensions,
    ) -> Lookup {
        let (Some(semantic), Some(question)) = (&self.semantic, key.question.as_mut()) else {
            return Lookup::Miss(CacheStatus::Miss);
        };
        let Some(embedding) = semantic.embed(&question.text, extensions).await else {
            return Lookup::Miss(CacheStatus::Miss);
        };
        question.embedding = Some(embedding.clone());
        let neighbours = semantic.index.search(&question.partition, &embedding, CANDIDATES);
        let key = &*key;
        let Some(question) = &key.question else { return Lookup::Miss(CacheStatus::Miss) };
        for neighbour in neighbours.into_iter().filter(|neighbour| neighbour.similarity >= threshold) {
            let answer = match self.entry(key, &neighbour.id).await {
                Ok(Some(answer)) => answer,
                Ok(None) => {
                    // Expired or evicted: the index forgets it too.
                    semantic.change(Change::Remove(neighbour.id));
                    continue;
                }
                Err(()) => return Lookup::Miss(CacheStatus::Error),
            };
            let Some(stored) = &answer.question else { continue };
            if same_question(stored, &question.text).is_same() {
                let similarity = Some(neighbour.similarity);
                return Lookup::Hit { answer, status: CacheStatus::SemanticHit, similarity };
            }
        }
        Lookup::Miss(CacheStatus::Miss)
    }

    /// Whether semantic lookups can run (an embedder is configured).
    pub fn has_semantic(&self) -> bool {
        self.semantic.is_some()
    }

    /// Entry `id` of `key`'s namespace and model: this process's, else the shared store's;
    /// `Err` when the shared store failed.
    async fn entry(&self, key: &RequestKey, id: &EntryId) -> Result<Option<Arc<CachedAnswer>>, ()> {
        if let Some(answer) = self.memory.get(id, Instant::now()) {
            return Ok(Some(answer));
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return match shared.get(&key.namespace, &key.model, id).await {
                Ok(Some(bytes)) => Ok(self.adopt(key, id, &bytes)),
                Ok(None) => Ok(None),
                Err(_) => Err(()),
            };
        }
        let _ = key;
        Ok(None)
    }

    /// An entry read from the shared store, kept here until it expires; `None` if it is
    /// malformed, expired or not of `key`'s namespace and model (its content is not trusted).
    #[cfg(feature = "redis")]
    fn adopt(&self, key: &RequestKey, id: &EntryId, bytes: &[u8]) -> Option<Arc<CachedAnswer>> {
        let answer = CachedAnswer::from_bytes(bytes)?;
        if answer.namespace != key.namespace || answer.model != key.model {
            return None;
        }
        let left = Duration::from_millis(answer.expires_at_ms).checked_sub(since_epoch())?;
        let now = Instant::now();
        let answer = Arc::new(answer);
        let entry = NewEntry {
            id: *id,
            answer: answer.clone(),
            bytes: bytes.len() as u64,
            expires_at: now.checked_add(left)?,
        };
        self.forget(self.memory.insert(entry, now));
        Some(answer)
    }

    /// Drops evicted entries from the semantic index.
    fn forget(&self, evicted: Vec<EntryId>) {
        if let Some(semantic) = &self.semantic {
            for id in &evicted {
                semantic.change(Change::Remove(*id));
            }
        }
    }

    /// Stores `json`, the answer `response` as the client would get it (from `provider`),
    /// under `key` for `policy.ttl`, if it is a good, complete answer of at most
    /// `max_entry_bytes`; returns whether it was stored.
    pub fn keep(
        &self,
        key: &RequestKey,
        response: &ChatResponse,
        json: Box<serde_json::value::RawValue>,
        provider: &str,
        policy: &CachePolicy,
    ) -> bool {
        if !is_storable(response, policy) {
            return false;
        }
        let answer = CachedAnswer {
            response: json,
            provider: provider.to_owned(),
            namespace: key.namespace.clone(),
            model: key.model.clone(),
            question: key.question.as_ref().map(|question| question.text.clone()),
            stored_at: since_epoch().as_secs(),
            expires_at_ms: u64::try_from(since_epoch().saturating_add(policy.ttl).as_millis())
                .unwrap_or(u64::MAX),
        };
        let size = answer.size() as u64;
        if size > self.config.max_entry_bytes {
            return false;
        }
        let now = Instant::now();
        let expires_at = now.checked_add(policy.ttl).unwrap_or(now);
        let answer = Arc::new(answer);
        let entry = NewEntry { id: key.id, answer: answer.clone(), bytes: size, expires_at };
        self.forget(self.memory.insert(entry, now));
        let question = key.question.as_ref().filter(|_| policy.semantic);
        let indexed = question.and_then(|question| Some((question.partition, question.embedding.clone()?)));
        if let (Some(semantic), Some((partition, embedding))) = (&self.semantic, &indexed) {
            semantic.change(Change::Insert(*partition, key.id, embedding.clone()));
        }
        #[cfg(feature = "redis")]
        self.share(key, answer, policy.ttl, indexed);
        true
    }

    /// Writes an entry to the shared store in the background (encoded there too): the
    /// answer is not held up, and a failure only means other instances miss it.
    #[cfg(feature = "redis")]
    fn share(
        &self,
        key: &RequestKey,
        answer: Arc<CachedAnswer>,
        ttl: Duration,
        indexed: Option<(EntryId, Arc<[f32]>)>,
    ) {
        let (Some(shared), Ok(runtime)) = (&self.shared, tokio::runtime::Handle::try_current()) else {
            return;
        };
        let (shared, key) = (shared.clone(), key.clone());
        runtime.spawn(async move {
            let bytes = answer.to_bytes();
            let entry = crate::redis_store::NewEntry {
                namespace: &key.namespace,
                model: &key.model,
                id: &key.id,
                value: &bytes,
                ttl,
                semantic: indexed.as_ref().map(|(partition, embedding)| (*partition, &embedding[..])),
            };
            // Counted by the store (`failures`).
            let _ = shared.put(entry).await;
        });
    }

    /// Removes the entries of `namespace` and/or `model` (both `None`: all), here and in
    /// the shared store; returns how many this process held and how many the shared store
    /// did (`None` without one, or when it failed).
    pub async fn clear(&self, namespace: Option<&str>, model: Option<&str>) -> (usize, Option<u64>) {
        let local = self
            .memory
            .remove_where(|answer| {
                namespace.is_none_or(|namespace| answer.namespace == namespace)
                    && model.is_none_or(|model| answer.model == model)
            })
            .len();
        if let Some(semantic) = &self.semantic {
            // The index does not know entries' namespaces: it starts over, and entries
            // still stored come back into it as they are stored again.
            semantic.change(Change::Clear);
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return (local, shared.delete(namespace, model).await.ok());
        }
        (local, None)
    }

    /// Keeps the semantic index in step with the shared store's stream of stored entries,
    /// for as long as the future lives (the gateway spawns it). Without a shared store or
    /// semantic lookups it ends at once.
    #[cfg(feature = "redis")]
    pub async fn follow_shared(&self) {
        let (Some(shared), Some(semantic)) = (&self.shared, &self.semantic) else { return };
        shared
            .follow(|event| match event {
                crate::redis_store::IndexEvent::Insert { id, partition, vector, expires_at, .. } => {
                    if expires_at > SystemTime::now() {
                        semantic.change(Change::Insert(partition, id, Arc::from(vector)));
                    }
                }
                crate::redis_store::IndexEvent::Clear { .. } => semantic.change(Change::Clear),
            })
            .await;
    }

    /// Entries, memory and lookups so far.
    pub fn stats(&self) -> CacheStats {
        let counters = &self.counters;
        CacheStats {
            entries: self.memory.len(),
            memory_bytes: self.memory.bytes(),
            max_bytes: self.config.max_bytes,
            hits: counters.get(CacheStatus::Hit),
            semantic_hits: counters.get(CacheStatus::SemanticHit),
            misses: counters.get(CacheStatus::Miss),
            bypassed: counters.get(CacheStatus::Bypass),
            errors: counters.get(CacheStatus::Error),
            hit_rate: counters.hit_rate(),
            semantic_entries: self.semantic.as_ref().map(|semantic| semantic.index.len()),
            semantic_memory_bytes: self.semantic.as_ref().map(|semantic| semantic.index.memory_bytes()),
            semantic_dropped_changes: self.semantic.as_ref().map(Semantic::dropped_changes),
        }
    }

    /// Counts a request treated as `status`.
    pub fn count(&self, status: CacheStatus) {
        self.counters.add(status);
        if let Some(observer) = &self.observer {
            observer.lookup(status);
        }
    }
}

/// Time since the Unix epoch (zero on a clock set before it).
pub(crate) fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// A complete answer that ended on its own: every choice stopped (or called tools, where
/// `policy` allows), none refused or was filtered.
pub fn is_storable(response: &ChatResponse, policy: &CachePolicy) -> bool {
    !response.choices.is_empty()
        && response.choices.iter().all(|choice| {
            let finished = match &choice.finish_reason {
                Some(FinishReason::Stop) => true,
                Some(FinishReason::ToolCalls) => policy.tool_calls,
                _ => false,
            };
            finished && choice.message.refusal.is_none()
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::key::request_key;

    fn response(finish: &str) -> ChatResponse {
        serde_json::from_value(serde_json::json!({"id": "c", "object": "chat.completion", "created": 1,
            "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
            "finish_reason": finish}]}))
        .unwrap()
    }

    fn keep(cache: &ResponseCache, key: &RequestKey, finish: &str, policy: &CachePolicy) -> bool {
        let response = response(finish);
        let json = serde_json::value::to_raw_value(&response).unwrap();
        cache.keep(key, &response, json, "p", policy)
    }

    fn key(question: &str) -> RequestKey {
        let mut chat = serde_json::from_value(
            serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": question}]}),
        )
        .unwrap();
        request_key("global".into(), "ai", &mut chat).unwrap()
    }

    #[tokio::test]
    async fn only_answers_that_ended_on_their_own_are_kept() {
        let cache = ResponseCache::new(&CacheConfig { enabled: true, ..CacheConfig::default() }, []);
        let policy = cache.policy(None).clone();
        for finish in ["length", "content_filter", "tool_calls"] {
            assert!(!keep(&cache, &key(finish), finish, &policy), "{finish}");
            assert!(matches!(cache.find(&key(finish)).await, Lookup::Miss(CacheStatus::Miss)));
        }
        let tools = CachePolicy { tool_calls: true, ..policy.clone() };
        assert!(keep(&cache, &key("tools"), "tool_calls", &tools));
        assert!(keep(&cache, &key("Hi?"), "stop", &policy));
        let Lookup::Hit { answer, status, .. } = cache.find(&key("Hi?")).await else { panic!("a hit") };
        assert_eq!(
            (status, answer.provider.as_str(), answer.question.as_deref()),
            (CacheStatus::Hit, "p", Some("Hi?"))
        );
    }

    #[tokio::test]
    async fn entries_expire_with_the_policy_ttl_and_clear_by_model() {
        let cache = ResponseCache::new(&CacheConfig { enabled: true, ..CacheConfig::default() }, []);
        let gone = CachePolicy { ttl: Duration::from_nanos(1), ..cache.policy(None).clone() };
        assert!(keep(&cache, &key("a"), "stop", &gone));
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(cache.find(&key("a")).await, Lookup::Miss(_)));
        let policy = cache.policy(None).clone();
        assert!(keep(&cache, &key("b"), "stop", &policy));
        assert_eq!(cache.clear(None, Some("other")).await, (0, None));
        assert_eq!(cache.clear(Some("global"), Some("gpt-4o")).await, (1, None));
        assert_eq!(cache.stats().entries, 0);
    }
}
