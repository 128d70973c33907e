//! In-memory usage totals per user, team, key, model and provider, by minute and by
//! day, in bounded memory.
//!
//! The bound: every group a bucket holds (a user, a model, ... in one minute or one day)
//! is charged [`GROUP_OVERHEAD_BYTES`] plus the length of its name, and the charges of
//! the minute buckets and of the day buckets may each reach half of the budget
//! ([`UsageAggregates::new`]). A group that would pass it is folded: its record adds up
//! under `(other)` in that bucket, and [`UsageAggregates::folded_records`] counts it.
//! Group names come from clients (`x-loom-user`, a body's `user`), so the charge follows
//! their length: a long name costs its bytes, and rotating names fold once the budget is
//! spent. Old buckets age out (minutes after a day, days after 400) and release their
//! charge. Outside the budget, each bucket holds a fixed amount under a kilobyte (its
//! `(other)` totals and empty tables), and there are at most 1,440 + 400 buckets.
//!
//! Two halves, so a year of daily totals cannot starve the last day's minutes, and a
//! burst of names in one minute, once its minutes age out, leaves the minute half free.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::record::{Outcome, UsageRecord, unix_millis_of};
use super::series::{self, SeriesRows, UsageSeries};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// Minute buckets kept: one day.
const MINUTES_KEPT: i64 = 24 * 60;
/// Day buckets kept: a little over a year.
const DAYS_KEPT: i64 = 400;
/// What one held group costs beyond its name's bytes: its hash-table slot (name and
/// totals, 120 bytes, plus a control byte) at the lowest load a table has after growing
/// (7/16: each group pays for 16/7 slots, 277 bytes), and its name's allocation (at most
/// 24 bytes of header and rounding). An upper estimate, so the charge is at least what
/// the heap holds.
pub const GROUP_OVERHEAD_BYTES: usize = 304;
/// The default memory budget of the aggregates (32 MiB): about 100,000 groups with short
/// names, half for the last day's minutes and half for the daily totals.
pub const DEFAULT_MAX_AGGREGATE_BYTES: usize = 32 * 1024 * 1024;
/// The group that collects the records whose group did not fit the memory budget.
pub const OTHER_GROUP: &str = "(other)";
/// The group of records without a value (e.g. no user).
pub const NONE_GROUP: &str = "(none)";

/// What usage can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// End user.
    User,
    /// Team.
    Team,
    /// Virtual key id.
    Key,
    /// Model the client asked for.
    Model,
    /// Provider that answered.
    Provider,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 5] =
        [Dimension::User, Dimension::Team, Dimension::Key, Dimension::Model, Dimension::Provider];

    /// Parses `user`, `team`, `key`, `model` or `provider`.
    pub fn parse(name: &str) -> Option<Dimension> {
        Some(match name {
            "user" => Dimension::User,
            "team" => Dimension::Team,
            "key" => Dimension::Key,
            "model" => Dimension::Model,
            "provider" => Dimension::Provider,
            _ => return None,
        })
    }

    /// The ledger column holding this dimension.
    pub fn column(self) -> &'static str {
        match self {
            Dimension::User => "user",
            Dimension::Team => "team",
            Dimension::Key => "key_id",
            Dimension::Model => "model_requested",
            Dimension::Provider => "provider",
        }
    }

    /// The position of this dimension in [`Dimension::ALL`].
    fn index(self) -> usize {
        self as usize
    }

    fn value(self, record: &UsageRecord) -> &str {
        let value = match self {
            Dimension::User => record.user.as_deref(),
            Dimension::Team => record.team.as_deref(),
            Dimension::Key => record.key_id.as_deref(),
            Dimension::Model => Some(record.model_requested.as_str()),
            Dimension::Provider => record.provider.as_deref(),
        };
        value.unwrap_or(NONE_GROUP)
    }
}

