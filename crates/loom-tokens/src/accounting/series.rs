//! Usage over time: totals per group in buckets of equal width, aligned to the Unix
//! epoch, for charts. The in-memory aggregates and the ledger both produce
//! `SeriesRows`; `build` keeps the largest groups by name and sums the rest.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::aggregate::{OTHER_GROUP, UsageGroup, UsageTotals, sort_groups};

/// The most groups a series names (the rest add up under `(other)`).
pub const MAX_SERIES_GROUPS: usize = 50;

/// Usage per group over time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageSeries {
    /// The width of every bucket, in milliseconds.
    pub bucket_ms: i64,
    /// The largest groups first, `(other)` last.
    pub groups: Vec<SeriesGroup>,
}

/// One group's usage over time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesGroup {
    /// The group's value (a user, a model, ...), or `(other)`.
    pub group: String,
    /// Its totals over the whole range.
    pub totals: UsageTotals,
    /// Its buckets with requests, oldest first.
    pub points: Vec<SeriesPoint>,
}

/// One bucket of a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Where the bucket starts, in milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// The group's totals in this bucket.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// Totals per group and bucket start, as they are read.
#[derive(Debug, Default)]
pub(crate) struct SeriesRows {
    groups: HashMap<String, BTreeMap<i64, UsageTotals>>,
}

impl SeriesRows {
    /// Adds `totals` to `group`'s bucket starting at `start_ms`.
    pub(crate) fn add(&mut self, start_ms: i64, group: &str, totals: &UsageTotals) {
        if let Some(points) = self.groups.get_mut(group) {
            points.entry(start_ms).or_default().merge(totals);
            return;
        }
        self.groups.entry(group.to_owned()).or_default().entry(start_ms).or_default().merge(totals);
    }
}

/// `requested_ms` rounded up to a whole number of `unit_ms` (at least one); `unit_ms`
/// must be positive.
pub(crate) fn round_up_width(requested_ms: i64, unit_ms: i64) -> i64 {
    let units = requested_ms.max(1).saturating_sub(1) / unit_ms + 1;
    units.saturating_mul(unit_ms)
}

/// The start of the bucket of width `width_ms` (positive) holding `time_ms`.
pub(crate) fn bucket_start(time_ms: i64, width_ms: i64) -> i64 {
    time_ms.saturating_sub(time_ms.rem_euclid(width_ms))
}

/// The series of `rows` in buckets of `bucket_ms`: the `limit` (1 to
/// [`MAX_SERIES_GROUPS`]) groups with the largest totals ([`sort_groups`]) by name, then
/// every other group and the folded `(other)` summed as `(other)`.
pub(crate) fn build(bucket_ms: i64, rows: SeriesRows, limit: usize) -> UsageSeries {
    let mut remaining = rows.groups;
    let mut ranked: Vec<UsageGroup> = remaining
        .iter()
        .filter(|(group, _)| group.as_str() != OTHER_GROUP)
        .map(|(group, points)| UsageGroup { group: group.clone(), totals: sum(points.values()) })
        .collect();
    sort_groups(&mut ranked);
    ranked.truncate(limit.clamp(1, MAX_SERIES_GROUPS));
    let mut groups = Vec::with_capacity(ranked.len() + 1);
    for UsageGroup { group, totals } in ranked {
        let points = remaining.remove(&group).unwrap_or_default();
        groups.push(SeriesGroup { group, totals, points: points_of(points) });
    }
    let mut other: BTreeMap<i64, UsageTotals> = BTreeMap::new();
    for points in remaining.into_values() {
        for (start_ms, totals) in points {
            other.entry(start_ms).or_default().merge(&totals);
        }
    }
    if !other.is_empty() {
        let totals = sum(other.values());
        groups.push(SeriesGroup { group: OTHER_GROUP.to_owned(), totals, points: points_of(other) });
    }
    UsageSeries { bucket_ms, groups }
}

fn sum<'a>(totals: impl Iterator<Item = &'a UsageTotals>) -> UsageTotals {
    totals.fold(UsageTotals::default(), |mut sum, totals| {
        sum.merge(totals);
        sum
    })
}

