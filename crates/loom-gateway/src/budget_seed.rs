//! Budgets kept in memory start from the usage ledger, so a restart does not forget what
//! the current periods have spent. (On Redis the spend lives in Redis.)
//!
//! Seeded: every global budget, per value of its scope found in the ledger for its
//! current period; every key's own `scope: key` budgets, with the key's spend; and every
//! key's own `scope: user` / `scope: team` budgets (kept inside the key per user or team
//! value), with the key's spend under the user or team the key names, when the key's
//! requests cannot name another (no `allow_identity_headers`). A rolling budget is seeded
//! with its whole window's spend, which then counts until the window's length has passed
//! (an over-estimate for the oldest part of the window, never an under-estimate); so is a
//! key whose user or team changed within the period (all of its spend counts for the
//! current one).
//!
//! Not seeded: `scope: user` / `scope: team` budgets of keys with `allow_identity_headers`.
//! Their spend would have to be split by key and by the user or team each request named,
//! and the recorder's reports group by one dimension only; they start from zero.

use std::collections::HashMap;
use std::time::SystemTime;

use loom_guard::{
    BudgetConfig, BudgetScope, BudgetUnit, Budgets, GuardState, Subject, VirtualKey, period_bounds,
    usd_to_nano,
};
use loom_tokens::accounting::aggregate::{NONE_GROUP, OTHER_GROUP};
use loom_tokens::accounting::record::unix_millis_of;
use loom_tokens::accounting::{Dimension, UsageGroup, UsageRecorder};
use tracing::warn;

use crate::admin::AdminGuard;

/// Seeds `guard`'s in-memory budgets from `recorder`'s ledger; does nothing on Redis or
/// without a ledger.
pub(crate) fn seed_budgets(
    guard: &AdminGuard,
    global: &[BudgetConfig],
    recorder: &UsageRecorder,
    now: SystemTime,
) {
    if !matches!(guard.state, GuardState::Memory(_)) || !recorder.has_ledger() {
        return;
    }
    let mut ledger = LedgerSpend { recorder, now, reports: HashMap::new() };
    for budget in global {
        for group in ledger.per_value(dimension_of(budget.scope), budget) {
            let subject = subject_for(budget.scope, &group.group);
            let checks = Budgets::new(std::slice::from_ref(budget)).checks(&subject, &[], now, 0, 0);
            seed(guard, &checks, group);
        }
    }
    let keys = guard.keys.as_ref().map(|keys| keys.list()).unwrap_or_default();
    for key in keys {
        for budget in &key.budgets {
            seed_key_budget(guard, &mut ledger, &key, budget, now);
        }
    }
}

/// Seeds one of `key`'s own budgets with the key's spend over the budget's period.
fn seed_key_budget(
    guard: &AdminGuard,
    ledger: &mut LedgerSpend<'_>,
    key: &VirtualKey,
    budget: &BudgetConfig,
    now: SystemTime,
) {
    if budget.scope != BudgetScope::Key && key.allow_identity_headers {
        return; // the key's spend per user or team is not in the reports (see the module doc)
    }
    let Some(group) = ledger.per_value(Dimension::Key, budget).iter().find(|group| group.group == key.id)
    else {
        return;
    };
    // The identity the pipeline gives every request of a key whose clients cannot set it.
    let subject = Subject {
        key: Some(&key.id),
        user: key.user.as_deref(),
        team: key.team.as_deref(),
        ..Subject::default()
    };
    let checks = Budgets::new(&[]).checks(&subject, std::slice::from_ref(budget), now, 0, 0);
    seed(guard, &checks, group);
}

/// The ledger's totals per value of a dimension, each report read once per period start.
struct LedgerSpend<'a> {
    recorder: &'a UsageRecorder,
    now: SystemTime,
    reports: HashMap<(Dimension, i64), Vec<UsageGroup>>,
}

impl LedgerSpend<'_> {
    /// The totals per named value of `dimension` over `budget`'s current period.
    fn per_value(&mut self, dimension: Dimension, budget: &BudgetConfig) -> &[UsageGroup] {
        let (start, _) = period_bounds(&budget.period, self.now);
        let from = unix_millis_of(start);
        let to = unix_millis_of(self.now).saturating_add(1);
        let recorder = self.recorder;
        self.reports.entry((dimension, from)).or_insert_with(|| match recorder.report(dimension, from, to) {
            Ok(groups) => groups
                .into_iter()
                .filter(|group| group.group != NONE_GROUP && group.group != OTHER_GROUP)
                .collect(),
            Err(error) => {
                warn!(%error, "cannot read the usage ledger; in-memory budgets start from zero");
                Vec::new()
            }
        })
    }
}

fn dimension_of(scope: BudgetScope) -> Dimension {
    match scope {
        BudgetScope::Key => Dimension::Key,
        BudgetScope::User => Dimension::User,
        BudgetScope::Team => Dimension::Team,
    }
}

fn subject_for(scope: BudgetScope, value: &str) -> Subject<'_> {
    match scope {
        BudgetScope::Key => Subject { key: Some(value), ..Subject::default() },
        BudgetScope::User => Subject { user: Some(value), ..Subject::default() },
        BudgetScope::Team => Subject { team: Some(value), ..Subject::default() },
    }
}

fn seed(guard: &AdminGuard, checks: &[loom_guard::BudgetCheck], group: &UsageGroup) {
    for check in checks {
        let amount = match check.unit {
            BudgetUnit::NanoUsd => usd_to_nano(group.totals.cost),
            BudgetUnit::Tokens => group.totals.input_tokens.saturating_add(group.totals.output_tokens),
        };
        if amount > 0 {
            guard.state.seed_spend(&check.bucket, check.unit, amount, check.resets_at);
        }
    }
}
