//! Which budget periods a request touches, and the periods' bounds in UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::bucket::{push_pattern, push_value};
use crate::config::{BudgetConfig, BudgetScope, Period};
use crate::pattern;
use crate::time::{civil_from_days, day_number, day_start, days_from_civil};

/// Sub-windows a rolling period is summed over: spend leaves the window 1/24th at a time.
pub const ROLLING_SLOTS: u64 = 24;

/// How long spend counters outlive their period, so a late settle still lands.
const SPENT_GRACE: Duration = Duration::from_secs(86_400);

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    /// Cost in billionths of a USD (integers, so sums are exact).
    NanoUsd,
    /// Tokens.
    Tokens,
}

/// The sub-window of a budget that spend is recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BudgetWindow {
    /// The current sub-window's number (0 for calendar periods).
    pub slot: u64,
    /// How many sub-windows count (1 for calendar periods, 24 for rolling ones).
    pub slots: u64,
}

impl BudgetWindow {
    /// Whether spend recorded in `slot` still counts.
    pub(crate) fn counts(&self, slot: u64) -> bool {
        slot + self.slots > self.slot
    }
}

/// One budget period a request must fit in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCheck {
    /// State key, e.g. `bd:team:eng:cost:month:2026-12` (values escaped).
    pub bucket: String,
    /// The scope of the budget.
    pub scope: BudgetScope,
    /// For people: `team eng monthly cost`.
    pub name: String,
    /// Nano-USD or tokens.
    pub unit: BudgetUnit,
    /// The maximum per period, in `unit`.
    pub limit: u64,
    /// What this request reserves before the call, in `unit`.
    pub reserve: u64,
    /// When the period ends (calendar) or the oldest sub-window leaves (rolling).
    pub resets_at: SystemTime,
    /// How long the spend counter must be kept from now.
    pub ttl: Duration,
    /// The sub-window spend goes to.
    pub window: BudgetWindow,
}

/// The globally configured budgets (`ai_gateway.budgets`).
#[derive(Debug, Clone, Default)]
pub struct Budgets {
    budgets: Vec<BudgetConfig>,
}

impl Budgets {
    /// Budgets from their configuration.
    pub fn new(budgets: &[BudgetConfig]) -> Self {
        Budgets { budgets: budgets.to_vec() }
    }

    /// Whether no budget is configured globally.
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }

    /// The configured budgets, in configuration order.
    pub fn configs(&self) -> &[BudgetConfig] {
        &self.budgets
    }

    /// The budget periods a request of `subject` touches at `now`, reserving the given
    /// amounts: every global budget whose scope value the request has (and matches), then
    /// the key's own. A budget reached twice (same bucket) is checked once, against the
    /// smaller limit.
    pub fn checks(
        &self,
        subject: &crate::Subject,
        key_budgets: &[BudgetConfig],
        now: SystemTime,
        reserve_nano_usd: u64,
        reserve_tokens: u64,
    ) -> Vec<BudgetCheck> {
        let mut checks = Vec::new();
        let reserve = Reserve { nano_usd: reserve_nano_usd, tokens: reserve_tokens };
        for budget in &self.budgets {
            if let Some(base) = global_base(budget, subject) {
                push_units(&mut checks, base, budget, now, reserve);
            }
        }
        if let Some(key) = subject.key {
            for budget in key_budgets {
                if let Some(base) = key_base(budget, subject, key) {
                    push_units(&mut checks, base, budget, now, reserve);
                }
            }
        }
        checks
    }
}

#[derive(Clone, Copy)]
struct Reserve {
    nano_usd: u64,
    tokens: u64,
}

/// A bucket prefix and the human name that goes with it.
struct Base {
    bucket: String,
    name: String,
}

fn value_of<'a>(scope: BudgetScope, subject: &crate::Subject<'a>) -> Option<&'a str> {
    match scope {
        BudgetScope::Key => subject.key,
        BudgetScope::User => subject.user,
        BudgetScope::Team => subject.team,
    }
}

fn global_base(budget: &BudgetConfig, subject: &crate::Subject) -> Option<Base> {
    let value = value_of(budget.scope, subject)?;
    let mut bucket = format!("bd:{}", budget.scope.as_str());
    let shown = push_segment(&mut bucket, budget.matches.as_deref(), value)?;
    Some(Base { bucket, name: format!("{} {shown}", budget.scope.as_str()) })
}

fn key_base(budget: &BudgetConfig, subject: &crate::Subject, key: &str) -> Option<Base> {
    let mut bucket = "bd:key".to_owned();
    if budget.scope == BudgetScope::Key {
        let shown = push_segment(&mut bucket, budget.matches.as_deref(), key)?;
        return Some(Base { bucket, name: format!("key {shown}") });
    }
    push_value(&mut bucket, key);
    bucket.push(':');
    bucket.push_str(budget.scope.as_str());
    let value = value_of(budget.scope, subject)?;
    let shown = push_segment(&mut bucket, budget.matches.as_deref(), value)?;
    Some(Base { bucket, name: format!("key {key} {} {shown}", budget.scope.as_str()) })
}

