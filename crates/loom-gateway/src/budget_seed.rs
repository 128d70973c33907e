//! Budgets kept in memory start from the usage ledger, so a restart does not forget what
//! the current periods have spent. (On Redis the spend lives in Redis.)
//!
//! Seeded: every global budget, per value of its scope found in the ledger for its
//! current period, and every key's own `scope: key` budgets. A rolling budget is seeded
//! with its whole window's spend, which then counts until the window's length has passed
//! (an over-estimate for the oldest part of the window, never an under-estimate).

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
    for budget in global {
        for group in spend_per_value(recorder, budget, now) {
            let subject = subject_for(budget.scope, &group.group);
            let checks = Budgets::new(std::slice::from_ref(budget)).checks(&subject, &[], now, 0, 0);
            seed(guard, &checks, &group);
        }
    }
    let keys = guard.keys.as_ref().map(|keys| keys.list()).unwrap_or_default();
    for key in keys {
        for budget in key.budgets.iter().filter(|budget| budget.scope == BudgetScope::Key) {
            seed_key_budget(guard, recorder, &key, budget, now);
        }
    }
}

fn seed_key_budget(
    guard: &AdminGuard,
    recorder: &UsageRecorder,
    key: &VirtualKey,
    budget: &BudgetConfig,
    now: SystemTime,
) {
    for group in spend_per_value(recorder, budget, now).into_iter().filter(|group| group.group == key.id) {
        let subject = Subject { key: Some(&key.id), ..Subject::default() };
        let checks = Budgets::new(&[]).checks(&subject, std::slice::from_ref(budget), now, 0, 0);
        seed(guard, &checks, &group);
    }
}

/// The ledger's totals per value of the budget's scope over its current period.
fn spend_per_value(recorder: &UsageRecorder, budget: &BudgetConfig, now: SystemTime) -> Vec<UsageGroup> {
    let (start, _) = period_bounds(&budget.period, now);
    let dimension = match budget.scope {
        BudgetScope::Key => Dimension::Key,
        BudgetScope::User => Dimension::User,
        BudgetScope::Team => Dimension::Team,
    };
    match recorder.report(dimension, unix_millis_of(start), unix_millis_of(now).saturating_add(1)) {
        Ok(groups) => groups
            .into_iter()
            .filter(|group| group.group != NONE_GROUP && group.group != OTHER_GROUP)
            .collect(),
        Err(error) => {
            warn!(%error, "cannot read the usage ledger; in-memory budgets start from zero");
            Vec::new()
        }
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
