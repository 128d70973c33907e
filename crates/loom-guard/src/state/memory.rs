//! The in-process backend: GCRA buckets and budget periods in maps behind one mutex.
//!
//! The maps hash with foldhash, seeded per process; they are bounded, so a client
//! choosing colliding names cannot grow them.
//!
//! Bounded: when the maps hold more than `max_entries` buckets, buckets that no longer
//! matter are swept (a TAT in the past is a full bucket, the same as none; a budget period
//! over, with nothing in flight), then the most permissive are evicted down to 90%: the
//! fullest rate-limit buckets first, then the least-spent budget periods.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::RandomState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{Outcome, Reservation, increment_and_tolerance};
use crate::budgets::{BudgetCheck, BudgetUnit, BudgetWindow};
use crate::gcra::{self, Verdict};
use crate::limits::LimitCheck;
use crate::time::unix_micros;

/// Limits and budgets of one process.
#[derive(Debug)]
pub struct MemoryState {
    buckets: Mutex<Buckets>,
    max_entries: usize,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Buckets {
    /// TAT per rate-limit bucket (µs since the epoch).
    tats: HashMap<String, u64, RandomState>,
    budgets: HashMap<String, BudgetEntry, RandomState>,
}

#[derive(Debug, Default)]
struct BudgetEntry {
    /// Spend per sub-window.
    spent: BTreeMap<u64, u64>,
    /// Spend seeded from elsewhere, counted until `seeded_until`.
    seeded: u64,
    seeded_until: u64,
    /// In-flight reservations: amount and expiry (µs).
    held: HashMap<String, (u64, u64), RandomState>,
    held_total: u64,
    /// When the spend stops mattering (µs).
    keep_until: u64,
}

impl BudgetEntry {
    fn sweep(&mut self, now: u64) {
        if self.held.is_empty() {
            return;
        }
        let mut freed = 0;
        self.held.retain(|_, (amount, expires)| {
            let live = *expires > now;
            if !live {
                freed += *amount;
            }
            live
        });
        self.held_total = self.held_total.saturating_sub(freed);
    }

    fn spent(&self, window: BudgetWindow, now: u64) -> u64 {
        let seeded = if now < self.seeded_until { self.seeded } else { 0 };
        let recorded: u64 =
            self.spent.iter().filter(|(slot, _)| window.counts(**slot)).map(|(_, amount)| *amount).sum();
        recorded.saturating_add(seeded)
    }

    fn matters(&self, now: u64) -> bool {
        !self.held.is_empty() || self.keep_until > now || self.seeded_until > now
    }

