//! How the cache treated a request, counted for metrics and the admin API.

use std::sync::atomic::{AtomicU64, Ordering};

/// How the cache treated one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// Answered with the stored answer of the same request.
    Hit,
    /// Answered with the stored answer of a question that asks the same thing.
    SemanticHit,
    /// Not found: the provider answered (and the answer may be stored).
    Miss,
    /// Not looked up: the client asked so, or the request is not cacheable.
    Bypass,
    /// The store failed; treated as a miss.
    Error,
}

impl CacheStatus {
    /// Every status, in the order metrics list them.
    pub const ALL: [CacheStatus; 5] = [
        CacheStatus::Hit,
        CacheStatus::SemanticHit,
        CacheStatus::Miss,
        CacheStatus::Bypass,
        CacheStatus::Error,
    ];

    /// The metric label (`semantic_hit`).
    pub fn label(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::SemanticHit => "semantic_hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
            CacheStatus::Error => "error",
        }
    }

    /// The `x-loom-cache` header value (`semantic-hit`); an error shows as a miss.
    pub fn header(self) -> &'static str {
        match self {
            CacheStatus::Hit => loom_core::CACHE_HIT,
            CacheStatus::SemanticHit => loom_core::CACHE_SEMANTIC_HIT,
            CacheStatus::Miss | CacheStatus::Error => "miss",
            CacheStatus::Bypass => "bypass",
        }
    }

    fn slot(self) -> usize {
        match self {
            CacheStatus::Hit => 0,
            CacheStatus::SemanticHit => 1,
            CacheStatus::Miss => 2,
            CacheStatus::Bypass => 3,
            CacheStatus::Error => 4,
        }
    }
}

/// Told of every lookup (e.g. to count `loom_ai_cache_requests_total{status}`).
pub trait CacheObserver: Send + Sync {
    /// A request was treated as `status`.
    fn lookup(&self, status: CacheStatus);
}

/// Lookups counted by status since start.
#[derive(Debug, Default)]
pub struct Counters([AtomicU64; 5]);

impl Counters {
    /// Counts one lookup.
    pub fn add(&self, status: CacheStatus) {
        self.0[status.slot()].fetch_add(1, Ordering::Relaxed);
    }

    /// Lookups with `status` so far.
    pub fn get(&self, status: CacheStatus) -> u64 {
        self.0[status.slot()].load(Ordering::Relaxed)
    }

    /// Share of looked-up requests answered from the cache (bypassed ones excluded); 0 before any.
    pub fn hit_rate(&self) -> f64 {
        let hits = self.get(CacheStatus::Hit) + self.get(CacheStatus::SemanticHit);
        let looked_up = hits + self.get(CacheStatus::Miss) + self.get(CacheStatus::Error);
        if looked_up == 0 { 0.0 } else { hits as f64 / looked_up as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hit_rate_leaves_bypassed_requests_out() {
        let counters = Counters::default();
        assert_eq!(counters.hit_rate(), 0.0);
        for status in [
            CacheStatus::Hit,
            CacheStatus::SemanticHit,
            CacheStatus::Miss,
            CacheStatus::Error,
            CacheStatus::Bypass,
        ] {
            counters.add(status);
        }
        assert_eq!(counters.hit_rate(), 0.5);
        assert_eq!(counters.get(CacheStatus::Bypass), 1);
    }
}
