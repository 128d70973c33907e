//! In-memory usage totals per user, team, key, model and provider, by minute and by
//! day. Bounded: old buckets age out, and each bucket keeps at most a fixed number of
//! groups (the rest add up under `(other)`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::record::{UsageRecord, unix_millis_of};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// Minute buckets kept: one day.
const MINUTES_KEPT: i64 = 24 * 60;
/// Day buckets kept: a little over a year.
const DAYS_KEPT: i64 = 400;
/// Distinct groups per dimension and bucket before the rest go to `(other)`.
pub const MAX_GROUPS_PER_BUCKET: usize = 10_000;
/// The group that collects what exceeds [`MAX_GROUPS_PER_BUCKET`].
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
}

impl UsageTotals {
    // Sums saturate rather than wrap: a total pinned at the maximum is visibly wrong, one
    // that wrapped looks like a small, plausible number.
    fn add(&mut self, record: &UsageRecord) {
        self.requests = self.requests.saturating_add(1);
        self.input_tokens = self.input_tokens.saturating_add(record.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(record.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(record.cached_tokens);
        self.cost = finite_sum(self.cost, record.cost);
    }

    fn merge(&mut self, other: &UsageTotals) {
        self.requests = self.requests.saturating_add(other.requests);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
        self.cost = finite_sum(self.cost, other.cost);
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

/// Totals per group, one map per dimension (indexed by [`Dimension::index`]). Hashed
/// with foldhash: every request adds to ten of these maps, and SipHash was most of it.
type Bucket = [HashMap<String, UsageTotals, foldhash::fast::RandomState>; Dimension::ALL.len()];

#[derive(Default)]
struct Buckets {
    minutes: BTreeMap<i64, Bucket>,
    days: BTreeMap<i64, Bucket>,
}

/// Usage totals kept in memory.
#[derive(Default)]
pub struct UsageAggregates {
    buckets: Mutex<Buckets>,
}

fn add_to(bucket: &mut Bucket, record: &UsageRecord) {
    for dimension in Dimension::ALL {
        let groups = &mut bucket[dimension.index()];
        let value = dimension.value(record);
        if let Some(totals) = groups.get_mut(value) {
            totals.add(record);
            continue;
        }
        let key = if groups.len() < MAX_GROUPS_PER_BUCKET { value } else { OTHER_GROUP };
        groups.entry(key.to_owned()).or_default().add(record);
    }
}

impl UsageAggregates {
    /// Empty aggregates.
    pub fn new() -> Self {
        UsageAggregates::default()
    }

    /// Adds one record.
    pub fn add(&self, record: &UsageRecord) {
        let at = unix_millis_of(record.time);
        // `at` is at least 0 (see `unix_millis_of`): these cannot overflow.
        let minute = at - at.rem_euclid(MINUTE_MS);
        let day = at - at.rem_euclid(DAY_MS);
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Old buckets can only fall out of the window when a new one starts, so the
        // (whole-map) trim runs once a minute, not for every record.
        let new_minute = !buckets.minutes.contains_key(&minute);
        let new_day = !buckets.days.contains_key(&day);
        add_to(buckets.minutes.entry(minute).or_default(), record);
        add_to(buckets.days.entry(day).or_default(), record);
        if new_minute {
            let newest_minute = buckets.minutes.keys().next_back().copied().unwrap_or(minute);
            let oldest_kept = newest_minute.saturating_sub(MINUTES_KEPT * MINUTE_MS);
            buckets.minutes.retain(|start, _| *start > oldest_kept);
        }
        if new_day {
            let newest_day = buckets.days.keys().next_back().copied().unwrap_or(day);
            let oldest_kept = newest_day.saturating_sub(DAYS_KEPT * DAY_MS);
            buckets.days.retain(|start, _| *start > oldest_kept);
        }
    }

    /// Totals per group of `dimension` for records in `[from_ms, to_ms)`, largest cost
    /// first. Minute buckets answer ranges within the last day, day buckets older ones;
    /// a bucket counts when its start lies in the range.
    pub fn report(&self, dimension: Dimension, from_ms: i64, to_ms: i64) -> Vec<UsageGroup> {
        if from_ms >= to_ms {
            return Vec::new();
        }
        let buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let oldest_minute = buckets.minutes.keys().next().copied().unwrap_or(i64::MAX);
        let source = if from_ms >= oldest_minute { &buckets.minutes } else { &buckets.days };
        let mut merged: HashMap<&str, UsageTotals> = HashMap::new();
        for (_, bucket) in source.range(from_ms..to_ms) {
            for (group, totals) in &bucket[dimension.index()] {
                merged.entry(group.as_str()).or_default().merge(totals);
            }
        }
        let mut groups: Vec<UsageGroup> = merged
            .into_iter()
            .map(|(group, totals)| UsageGroup { group: group.to_owned(), totals })
            .collect();
        sort_groups(&mut groups);
        groups
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
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::accounting::record::{Outcome, UsageSource};

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
            cache_hit: false,
            streamed: false,
        }
    }

    fn minute_buckets(aggregates: &UsageAggregates) -> Vec<i64> {
        let buckets = aggregates.buckets.lock().unwrap();
        buckets.minutes.keys().map(|start| start / MINUTE_MS).collect()
    }

    #[test]
    fn totals_saturate_and_costs_stay_finite() {
        let aggregates = UsageAggregates::new();
        let mut huge = record_at(0, "m");
        (huge.input_tokens, huge.output_tokens, huge.cached_tokens, huge.cost) =
            (u64::MAX, u64::MAX - 1, u64::MAX, f64::MAX);
        aggregates.add(&huge);
        aggregates.add(&huge);
        huge.cost = f64::NAN;
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
                },
            }]
        );
        assert_eq!(aggregates.report(Dimension::Model, MINUTE_MS, 0), vec![], "an empty range, no panic");
        assert_eq!(aggregates.report(Dimension::Model, i64::MAX, i64::MIN), vec![]);
    }

    #[test]
    fn dimension_indexes_follow_all() {
        for (position, dimension) in Dimension::ALL.into_iter().enumerate() {
            assert_eq!(dimension.index(), position);
        }
    }

    #[test]
    fn minute_buckets_older_than_a_day_are_dropped_when_a_new_minute_starts() {
        let aggregates = UsageAggregates::new();
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