/// Appends the value or the matching pattern; returns what to show people.
fn push_segment<'a>(bucket: &mut String, matches: Option<&'a str>, value: &'a str) -> Option<&'a str> {
    match matches {
        Some(wanted) if pattern::matches(wanted, value) => {
            push_pattern(bucket, wanted);
            Some(wanted)
        }
        Some(_) => None,
        None => {
            push_value(bucket, value);
            Some(value)
        }
    }
}

fn push_units(
    checks: &mut Vec<BudgetCheck>,
    base: Base,
    budget: &BudgetConfig,
    now: SystemTime,
    reserve: Reserve,
) {
    let (start, resets_at) = period_bounds(&budget.period, now);
    let (instance, adjective, window, ttl) = match budget.period {
        Period::Rolling(length) => {
            let slot = rolling_slot(length, now);
            let window = BudgetWindow { slot, slots: ROLLING_SLOTS };
            let label = format!("roll:{}s", length.as_secs());
            (label, format!("rolling {}", Period::Rolling(length)), window, length + SPENT_GRACE)
        }
        calendar => {
            let days = day_number(start);
            let (year, month, day) = civil_from_days(days);
            let (instance, adjective) = match calendar {
                Period::Day => (format!("day:{year:04}-{month:02}-{day:02}"), "daily"),
                Period::Week => (format!("week:{year:04}-{month:02}-{day:02}"), "weekly"),
                _ => (format!("month:{year:04}-{month:02}"), "monthly"),
            };
            let ttl = resets_at.duration_since(now).unwrap_or_default() + SPENT_GRACE;
            (instance, adjective.to_owned(), BudgetWindow { slot: 0, slots: 1 }, ttl)
        }
    };
    let units = [
        (budget.max_cost_usd.map(usd_to_nano), BudgetUnit::NanoUsd, "cost", reserve.nano_usd),
        (budget.max_tokens, BudgetUnit::Tokens, "tokens", reserve.tokens),
    ];
    for (limit, unit, unit_name, reserve) in units {
        let Some(limit) = limit else { continue };
        let bucket = format!("{}:{unit_name}:{instance}", base.bucket);
        if let Some(existing) = checks.iter_mut().find(|check| check.bucket == bucket) {
            existing.limit = existing.limit.min(limit);
            continue;
        }
        checks.push(BudgetCheck {
            bucket,
            scope: budget.scope,
            name: format!("{} {adjective} {unit_name}", base.name),
            unit,
            limit,
            reserve,
            resets_at,
            ttl,
            window,
        });
    }
}

/// USD as integer nano-USD, rounded; negative or not finite is 0, too large saturates.
pub fn usd_to_nano(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 { (usd * 1e9).round() as u64 } else { 0 }
}

fn slot_length(length: Duration) -> Duration {
    // At least 1ms, so a slot number is always defined.
    (length / ROLLING_SLOTS as u32).max(Duration::from_millis(1))
}

fn rolling_slot(length: Duration, now: SystemTime) -> u64 {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis() / slot_length(length).as_millis()).unwrap_or(u64::MAX)
}