/// Totals of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    /// Requests.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Cost in USD.
    pub cost: f64,
    /// Requests that failed ([`Outcome::Error`]).
    pub errors: u64,
    /// Requests answered from Loom's cache.
    pub cache_hits: u64,
    /// What the cache hits would have cost from their providers, in USD.
    pub saved_cost: f64,
    /// Requests refused by a rate limit.
    pub rate_limited: u64,
    /// Requests refused by a budget.
    pub over_budget: u64,
    /// Requests refused by a security check.
    pub guard_blocked: u64,
    /// Requests a security check acted on and let through (flagged, redacted, ...).
    pub guard_flagged: u64,
}

/// The kind of a rate limit's refusal ([`UsageRecord::refusal`] is the kind, or the kind,
/// `:` and details such as `rate_limit:team:requests`).
pub const RATE_LIMIT_REFUSAL: &str = "rate_limit";
/// The kind of a budget's refusal.
pub const BUDGET_REFUSAL: &str = "budget";
/// The kind of a security check's refusal.
pub const GUARD_REFUSAL: &str = "guard";

/// Whether `reason` is a refusal of `kind`: the kind alone, or followed by `:` and details.
pub fn is_refusal_of(reason: &str, kind: &str) -> bool {
    reason.strip_prefix(kind).is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

impl UsageTotals {
    // Sums saturate rather than wrap: a total pinned at the maximum is visibly wrong, one
    // that wrapped looks like a small, plausible number.
    fn add(&mut self, record: &UsageRecord) {
        let refused_by =
            |kind: &str| record.refusal.as_deref().is_some_and(|reason| is_refusal_of(reason, kind));
        self.requests = self.requests.saturating_add(1);
        self.input_tokens = self.input_tokens.saturating_add(record.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(record.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(record.cached_tokens);
        self.cost = finite_sum(self.cost, record.cost);
        self.errors = self.errors.saturating_add(u64::from(record.outcome == Outcome::Error));
        self.cache_hits = self.cache_hits.saturating_add(u64::from(record.cache_hit));
        self.saved_cost = finite_sum(self.saved_cost, record.saved_cost);
        self.rate_limited = self.rate_limited.saturating_add(u64::from(refused_by(RATE_LIMIT_REFUSAL)));
        self.over_budget = self.over_budget.saturating_add(u64::from(refused_by(BUDGET_REFUSAL)));
        self.guard_blocked = self.guard_blocked.saturating_add(u64::from(refused_by(GUARD_REFUSAL)));
        self.guard_flagged = self.guard_flagged.saturating_add(u64::from(record.guard.is_some()));
    }

    /// Adds `other`'s totals to these.
    pub fn merge(&mut self, other: &UsageTotals) {
        self.requests = self.requests.saturating_add(other.requests);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
        self.cost = finite_sum(self.cost, other.cost);
        self.errors = self.errors.saturating_add(other.errors);
        self.cache_hits = self.cache_hits.saturating_add(other.cache_hits);
        self.saved_cost = finite_sum(self.saved_cost, other.saved_cost);
        self.rate_limited = self.rate_limited.saturating_add(other.rate_limited);
        self.over_budget = self.over_budget.saturating_add(other.over_budget);
        self.guard_blocked = self.guard_blocked.saturating_add(other.guard_blocked);
        self.guard_flagged = self.guard_flagged.saturating_add(other.guard_flagged);
    }
}

/// `a + b` clamped to the finite range (an addend that is not finite counts 0), so a
/// cost always serializes as a JSON number.
pub(crate) fn finite_sum(a: f64, b: f64) -> f64 {
    let b = if b.is_finite() { b } else { 0.0 };
    clamp_finite(a + b)
}

/// An overflowed sum as the largest finite number of its sign; NaN as 0.
pub(crate) fn clamp_finite(sum: f64) -> f64 {
    if sum.is_nan() { 0.0 } else { sum.clamp(f64::MIN, f64::MAX) }
}

/// One row of a grouped usage report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageGroup {
    /// The group's value (a user, a model, ...).
    pub group: String,
    /// Its totals.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// What holding the group `name` charges to the budget.
pub fn group_charge(name: &str) -> usize {
    GROUP_OVERHEAD_BYTES.saturating_add(name.len())
}

/// Totals per group of one dimension in one bucket. Hashed with foldhash: every request
/// adds to ten of these maps, and SipHash was most of it.
#[derive(Default)]
struct Groups {
    named: HashMap<String, UsageTotals, foldhash::fast::RandomState>,
    /// The records whose group did not fit the budget, added up.
    other: UsageTotals,
}

/// One minute's or one day's totals, one [`Groups`] per dimension (indexed by
/// [`Dimension::index`]).
#[derive(Default)]
struct Bucket {
    dimensions: [Groups; Dimension::ALL.len()],
    /// What its named groups are charged.
    charged: usize,
}

/// The buckets of one width (minutes or days) and their share of the budget.
struct Tier {
    buckets: BTreeMap<i64, Bucket>,
    width_ms: i64,
    kept: i64,
    charged: usize,
    max_bytes: usize,
    /// Every record in a bucket starting after this is held: older buckets may have
    /// been dropped (or never kept).
    whole_after: i64,
}

impl Tier {
    fn new(width_ms: i64, kept: i64, max_bytes: usize) -> Tier {
        Tier { buckets: BTreeMap::new(), width_ms, kept, charged: 0, max_bytes, whole_after: i64::MIN }
    }

    /// Adds `record` (made at `at`, Unix ms, at least 0) to its bucket; false when a group
    /// of it was folded into `(other)`.
    fn add(&mut self, at: i64, record: &UsageRecord) -> bool {
        // `at` is at least 0 (see `unix_millis_of`): this cannot overflow.
        let start = at - at.rem_euclid(self.width_ms);
        if let Entry::Vacant(bucket) = self.buckets.entry(start) {
            // Old buckets can only fall out of the window when a new one starts, so the
            // (whole-map) trim runs once per bucket, not for every record; before the new
            // record is added, so it can use what they release.
            bucket.insert(Bucket::default());
            self.trim();
        }
        let Some(bucket) = self.buckets.get_mut(&start) else {
            return true; // older than the window: no bucket of this tier counts it
        };
        let mut kept_whole = true;
        for dimension in Dimension::ALL {
            let groups = &mut bucket.dimensions[dimension.index()];
            let name = dimension.value(record);
            if let Some(totals) = groups.named.get_mut(name) {
                totals.add(record);
                continue;
            }
            let charge = group_charge(name);
            if self.charged.saturating_add(charge) <= self.max_bytes {
                self.charged += charge;
                bucket.charged += charge;
                groups.named.entry(name.to_owned()).or_default().add(record);
            } else {
                groups.other.add(record);
                kept_whole = false;
            }
        }
        kept_whole
    }

    /// Drops the buckets that fell out of the window, releasing their charge.
    fn trim(&mut self) {
        let Some(newest) = self.buckets.keys().next_back().copied() else { return };
        let oldest_kept = newest.saturating_sub(self.kept * self.width_ms);
        self.whole_after = self.whole_after.max(oldest_kept);
        let mut released = 0;
        self.buckets.retain(|start, bucket| {
            let keep = *start > oldest_kept;
            if !keep {
                released += bucket.charged;
            }
            keep
        });
        self.charged = self.charged.saturating_sub(released);
    }

    fn groups(&self) -> usize {
        let named =
            |bucket: &Bucket| bucket.dimensions.iter().map(|groups| groups.named.len()).sum::<usize>();
        self.buckets.values().map(named).sum()
    }
}

struct Tiers {
    minutes: Tier,
    days: Tier,
}

/// Usage totals kept in memory, within a memory budget (see the module docs).
pub struct UsageAggregates {
    tiers: Mutex<Tiers>,
    folded: AtomicU64,
}

impl Default for UsageAggregates {
    fn default() -> Self {
        UsageAggregates::new(DEFAULT_MAX_AGGREGATE_BYTES)
    }
}

impl UsageAggregates {
    /// Empty aggregates whose groups are charged at most `max_bytes` in all (half for
    /// the minute buckets, half for the day buckets).
    pub fn new(max_bytes: usize) -> Self {
        let half = max_bytes / 2;
        UsageAggregates {
            tiers: Mutex::new(Tiers {
                minutes: Tier::new(MINUTE_MS, MINUTES_KEPT, half),
                days: Tier::new(DAY_MS, DAYS_KEPT, max_bytes - half),
            }),
            folded: AtomicU64::new(0),
        }
    }

    /// Adds one record.
    pub fn add(&self, record: &UsageRecord) {
        let at = unix_millis_of(record.time);
        let mut tiers = self.lock();
        let whole_in_minutes = tiers.minutes.add(at, record);
        let whole_in_days = tiers.days.add(at, record);
        if !(whole_in_minutes && whole_in_days) {
            self.folded.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records added at least partly to `(other)` (one of their groups did not fit the
    /// budget) since the start.
    pub fn folded_records(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }

    /// What the groups held now are charged: never more than the budget.
    pub fn held_bytes(&self) -> usize {
        let tiers = self.lock();
        tiers.minutes.charged + tiers.days.charged
    }

    /// How many groups (named, in any bucket and dimension) are held now.
    pub fn held_groups(&self) -> usize {
        let tiers = self.lock();
        tiers.minutes.groups() + tiers.days.groups()
    }

    /// The memory budget of the groups, in bytes.
    pub fn max_bytes(&self) -> usize {
        let tiers = self.lock();
        tiers.minutes.max_bytes + tiers.days.max_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tiers> {
        self.tiers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Totals per group of `dimension` for records in `[from_ms, to_ms)`, largest cost
    /// first; what was folded is the group `(other)`. Minute buckets answer ranges they
    /// hold whole (within the last day), day buckets older ones; a bucket counts when its
    /// start lies in the range.
    pub fn report(&self, dimension: Dimension, from_ms: i64, to_ms: i64) -> Vec<UsageGroup> {
        if from_ms >= to_ms {
            return Vec::new();
        }
        let tiers = self.lock();
        let source = tiers.answering(from_ms);
        let mut merged: HashMap<&str, UsageTotals> = HashMap::new();
        for (_, bucket) in source.buckets.range(from_ms..to_ms) {
            let groups = &bucket.dimensions[dimension.index()];
            for (group, totals) in &groups.named {
                merged.entry(group.as_str()).or_default().merge(totals);
            }
            if groups.other.requests > 0 {
                merged.entry(OTHER_GROUP).or_default().merge(&groups.other);
            }
        }
        let mut groups: Vec<UsageGroup> = merged
            .into_iter()
            .map(|(group, totals)| UsageGroup { group: group.to_owned(), totals })
            .collect();
        sort_groups(&mut groups);
        groups
    }

    /// A usage series of `dimension` over `[from_ms, to_ms)`: each bucket of the tier that
    /// [`report`](Self::report) would read adds to the series bucket (`bucket_ms`, rounded
    /// up to a whole number of the tier's buckets, aligned to the Unix epoch) holding its
    /// start; the `limit` largest groups keep their names, the others add up as `(other)`.
    pub fn series(
        &self,
        dimension: Dimension,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
        limit: usize,
    ) -> UsageSeries {
        let tiers = self.lock();
        let source = tiers.answering(from_ms);
        let width = series::round_up_width(bucket_ms, source.width_ms);
        let mut rows = SeriesRows::default();
        if from_ms < to_ms {
            for (start, bucket) in source.buckets.range(from_ms..to_ms) {
                let groups = &bucket.dimensions[dimension.index()];
                let series_start = series::bucket_start(*start, width);
                for (group, totals) in &groups.named {
                    rows.add(series_start, group, totals);
                }
                if groups.other.requests > 0 {
                    rows.add(series_start, OTHER_GROUP, &groups.other);
                }
            }
        }
        drop(tiers);
        series::build(width, rows, limit)
    }
}

impl Tiers {
    /// The tier answering a range from `from_ms`: the minutes when they still hold every
    /// record from there on (a range within the last day, or any range while nothing
    /// has aged out), else the days.
    fn answering(&self, from_ms: i64) -> &Tier {
        if from_ms > self.minutes.whole_after { &self.minutes } else { &self.days }
    }
}

/// Largest cost first, then most requests, then by name.
pub fn sort_groups(groups: &mut [UsageGroup]) {
    groups.sort_by(|a, b| {
        b.totals
            .cost
            .total_cmp(&a.totals.cost)
            .then(b.totals.requests.cmp(&a.totals.requests))
            .then(a.group.cmp(&b.group))
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::accounting::record::UsageSource;

    fn record_at(minutes: u64, model: &str) -> UsageRecord {
        UsageRecord {
            request_id: Arc::from("r"),
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(minutes * 60),
            key_id: None,
            user: None,
            team: None,
            route: None,
            provider: None,
            model_requested: model.to_owned(),
            model_served: None,
            input_tokens: 1,
            output_tokens: 2,
            cached_tokens: 0,
            reasoning_tokens: 0,
            source: UsageSource::Reported,
            cost: 0.5,
            latency: Duration::ZERO,
            time_to_first_byte: None,
            status: 200,
            outcome: Outcome::Ok,
            saved_cost: 0.0,
            cache_hit: false,
            streamed: false,
            refusal: None,
            guard: None,
        }
    }

    fn minute_buckets(aggregates: &UsageAggregates) -> Vec<i64> {
        let tiers = aggregates.lock();
        tiers.minutes.buckets.keys().map(|start| start / MINUTE_MS).collect()
    }

    /// `record_at(0, "m")` made `seconds` after the epoch by `user`.
    fn by_user(seconds: u64, user: &str) -> UsageRecord {
        let mut record = record_at(0, "m");
        record.time = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        record.user = Some(Arc::from(user));
        record
    }

    /// The groups held and their charge, counted from the buckets' contents.
    fn recount(aggregates: &UsageAggregates) -> (usize, usize) {
        let tiers = aggregates.lock();
        let (mut groups, mut bytes) = (0, 0);
        for tier in [&tiers.minutes, &tiers.days] {
            for dimension in tier.buckets.values().flat_map(|bucket| &bucket.dimensions) {
                groups += dimension.named.len();
                bytes += dimension.named.keys().map(|name| group_charge(name)).sum::<usize>();
            }
        }
        (groups, bytes)
    }

    fn requests_by_group(groups: &[UsageGroup]) -> Vec<(&str, u64)> {
        groups.iter().map(|group| (group.group.as_str(), group.totals.requests)).collect()
    }

    #[test]
    fn a_refusal_is_of_a_kind_alone_or_with_details() {
        assert!(is_refusal_of("rate_limit", RATE_LIMIT_REFUSAL));
        assert!(is_refusal_of("rate_limit:team:requests", RATE_LIMIT_REFUSAL));
        assert!(!is_refusal_of("rate_limiter", RATE_LIMIT_REFUSAL));
        assert!(!is_refusal_of("budget:key:cost", GUARD_REFUSAL));
        assert!(!is_refusal_of("", BUDGET_REFUSAL));
    }
    #[test]
    fn a_group_past_the_budget_folds_into_other() {
        // Each half has room for the first record's five groups and two more users.
        let first: usize = ["u0", NONE_GROUP, NONE_GROUP, "m", NONE_GROUP].map(group_charge).iter().sum();
        let half = first + 2 * group_charge("u1");
        let aggregates = UsageAggregates::new(2 * half);
        for user in ["u0", "u1", "u2", "u3", "u1", "u4"] {
            aggregates.add(&by_user(0, user));
        }
        assert_eq!((aggregates.held_groups(), aggregates.held_bytes()), (2 * 7, 2 * half));
        assert_eq!(recount(&aggregates), (2 * 7, 2 * half));
        assert_eq!(aggregates.folded_records(), 2, "u3 and u4 did not fit");
        let expected = vec![("(other)", 2), ("u1", 2), ("u0", 1), ("u2", 1)];
        assert_eq!(requests_by_group(&aggregates.report(Dimension::User, 0, MINUTE_MS)), expected);
        assert_eq!(requests_by_group(&aggregates.report(Dimension::User, 0, 2 * DAY_MS)), expected);
        // Groups already held keep adding up exactly; only new ones fold.
        assert_eq!(requests_by_group(&aggregates.report(Dimension::Model, 0, MINUTE_MS)), vec![("m", 6)]);
    }

    #[test]
    fn a_nameless_budget_folds_everything_and_loses_no_total() {
        let aggregates = UsageAggregates::new(0);
        aggregates.add(&by_user(0, "u0"));
        aggregates.add(&by_user(0, "u1"));
        assert_eq!(
            (aggregates.held_groups(), aggregates.held_bytes(), aggregates.folded_records()),
            (0, 0, 2)
        );
        assert_eq!(
            requests_by_group(&aggregates.report(Dimension::Team, 0, MINUTE_MS)),
            vec![("(other)", 2)]
        );
    }

    #[test]
    fn rotating_identities_never_pass_the_budget() {
        const USERS: u64 = 200_000;
        let max_bytes = 1024 * 1024;
        let aggregates = UsageAggregates::new(max_bytes);
        // A new user every 3 seconds for a week of simulated time: minute buckets fill the
        // minute half, age out after a day and are replaced; the first day fills the day half.
        for n in 0..USERS {
            aggregates.add(&by_user(n * 3, &format!("user-{n:06}")));
            if n % 1_000 == 999 {
                let held = (aggregates.held_groups(), aggregates.held_bytes());
                assert!(held.1 <= max_bytes, "{held:?} after {n} users");
                assert_eq!(recount(&aggregates), held, "the charge is what the buckets hold");
            }
        }
        let (groups, bytes) = recount(&aggregates);
        assert_eq!((aggregates.held_groups(), aggregates.held_bytes()), (groups, bytes));
        assert!(bytes <= max_bytes, "{bytes}");
        {
            // It is the budget that stopped them: the day half is spent to within one user.
            let tiers = aggregates.lock();
            assert!(tiers.days.charged > tiers.days.max_bytes - group_charge("user-000000"));
        }
        // Folding loses no totals: every request is in the week's report, most under `(other)`.
        let week = aggregates.report(Dimension::User, 0, 8 * DAY_MS);
        assert_eq!(week.iter().map(|group| group.totals.requests).sum::<u64>(), USERS);
        let other = week.iter().find(|group| group.group == OTHER_GROUP).map(|group| group.totals.requests);
        assert_eq!(other, Some(USERS - (week.len() as u64 - 1)), "each named user made one request");
        assert!(aggregates.folded_records() >= other.unwrap_or(0));
    }

    #[test]
    fn totals_saturate_and_costs_stay_finite() {
        let aggregates = UsageAggregates::default();
        let mut huge = record_at(0, "m");
        (huge.input_tokens, huge.output_tokens, huge.cached_tokens, huge.cost) =
            (u64::MAX, u64::MAX - 1, u64::MAX, f64::MAX);
        huge.saved_cost = f64::MAX;
        aggregates.add(&huge);
        aggregates.add(&huge);
        (huge.cost, huge.saved_cost) = (f64::NAN, f64::INFINITY);
        aggregates.add(&huge);
        let groups = aggregates.report(Dimension::Model, 0, MINUTE_MS);
        assert_eq!(
            groups,
            vec![UsageGroup {
                group: "m".to_owned(),
                totals: UsageTotals {
                    requests: 3,
                    input_tokens: u64::MAX,
                    output_tokens: u64::MAX,
                    cached_tokens: u64::MAX,
                    cost: f64::MAX,
                    saved_cost: f64::MAX,
                    ..UsageTotals::default()
                },
            }]
        );
        assert_eq!(aggregates.report(Dimension::Model, MINUTE_MS, 0), vec![], "an empty range, no panic");
        assert_eq!(aggregates.report(Dimension::Model, i64::MAX, i64::MIN), vec![]);
    }

    /// One record of each kind (an error, a cache hit saving 0.25, refusals by a rate limit,
    /// a budget and a security check, one a check flagged, one plain), all of model `m`
    /// at time 0, and their totals.
    pub(crate) fn one_record_of_each_kind() -> (Vec<UsageRecord>, UsageTotals) {
        let plain = record_at(0, "m");
        let with = |change: &dyn Fn(&mut UsageRecord)| {
            let mut record = plain.clone();
            change(&mut record);
            record
        };
        let refused = |reason: &'static str| {
            with(&move |record| {
                (record.outcome, record.input_tokens, record.output_tokens, record.cost) =
                    (Outcome::Refused, 0, 0, 0.0);
                record.refusal = Some(Arc::from(reason));
            })
        };
        let records = vec![
            plain.clone(),
            with(&|record| (record.outcome, record.status) = (Outcome::Error, 502)),
            with(&|record| (record.cache_hit, record.saved_cost, record.cost) = (true, 0.25, 0.0)),
            refused("rate_limit:team:requests"),
            refused("budget:key:cost"),
            refused("guard:injection"),
            with(&|record| record.guard = Some(Arc::from("pii:redact"))),
        ];
        let expected = UsageTotals {
            requests: 7,
            input_tokens: 4,
            output_tokens: 8,
            cached_tokens: 0,
            cost: 1.5,
            errors: 1,
            cache_hits: 1,
            saved_cost: 0.25,
            rate_limited: 1,
            over_budget: 1,
            guard_blocked: 1,
            guard_flagged: 1,
        };
        (records, expected)
    }

    #[test]
    fn each_kind_of_record_counts_in_its_own_total() {
        let (records, expected) = one_record_of_each_kind();
        let aggregates = UsageAggregates::default();
        for record in &records {
            aggregates.add(record);
        }
        let group = UsageGroup { group: "m".to_owned(), totals: expected };
        assert_eq!(aggregates.report(Dimension::Model, 0, MINUTE_MS), vec![group.clone()]);
        assert_eq!(aggregates.report(Dimension::Model, 0, DAY_MS), vec![group], "the day buckets too");
    }

    #[test]
    fn the_group_overhead_covers_a_slot_at_the_lowest_load() {
        // A slot and its control byte, 16/7 of them per group, plus malloc's header and
        // rounding of the name (8 + 15 bytes with glibc).
        let slot = std::mem::size_of::<(String, UsageTotals)>() + 1;
        assert_eq!(slot, 121);
        assert!(GROUP_OVERHEAD_BYTES >= (slot * 16).div_ceil(7) + 24, "{GROUP_OVERHEAD_BYTES}");
    }

    #[test]
    fn dimension_indexes_follow_all() {
        for (position, dimension) in Dimension::ALL.into_iter().enumerate() {
            assert_eq!(dimension.index(), position);
        }
    }

    #[test]
    fn minute_buckets_older_than_a_day_are_dropped_when_a_new_minute_starts() {
        let aggregates = UsageAggregates::default();
        aggregates.add(&record_at(0, "a"));
        aggregates.add(&record_at(0, "a"));
        aggregates.add(&record_at(1, "b"));
        assert_eq!(minute_buckets(&aggregates), vec![0, 1]);
        // A day later: minute 0 falls out of the window, minute 1 is still in it.
        aggregates.add(&record_at(24 * 60, "c"));
        assert_eq!(minute_buckets(&aggregates), vec![1, 24 * 60]);
        aggregates.add(&record_at(24 * 60 + 1, "c"));
        assert_eq!(minute_buckets(&aggregates), vec![24 * 60, 24 * 60 + 1]);
        // Days are kept: both records of day 0 and the ones of day 1 are in the day buckets.
        let days = aggregates.report(Dimension::Model, 0, 2 * DAY_MS);
        let requests: u64 = days.iter().map(|group| group.totals.requests).sum();
        assert_eq!(requests, 5);
    }
}