fn points_of(points: BTreeMap<i64, UsageTotals>) -> Vec<SeriesPoint> {
    points.into_iter().map(|(start_ms, totals)| SeriesPoint { start_ms, totals }).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::accounting::aggregate::{Dimension, UsageAggregates};
    use crate::accounting::record::UsageRecord;
    use crate::accounting::record::tests::sample_record;

    const MINUTE: i64 = 60_000;
    const DAY: i64 = 86_400_000;

    /// A record of `model` made `ms` after the epoch, costing `cost`.
    fn at(ms: i64, model: &str, cost: f64) -> UsageRecord {
        let mut record = sample_record();
        record.time = SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64);
        record.model_requested = model.to_owned();
        record.request_id = Arc::from(format!("r-{ms}"));
        record.cost = cost;
        record
    }

    /// Totals of `requests` plain records (one input and one output token each) costing `cost` in all.
    fn totals(requests: u64, cost: f64) -> UsageTotals {
        UsageTotals {
            requests,
            input_tokens: requests,
            output_tokens: requests,
            cost,
            ..UsageTotals::default()
        }
    }

    fn point(start_ms: i64, requests: u64, cost: f64) -> SeriesPoint {
        SeriesPoint { start_ms, totals: totals(requests, cost) }
    }

    fn group(name: &str, points: Vec<SeriesPoint>) -> SeriesGroup {
        let totals = sum(points.iter().map(|point| &point.totals));
        SeriesGroup { group: name.to_owned(), totals, points }
    }

    /// Records over two days: `a` in minutes 0, 2 and 7, `b` in minute 3, `c` and `d` a day later.
    fn records() -> Vec<UsageRecord> {
        vec![
            at(10_000, "a", 1.0),
            at(2 * MINUTE + 59_999, "a", 1.0),
            at(3 * MINUTE, "b", 0.5),
            at(7 * MINUTE + 1, "a", 1.0),
            at(DAY + 5 * MINUTE, "c", 0.25),
            at(DAY + 6 * MINUTE, "d", 0.125),
        ]
    }

    /// The series of `records` from the aggregates and, with the `ledger` feature, from a
    /// ledger file holding the same records.
    fn both(records: &[UsageRecord], query: impl Fn(&dyn Fn(i64, i64, i64, usize) -> UsageSeries)) {
        let aggregates = UsageAggregates::default();
        for record in records {
            aggregates.add(record);
        }
        query(&|from, to, bucket, limit| aggregates.series(Dimension::Model, from, to, bucket, limit));
        #[cfg(feature = "ledger")]
        {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("usage.db");
            let mut connection = crate::accounting::ledger::open(&path).unwrap();
            let mut batch = records.to_vec();
            crate::accounting::ledger::commit(&mut connection, &mut batch, "usage.db");
            query(&|from, to, bucket, limit| {
                crate::accounting::ledger::series(&path, Dimension::Model, from, to, bucket, limit).unwrap()
            });
        }
    }

    #[test]
    fn buckets_are_aligned_to_the_epoch_and_widths_round_up_to_minutes() {
        // Records of the last day only, so the aggregates answer from their minutes.
        let recent: Vec<UsageRecord> = records()
            .into_iter()
            .filter(|record| record.model_requested != "c" && record.model_requested != "d")
            .collect();
        both(&recent, |series| {
            // 90 s rounds up to 2 minutes: buckets start at minutes 0, 2 and 6.
            assert_eq!(
                series(0, DAY, 90_000, 10),
                UsageSeries {
                    bucket_ms: 2 * MINUTE,
                    groups: vec![
                        group(
                            "a",
                            vec![point(0, 1, 1.0), point(2 * MINUTE, 1, 1.0), point(6 * MINUTE, 1, 1.0)]
                        ),
                        group("b", vec![point(2 * MINUTE, 1, 0.5)]),
                    ],
                }
            );
            // A range starting inside a bucket: points still start on the epoch's grid,
            // and only records in the range count.
            let five = series(2 * MINUTE, 8 * MINUTE, 5 * MINUTE, 10);
            assert_eq!(
                five,
                UsageSeries {
                    bucket_ms: 5 * MINUTE,
                    groups: vec![
                        group("a", vec![point(0, 1, 1.0), point(5 * MINUTE, 1, 1.0)]),
                        group("b", vec![point(0, 1, 0.5)]),
                    ],
                }
            );
            assert_eq!(series(0, DAY, 0, 10).bucket_ms, MINUTE, "at least a minute");
        });
    }

    #[test]
    fn groups_past_the_limit_add_up_as_other_placed_last() {
        both(&records(), |series| {
            let top = series(0, 2 * DAY, DAY, 2);
            assert_eq!(
                top,
                UsageSeries {
                    bucket_ms: DAY,
                    groups: vec![
                        group("a", vec![point(0, 3, 3.0)]),
                        group("b", vec![point(0, 1, 0.5)]),
                        group("(other)", vec![point(DAY, 2, 0.375)]),
                    ],
                }
            );
            let one = series(0, 2 * DAY, DAY, 0);
            assert_eq!(one.groups.len(), 2, "a limit of 0 keeps one group");
            assert_eq!(one.groups[1], group("(other)", vec![point(0, 1, 0.5), point(DAY, 2, 0.375)]));
            assert_eq!(series(0, 2 * DAY, DAY, 4).groups.len(), 4, "nothing left for (other)");
        });
    }

    #[test]
    fn the_top_groups_follow_cost_then_requests_then_name_among_many() {
        // 300 one-request groups at 0.001, three that cost more, two that tie on cost and
        // differ in requests, and a group that is itself called `(other)`.
        let mut records: Vec<UsageRecord> =
            (0..300).map(|index| at(index * 1000, &format!("user-{index:03}"), 0.001)).collect();
        records.push(at(5, "dear", 9.0));
        records.push(at(6, "mid", 5.0));
        records.push(at(7, "tie-one", 2.0));
        records.push(at(8, "tie-two", 1.0));
        records.push(at(9, "tie-two", 1.0));
        records.push(at(10, "(other)", 100.0));
        both(&records, |series| {
            let top = series(0, DAY, DAY, 4);
            let names: Vec<&str> = top.groups.iter().map(|group| group.group.as_str()).collect();
            assert_eq!(names, ["dear", "mid", "tie-two", "tie-one", "(other)"]);
            let other = &top.groups[4];
            assert_eq!((other.totals.requests, other.points.len()), (301, 1));
            assert!((other.totals.cost - 100.3).abs() < 1e-9, "{}", other.totals.cost);
            // Equal cost and requests: by name.
            let cheap = series(0, 300_000, DAY, 50);
            assert_eq!(cheap.groups[4].group, "user-000");
            assert_eq!(cheap.groups[49].group, "user-045");
        });
    }

    #[test]
    fn an_empty_range_has_no_groups() {
        both(&records(), |series| {
            assert_eq!(series(5, 5, MINUTE, 10).groups, vec![]);
            assert_eq!(series(10 * DAY, 11 * DAY, MINUTE, 10).groups, vec![]);
            assert_eq!(series(DAY, 0, MINUTE, 10).groups, vec![], "to before from");
        });
    }

    #[test]
    fn old_ranges_come_from_the_day_buckets_in_memory() {
        let aggregates = UsageAggregates::default();
        for record in records() {
            aggregates.add(&record);
        }
        // The minutes reach back to day 1 only: a range from day 0 reads the days, and
        // a 1-minute bucket widens to a day.
        let old = aggregates.series(Dimension::Model, 0, 2 * DAY, MINUTE, 1);
        assert_eq!(
            old,
            UsageSeries {
                bucket_ms: DAY,
                groups: vec![
                    group("a", vec![point(0, 3, 3.0)]),
                    group("(other)", vec![point(0, 1, 0.5), point(DAY, 2, 0.375)])
                ],
            }
        );
        // From day 1 on, the minutes answer.
        let recent = aggregates.series(Dimension::Model, DAY, 2 * DAY, MINUTE, 10);
        assert_eq!(recent.bucket_ms, MINUTE);
        assert_eq!(
            recent.groups,
            vec![
                group("c", vec![point(DAY + 5 * MINUTE, 1, 0.25)]),
                group("d", vec![point(DAY + 6 * MINUTE, 1, 0.125)])
            ]
        );
    }

    #[test]
    fn minutes_answer_ranges_from_before_the_first_record_while_none_aged_out() {
        // A fresh gateway's last hour: the minutes hold everything, so they answer.
        let aggregates = UsageAggregates::default();
        aggregates.add(&at(DAY + 10 * MINUTE, "a", 1.0));
        aggregates.add(&at(DAY + 11 * MINUTE, "a", 1.0));
        let hour = aggregates.series(Dimension::Model, DAY, DAY + 60 * MINUTE, MINUTE, 10);
        let points = vec![point(DAY + 10 * MINUTE, 1, 1.0), point(DAY + 11 * MINUTE, 1, 1.0)];
        assert_eq!(hour, UsageSeries { bucket_ms: MINUTE, groups: vec![group("a", points)] });
        // Once a day has passed, a range reaching back before it reads the days.
        aggregates.add(&at(2 * DAY + 10 * MINUTE, "a", 1.0));
        let two_days = aggregates.series(Dimension::Model, DAY, 3 * DAY, MINUTE, 10);
        let points = vec![point(DAY, 2, 2.0), point(2 * DAY, 1, 1.0)];
        assert_eq!(two_days, UsageSeries { bucket_ms: DAY, groups: vec![group("a", points)] });
    }

    #[test]
    fn widths_round_up_and_never_overflow() {
        assert_eq!(round_up_width(1, MINUTE), MINUTE);
        assert_eq!(round_up_width(MINUTE, MINUTE), MINUTE);
        assert_eq!(round_up_width(MINUTE + 1, MINUTE), 2 * MINUTE);
        assert_eq!(round_up_width(-5, DAY), DAY);
        assert_eq!(round_up_width(i64::MAX, DAY), i64::MAX);
        assert_eq!(bucket_start(DAY + 1, DAY), DAY);
        assert_eq!(bucket_start(5, i64::MAX), 0);
    }
}