    /// How much spend would be lost by evicting it.
    fn weight(&self) -> u64 {
        self.spent.values().sum::<u64>().saturating_add(self.seeded).saturating_add(self.held_total)
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl MemoryState {
    /// An empty state bounded to `max_entries` buckets (at least 1).
    pub fn new(max_entries: usize) -> Self {
        MemoryState { buckets: Mutex::default(), max_entries: max_entries.max(1), next_id: AtomicU64::new(1) }
    }

    /// How many buckets are held now.
    pub fn len(&self) -> usize {
        let buckets = self.lock();
        buckets.tats.len() + buckets.budgets.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Buckets> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the process' limits: keep going.
        self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn next_reservation_id(&self) -> String {
        format!("m{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn acquire(
        &self,
        limits: &[LimitCheck],
        budgets: &[BudgetCheck],
        ttl: Duration,
        id: &str,
    ) -> Outcome {
        self.acquire_at(unix_micros(SystemTime::now()), limits, budgets, ttl, id)
    }

    pub(crate) fn acquire_at(
        &self,
        now: u64,
        limits: &[LimitCheck],
        budgets: &[BudgetCheck],
        ttl: Duration,
        id: &str,
    ) -> Outcome {
        let mut buckets = self.lock();
        let mut ahead = Vec::with_capacity(limits.len());
        let mut new_tats = Vec::with_capacity(limits.len());
        let mut refusal = None;
        for (index, check) in limits.iter().enumerate() {
            let tat = buckets.tats.get(&check.bucket).copied().unwrap_or(0);
            ahead.push(tat.saturating_sub(now));
            let (increment, tolerance) = increment_and_tolerance(check);
            match gcra::check(tat, now, increment, tolerance) {
                Verdict::Allow { new_tat } => new_tats.push(new_tat),
                Verdict::Wait { retry_after } => {
                    refusal.get_or_insert((index, retry_after, false));
                }
                Verdict::Never => {
                    refusal.get_or_insert((index, micros(check.period), true));
                }
            }
        }
        if let Some((index, retry_after, too_large)) = refusal {
            return Outcome::Limited { index, retry_after, too_large, ahead };
        }
        for (index, check) in budgets.iter().enumerate() {
            let (spent, in_flight) = match buckets.budgets.get_mut(&check.bucket) {
                Some(entry) => {
                    entry.sweep(now);
                    (entry.spent(check.window, now), entry.held_total)
                }
                None => (0, 0),
            };
            let used = spent.saturating_add(in_flight);
            // Exhausted refuses even a request that reserves nothing (so a budget of 0 refuses all).
            if used >= check.limit || used.saturating_add(check.reserve) > check.limit {
                return Outcome::OverBudget { index, spent, in_flight };
            }
        }
        for (check, new_tat) in limits.iter().zip(&new_tats) {
            if *new_tat > now {
                // The bucket's name is copied only the first time.
                match buckets.tats.get_mut(&check.bucket) {
                    Some(tat) => *tat = *new_tat,
                    None => {
                        buckets.tats.insert(check.bucket.clone(), *new_tat);
                    }
                }
            }
        }
        let expires = now.saturating_add(micros(ttl));
        for check in budgets {
            let entry = buckets.budgets.entry(check.bucket.clone()).or_default();
            if check.reserve > 0 {
                entry.held.insert(id.to_owned(), (check.reserve, expires));
                entry.held_total = entry.held_total.saturating_add(check.reserve);
            }
            entry.keep_until = entry.keep_until.max(expires).max(now.saturating_add(micros(check.ttl)));
        }
        self.bound(&mut buckets, now);
        Outcome::Allowed { ahead: new_tats.iter().map(|tat| tat.saturating_sub(now)).collect() }
    }

    pub(crate) fn settle(&self, reservation: &Reservation, actual_tokens: u64, actual_nano_usd: u64) {
        self.settle_at(unix_micros(SystemTime::now()), reservation, actual_tokens, actual_nano_usd);
    }

    pub(crate) fn settle_at(
        &self,
        now: u64,
        reservation: &Reservation,
        actual_tokens: u64,
        actual_nano_usd: u64,
    ) {
        let mut buckets = self.lock();
        for limit in &reservation.limits {
            let delta = limit.settle_delta(actual_tokens);
            if delta == 0 {
                continue;
            }
            let tat = buckets.tats.get(&limit.bucket).copied().unwrap_or(0);
            match gcra::adjust(tat, now, delta) {
                0 => buckets.tats.remove(&limit.bucket),
                new_tat => buckets.tats.insert(limit.bucket.clone(), new_tat),
            };
        }
        for budget in &reservation.budgets {
            let entry = buckets.budgets.entry(budget.bucket.clone()).or_default();
            entry.sweep(now);
            if let Some((amount, _)) = entry.held.remove(&reservation.id) {
                entry.held_total = entry.held_total.saturating_sub(amount);
            }
            let actual = budget.actual(actual_tokens, actual_nano_usd);
            if actual > 0 {
                let slot = entry.spent.entry(budget.window.slot).or_default();
                *slot = slot.saturating_add(actual);
                entry.spent.retain(|slot, _| budget.window.counts(*slot));
                entry.keep_until = entry.keep_until.max(now.saturating_add(micros(budget.ttl)));
            }
        }
        self.bound(&mut buckets, now);
    }

    pub(crate) fn budget_amounts(&self, budgets: &[BudgetCheck]) -> Vec<(u64, u64)> {
        self.budget_amounts_at(unix_micros(SystemTime::now()), budgets)
    }

    fn budget_amounts_at(&self, now: u64, budgets: &[BudgetCheck]) -> Vec<(u64, u64)> {
        let mut buckets = self.lock();
        budgets
            .iter()
            .map(|check| match buckets.budgets.get_mut(&check.bucket) {
                Some(entry) => {
                    entry.sweep(now);
                    (entry.spent(check.window, now), entry.held_total)
                }
                None => (0, 0),
            })
            .collect()
    }

    pub(crate) fn seed_spend(&self, bucket: &str, _unit: BudgetUnit, amount: u64, resets_at: SystemTime) {
        let now = unix_micros(SystemTime::now());
        let until = unix_micros(resets_at);
        let mut buckets = self.lock();
        let entry = buckets.budgets.entry(bucket.to_owned()).or_default();
        entry.seeded = if entry.seeded_until > now { entry.seeded.saturating_add(amount) } else { amount };
        entry.seeded_until = entry.seeded_until.max(until);
        entry.keep_until = entry.keep_until.max(until);
        self.bound(&mut buckets, now);
    }

    /// Keeps the maps within `max_entries` (see the module doc).
    fn bound(&self, buckets: &mut Buckets, now: u64) {
        if buckets.tats.len() + buckets.budgets.len() <= self.max_entries {
            return;
        }
        buckets.tats.retain(|_, tat| *tat > now);
        buckets.budgets.retain(|_, entry| {
            entry.sweep(now);
            entry.matters(now)
        });
        // Evict down to 90%, so the sweep's cost is spread over many inserts.
        let target = self.max_entries - self.max_entries / 10;
        let excess = (buckets.tats.len() + buckets.budgets.len()).saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut fullest: Vec<(u64, String)> =
            buckets.tats.iter().map(|(name, tat)| (*tat, name.clone())).collect();
        fullest.sort_unstable();
        for (_, name) in fullest.into_iter().take(excess) {
            buckets.tats.remove(&name);
        }
        let excess = (buckets.tats.len() + buckets.budgets.len()).saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut lightest: Vec<(u64, String)> =
            buckets.budgets.iter().map(|(name, entry)| (entry.weight(), name.clone())).collect();
        lightest.sort_unstable();
        for (_, name) in lightest.into_iter().take(excess) {
            buckets.budgets.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BudgetScope, Scope};
    use crate::limits::LimitKind;
    use crate::state::{Outcome, Reservation};

    const SECOND: u64 = 1_000_000;
    const T0: u64 = 1_800_000_000 * SECOND;

    fn limit(bucket: &str, kind: LimitKind, limit: u64, burst: u64, cost: u64) -> LimitCheck {
        LimitCheck {
            bucket: bucket.to_owned(),
            scope: Scope::Key,
            kind,
            limit,
            period: Duration::from_secs(60),
            burst,
            cost,
        }
    }

    fn budget(bucket: &str, limit: u64, reserve: u64) -> BudgetCheck {
        BudgetCheck {
            bucket: bucket.to_owned(),
            scope: BudgetScope::Team,
            name: "team eng daily tokens".to_owned(),
            unit: BudgetUnit::Tokens,
            limit,
            reserve,
            resets_at: SystemTime::UNIX_EPOCH,
            ttl: Duration::from_secs(86_400),
            window: BudgetWindow { slot: 0, slots: 1 },
        }
    }

    fn acquire(
        state: &MemoryState,
        now: u64,
        limits: &[LimitCheck],
        budgets: &[BudgetCheck],
    ) -> Option<Reservation> {
        let id = state.next_reservation_id();
        match state.acquire_at(now, limits, budgets, Duration::from_secs(60), &id) {
            Outcome::Allowed { .. } => Some(Reservation::new(id, limits, budgets, Duration::from_secs(60))),
            _ => None,
        }
    }

    #[test]
    fn ten_per_minute_allows_ten_at_once_and_the_eleventh_waits_exactly_six_seconds() {
        let state = MemoryState::new(100);
        let rpm = [limit("rl:key:a:rpm:10", LimitKind::Requests, 10, 10, 1)];
        for _ in 0..10 {
            assert!(acquire(&state, T0, &rpm, &[]).is_some());
        }
        match state.acquire_at(T0, &rpm, &[], Duration::from_secs(60), "x") {
            Outcome::Limited { index: 0, retry_after, too_large: false, ahead } => {
                assert_eq!(retry_after, 6 * SECOND);
                assert_eq!(ahead, [60 * SECOND]);
            }
            other => panic!("{other:?}"),
        }
        assert!(acquire(&state, T0 + 6 * SECOND, &rpm, &[]).is_some());
    }

    #[test]
    fn token_settles_refund_below_and_charge_above_the_reservation() {
        let state = MemoryState::new(100);
        let reserve = [limit("rl:key:a:tpm:1000", LimitKind::Tokens, 1000, 1000, 1000)];
        let reservation = acquire(&state, T0, &reserve, &[]).unwrap();
        state.settle_at(T0, &reservation, 100, 0);
        // 900 came back: 900 fit, 901 do not.
        let fits = [limit("rl:key:a:tpm:1000", LimitKind::Tokens, 1000, 1000, 900)];
        let too_many = [limit("rl:key:a:tpm:1000", LimitKind::Tokens, 1000, 1000, 901)];
        assert!(acquire(&state, T0, &too_many, &[]).is_none());
        let second = acquire(&state, T0, &fits, &[]).unwrap();
        // Settling 950 of 900 reserved charges 50 more: the bucket now runs 50 over.
        state.settle_at(T0, &second, 950, 0);
        let tat = state.lock().tats["rl:key:a:tpm:1000"];
        assert_eq!(tat - T0, 60 * SECOND + 3 * SECOND);
    }

    #[test]
    fn budgets_count_spent_and_in_flight_and_expired_reservations_are_swept() {
        let state = MemoryState::new(100);
        let ten = |reserve| [budget("bd:team:eng:tokens:day:x", 10, reserve)];
        let first = acquire(&state, T0, &[], &ten(4)).unwrap();
        let second = acquire(&state, T0, &[], &ten(4)).unwrap();
        match state.acquire_at(T0, &[], &ten(3), Duration::from_secs(60), "x") {
            Outcome::OverBudget { index: 0, spent: 0, in_flight: 8 } => {}
            other => panic!("{other:?}"),
        }
        state.settle_at(T0, &first, 5, 0);
        assert_eq!(state.budget_amounts_at(T0, &ten(0)), [(5, 4)]);
        state.settle_at(T0, &second, 0, 0);
        assert_eq!(state.budget_amounts_at(T0, &ten(0)), [(5, 0)]);
        let third = acquire(&state, T0, &[], &ten(5)).unwrap();
        assert!(acquire(&state, T0, &[], &ten(1)).is_none());
        // The reservation expires after its ttl (60s): the budget is free again.
        assert_eq!(state.budget_amounts_at(T0 + 60 * SECOND, &ten(0)), [(5, 0)]);
        assert!(acquire(&state, T0 + 60 * SECOND, &[], &ten(5)).is_some());
        drop(third);
    }

    #[test]
    fn a_zero_budget_refuses_everything() {
        let state = MemoryState::new(100);
        assert!(acquire(&state, T0, &[], &[budget("bd:key:a:tokens:day:x", 0, 0)]).is_none());
    }

    #[test]
    fn seeded_spend_counts_until_it_resets() {
        let state = MemoryState::new(100);
        let until = SystemTime::now() + Duration::from_secs(3600);
        state.seed_spend("bd:team:eng:tokens:day:x", BudgetUnit::Tokens, 7, until);
        let now = unix_micros(SystemTime::now());
        let check = [budget("bd:team:eng:tokens:day:x", 10, 0)];
        assert_eq!(state.budget_amounts_at(now, &check), [(7, 0)]);
        assert_eq!(state.budget_amounts_at(unix_micros(until), &check), [(0, 0)]);
    }

    #[test]
    fn ten_thousand_random_subjects_stay_within_the_bound() {
        let state = MemoryState::new(1000);
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for step in 0..10_000u64 {
            // xorshift: a cheap deterministic stream of identities.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let user = format!("user-{seed:x}");
            let limits = [
                limit(&format!("rl:user:{user}:rpm:5"), LimitKind::Requests, 5, 5, 1),
                limit(&format!("rl:user:{user}:tpm:900"), LimitKind::Tokens, 900, 900, 100),
            ];
            let budgets = [budget(&format!("bd:user:{user}:tokens:day:x"), 1000, 10)];
            let reservation = acquire(&state, T0 + step, &limits, &budgets).unwrap();
            state.settle_at(T0 + step, &reservation, 50, 0);
            assert!(state.len() <= 1000, "{} buckets after {step} requests", state.len());
        }
        assert!(state.len() >= 900);
    }
}
