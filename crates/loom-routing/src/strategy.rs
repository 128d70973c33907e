//! Picking one provider among the candidates, per strategy.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use loom_tokens::accounting::Price;

use crate::config::Strategy;
use crate::health::ProviderState;

/// Output tokens assumed by the `cost` strategy when the request sets no limit.
pub const DEFAULT_OUTPUT_ESTIMATE: u64 = 1024;

/// What a strategy knows about one target.
pub(crate) struct Candidate<'a> {
    /// Position of the target in priority order.
    pub index: usize,
    pub state: &'a ProviderState,
    pub weight: u32,
    /// Its price for this request's model (looked up for the `cost` strategy only).
    pub price: Option<Price>,
}

/// A strategy and its state.
pub(crate) struct Picker {
    strategy: Strategy,
    next: AtomicUsize,
    /// Smooth weighted round robin: current weight per target index.
    current: Mutex<Vec<i64>>,
}

impl Picker {
    pub(crate) fn new(strategy: Strategy, targets: usize) -> Self {
        Picker { strategy, next: AtomicUsize::new(0), current: Mutex::new(vec![0; targets]) }
    }

    /// Whether picks compare prices (so candidates need theirs looked up).
    pub(crate) fn compares_prices(&self) -> bool {
        self.strategy == Strategy::Cost
    }

    /// Picks one of `candidates` (never empty; in priority order) for a request with
    /// these input and output token estimates.
    pub(crate) fn pick(&self, candidates: &[Candidate<'_>], input_tokens: u64, output_tokens: u64) -> usize {
        match self.strategy {
            Strategy::Priority => candidates[0].index,
            Strategy::RoundRobin => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed);
                candidates[turn % candidates.len()].index
            }
            Strategy::Weighted => self.smooth_weighted(candidates),
            Strategy::Cost => {
                let cost = |candidate: &Candidate<'_>| {
                    candidate.price.map_or(f64::INFINITY, |price| price.cost(input_tokens, 0, output_tokens))
                };
                // The first of equally cheap candidates (priority order) wins.
                let mut best = &candidates[0];
                for candidate in &candidates[1..] {
                    if cost(candidate) < cost(best) {
                        best = candidate;
                    }
                }
                best.index
            }
            Strategy::Latency => {
                if let Some(probe) = candidates.iter().find(|candidate| candidate.state.due_for_probe()) {
                    return probe.index;
                }
                let latency = |candidate: &Candidate<'_>| candidate.state.latency().unwrap_or_default();
                let mut best = &candidates[0];
                for candidate in &candidates[1..] {
                    if latency(candidate) < latency(best) {
                        best = candidate;
                    }
                }
                best.index
            }
        }
    }

    /// nginx's smooth weighted round robin: exact shares over every window of
    /// `sum(weights)` picks, interleaved rather than bunched.
    fn smooth_weighted(&self, candidates: &[Candidate<'_>]) -> usize {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let total: i64 = candidates.iter().map(|candidate| i64::from(candidate.weight)).sum();
        if total == 0 {
            return candidates[0].index;
        }
        let mut best = candidates[0].index;
        let mut best_weight = i64::MIN;
        for candidate in candidates {
            let weight = &mut current[candidate.index];
            *weight += i64::from(candidate.weight);
            if *weight > best_weight {
                best_weight = *weight;
                best = candidate.index;
            }
        }
        current[best] -= total;
        best
    }
}