/// The period containing `now`: its start and when it resets. Calendar periods are UTC
/// days, Monday-based weeks and months; a rolling period is the 24 sub-windows ending with
/// the current one, and "resets" when that sub-window ends (the oldest one leaves).
pub fn period_bounds(period: &Period, now: SystemTime) -> (SystemTime, SystemTime) {
    let today = day_number(now);
    match period {
        Period::Day => (day_start(today), day_start(today + 1)),
        Period::Week => {
            // 1970-01-01 was a Thursday: Monday is 3 days before it.
            let monday = today - (today + 3).rem_euclid(7);
            (day_start(monday), day_start(monday + 7))
        }
        Period::Month => {
            let (year, month, _) = civil_from_days(today);
            let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
            (day_start(days_from_civil(year, month, 1)), day_start(days_from_civil(next_year, next_month, 1)))
        }
        Period::Rolling(length) => {
            let slot_ms = slot_length(*length).as_millis() as u64;
            let slot = rolling_slot(*length, now);
            let start = slot.saturating_sub(ROLLING_SLOTS - 1).saturating_mul(slot_ms);
            let end = slot.saturating_add(1).saturating_mul(slot_ms);
            (UNIX_EPOCH + Duration::from_millis(start), UNIX_EPOCH + Duration::from_millis(end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subject;
    use crate::time::{format_rfc3339, parse_rfc3339};

    fn at(text: &str) -> SystemTime {
        parse_rfc3339(text).unwrap()
    }

    fn bounds(period: Period, now: &str) -> (String, String) {
        let (start, end) = period_bounds(&period, at(now));
        (format_rfc3339(start), format_rfc3339(end))
    }

    fn pair(start: &str, end: &str) -> (String, String) {
        (start.to_owned(), end.to_owned())
    }

    #[test]
    fn calendar_periods_are_utc_days_monday_weeks_and_months() {
        assert_eq!(
            bounds(Period::Day, "2026-12-06T13:33:31Z"),
            pair("2026-12-06T00:00:00Z", "2026-12-07T00:00:00Z")
        );
        assert_eq!(
            bounds(Period::Day, "2026-12-31T23:59:59Z"),
            pair("2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z")
        );
        // 2026-12-06 is a Sunday: its week began Monday 2026-11-30.
        assert_eq!(
            bounds(Period::Week, "2026-12-06T23:00:00Z"),
            pair("2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")
        );
        assert_eq!(
            bounds(Period::Week, "2026-12-07T00:00:00Z"),
            pair("2026-12-07T00:00:00Z", "2026-12-14T00:00:00Z")
        );
        assert_eq!(
            bounds(Period::Week, "2024-01-01T00:00:00Z"),
            pair("2024-01-01T00:00:00Z", "2024-01-08T00:00:00Z")
        );
        assert_eq!(
            bounds(Period::Week, "2027-01-03T12:00:00Z"),
            pair("2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z")
        );
        assert_eq!(
            bounds(Period::Month, "2026-12-15T00:00:00Z"),
            pair("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
        );
        assert_eq!(
            bounds(Period::Month, "2028-02-29T12:00:00Z"),
            pair("2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z")
        );
        assert_eq!(
            bounds(Period::Month, "2027-02-28T12:00:00Z"),
            pair("2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z")
        );
        assert_eq!(
            bounds(Period::Month, "2100-02-28T12:00:00Z"),
            pair("2100-02-01T00:00:00Z", "2100-03-01T00:00:00Z")
        );
        assert_eq!(
            bounds(Period::Day, "2028-02-29T00:00:00Z"),
            pair("2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z")
        );
    }

    #[test]
    fn rolling_periods_span_twenty_four_sub_windows() {
        let day = Period::Rolling(Duration::from_secs(86_400));
        assert_eq!(bounds(day, "2026-12-06T13:33:31Z"), pair("2026-12-05T14:00:00Z", "2026-12-06T14:00:00Z"));
    }

    fn budget(scope: BudgetScope, period: Period, cost: Option<f64>, tokens: Option<u64>) -> BudgetConfig {
        BudgetConfig { scope, matches: None, period, max_cost_usd: cost, max_tokens: tokens }
    }

    #[test]
    fn checks_name_buckets_and_people_readable_budgets() {
        let subject = Subject {
            key: Some("k1"),
            user: Some("ann"),
            team: Some("eng"),
            model: "m",
            ..Subject::default()
        };
        let budgets = Budgets::new(&[
            budget(BudgetScope::Team, Period::Month, Some(100.0), Some(1_000_000)),
            budget(BudgetScope::Key, Period::Day, Some(5.0), None),
        ]);
        let own = [
            budget(BudgetScope::Key, Period::Day, Some(2.5), None),
            budget(BudgetScope::User, Period::Rolling(Duration::from_secs(30 * 86_400)), None, Some(10)),
        ];
        let now = at("2026-12-06T13:33:31Z");
        let checks = budgets.checks(&subject, &own, now, 7, 9);
        let summary: Vec<_> = checks
            .iter()
            .map(|c| {
                (c.bucket.as_str(), c.name.as_str(), c.unit, c.limit, c.reserve, format_rfc3339(c.resets_at))
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "bd:team:eng:cost:month:2026-12",
                    "team eng monthly cost",
                    BudgetUnit::NanoUsd,
                    100_000_000_000,
                    7,
                    "2027-01-01T00:00:00Z".to_owned()
                ),
                (
                    "bd:team:eng:tokens:month:2026-12",
                    "team eng monthly tokens",
                    BudgetUnit::Tokens,
                    1_000_000,
                    9,
                    "2027-01-01T00:00:00Z".to_owned()
                ),
                (
                    "bd:key:k1:cost:day:2026-12-06",
                    "key k1 daily cost",
                    BudgetUnit::NanoUsd,
                    2_500_000_000,
                    7,
                    "2026-12-07T00:00:00Z".to_owned()
                ),
                (
                    "bd:key:k1:user:ann:tokens:roll:2592000s",
                    "key k1 user ann rolling 30days tokens",
                    BudgetUnit::Tokens,
                    10,
                    9,
                    "2026-12-06T18:00:00Z".to_owned()
                ),
            ]
        );
        assert_eq!(checks[0].window, BudgetWindow { slot: 0, slots: 1 });
        assert_eq!(checks[0].ttl, Duration::from_secs(86_400 * 26 - 48_811 + 86_400));
        assert_eq!(checks[3].window.slots, 24);
    }

    #[test]
    fn money_converts_to_exact_nano_usd() {
        assert_eq!(usd_to_nano(0.000_000_001), 1);
        assert_eq!(usd_to_nano(12.5), 12_500_000_000);
        assert_eq!(usd_to_nano(-1.0), 0);
        assert_eq!(usd_to_nano(f64::NAN), 0);
        assert_eq!(usd_to_nano(f64::INFINITY), 0);
        assert_eq!(usd_to_nano(1e30), u64::MAX);
    }
}
