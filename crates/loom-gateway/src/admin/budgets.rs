//! `GET /ai/budgets`: spend against every budget, or against one subject's budgets.
//!
//! Without a query, the list covers every global budget with a `match` (its subject is the
//! `match` value), every global budget without one for each configured key's id, user and
//! team, and each key's own budgets. `?scope=team&value=eng` (or `user`, `key`) asks about
//! any one subject instead.

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use http::StatusCode;
use loom_guard::{
    BudgetCheck, BudgetScope, BudgetStatus, BudgetUnit, Budgets, KeyStore, Subject, VirtualKey,
};
use serde_json::{Value, json};

use super::error::ApiError;
use super::{AdminGuard, Reply};

/// Longest `value` a query may name.
const MAX_VALUE_BYTES: usize = 256;
/// Nano-USD per USD.
const NANO_PER_USD: f64 = 1e9;

/// One subject `?scope=&value=` asks about.
#[derive(Debug, PartialEq, Eq)]
struct SubjectQuery {
    scope: BudgetScope,
    value: String,
}

/// Answers `GET /ai/budgets[?scope=&value=]`.
pub(crate) async fn budgets(guard: &AdminGuard, query: &str) -> Result<Reply, ApiError> {
    let now = SystemTime::now();
    let mut list = CheckList::default();
    match parse_query(query)? {
        Some(SubjectQuery { scope, value }) => {
            list.add(&value, guard.budgets.checks(&only(scope, &value), &[], now, 0, 0));
            if scope == BudgetScope::Key
                && let Some(key) = guard.keys.as_ref().and_then(|keys| keys.get(&value))
            {
                list.add(&key.id, own_checks(&key, now));
            }
        }
        None => list_everything(&mut list, &guard.budgets, guard.keys.as_deref(), now),
    }
    let statuses = guard.state.budget_status(&list.checks).await?;
    let data: Vec<Value> =
        statuses.iter().zip(&list.subjects).map(|(status, subject)| status_json(status, subject)).collect();
    Ok(Reply::json(StatusCode::OK, json!({"data": data})))
}

/// Budget checks with the subject each is shown for; a bucket reached twice is listed
/// once, against the smaller limit (as a request checks it).
#[derive(Default)]
struct CheckList {
    checks: Vec<BudgetCheck>,
    subjects: Vec<String>,
    by_bucket: HashMap<String, usize>,
}

impl CheckList {
    fn add(&mut self, subject: &str, checks: Vec<BudgetCheck>) {
        for check in checks {
            if let Some(&index) = self.by_bucket.get(&check.bucket) {
                let existing = &mut self.checks[index];
                existing.limit = existing.limit.min(check.limit);
                continue;
            }
            self.by_bucket.insert(check.bucket.clone(), self.checks.len());
            self.checks.push(check);
            self.subjects.push(subject.to_owned());
        }
    }
}

fn list_everything(list: &mut CheckList, budgets: &Budgets, keys: Option<&KeyStore>, now: SystemTime) {
    // First the `match` budgets, shown for their `match` value: matching subjects share them.
    for config in budgets.configs() {
        if let Some(wanted) = &config.matches {
            let alone = Budgets::new(std::slice::from_ref(config));
            list.add(wanted, alone.checks(&only(config.scope, wanted), &[], now, 0, 0));
        }
    }
    let Some(keys) = keys else { return };
    let mut seen: BTreeSet<(BudgetScope, String)> = BTreeSet::new();
    // Revoked keys spend nothing more: their budgets are left out.
    for key in keys.list().iter().filter(|key| !key.revoked) {
        let values = [
            (BudgetScope::Key, Some(&key.id)),
            (BudgetScope::User, key.user.as_ref()),
            (BudgetScope::Team, key.team.as_ref()),
        ];
        for (scope, value) in values {
            let Some(value) = value else { continue };
            if seen.insert((scope, value.clone())) {
                list.add(value, budgets.checks(&only(scope, value), &[], now, 0, 0));
            }
        }
        list.add(&key.id, own_checks(key, now));
    }
}

/// A key's own budgets, as its requests check them.
fn own_checks(key: &VirtualKey, now: SystemTime) -> Vec<BudgetCheck> {
    let subject = Subject {
        key: Some(&key.id),
        user: key.user.as_deref(),
        team: key.team.as_deref(),
        ..Subject::default()
    };
    Budgets::default().checks(&subject, &key.budgets, now, 0, 0)
}

/// A subject with only `scope`'s value set.
fn only(scope: BudgetScope, value: &str) -> Subject<'_> {
    match scope {
        BudgetScope::Key => Subject { key: Some(value), ..Subject::default() },
        BudgetScope::User => Subject { user: Some(value), ..Subject::default() },
        BudgetScope::Team => Subject { team: Some(value), ..Subject::default() },
    }
}

/// A status as loom-guard serializes it, plus its subject and, for cost budgets, the
/// amounts in USD for people.
fn status_json(status: &BudgetStatus, subject: &str) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        fields.insert("subject".to_owned(), json!(subject));
        if status.unit == BudgetUnit::NanoUsd {
            fields.insert("limit_usd".to_owned(), json!(status.limit as f64 / NANO_PER_USD));
            fields.insert("spent_usd".to_owned(), json!(status.spent as f64 / NANO_PER_USD));
            fields.insert("in_flight_usd".to_owned(), json!(status.in_flight as f64 / NANO_PER_USD));
        }
    }
    value
}

/// `scope` and `value`, both or neither, each at most once.
fn parse_query(query: &str) -> Result<Option<SubjectQuery>, ApiError> {
    let mut scope = None;
    let mut value: Option<String> = None;
    for (name, given) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "scope" if scope.is_none() => {
                scope = Some(match given.as_ref() {
                    "key" => BudgetScope::Key,
                    "user" => BudgetScope::User,
                    "team" => BudgetScope::Team,
                    _ => return Err(ApiError::invalid("scope", "`scope` must be key, user or team")),
                });
            }
            "value" if value.is_none() => {
                if given.is_empty() || given.len() > MAX_VALUE_BYTES {
                    return Err(ApiError::invalid(
                        "value",
                        format!("`value` must be 1 to {MAX_VALUE_BYTES} bytes"),
                    ));
                }
                value = Some(given.into_owned());
            }
            "scope" | "value" => {
                return Err(ApiError::invalid(name.as_ref(), format!("`{name}` is given more than once")));
            }
            _ => return Err(ApiError::invalid("query", "only `scope` and `value` are accepted")),
        }
    }
    match (scope, value) {
        (Some(scope), Some(value)) => Ok(Some(SubjectQuery { scope, value })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::invalid("value", "`scope` needs a `value`")),
        (None, Some(_)) => Err(ApiError::invalid("scope", "`value` needs a `scope`")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use loom_guard::{AuthConfig, BudgetConfig, GuardState, KeyConfig, NewKey, Period};

    use super::*;

    fn budget(
        scope: BudgetScope,
        matches: Option<&str>,
        cost: Option<f64>,
        tokens: Option<u64>,
    ) -> BudgetConfig {
        BudgetConfig {
            scope,
            matches: matches.map(str::to_owned),
            period: Period::Month,
            max_cost_usd: cost,
            max_tokens: tokens,
        }
    }

    fn guard(budgets: &[BudgetConfig]) -> AdminGuard {
        let state = GuardState::memory(10_000);
        let auth = AuthConfig {
            enabled: true,
            keys: vec![KeyConfig {
                id: "ops".to_owned(),
                key: Some(loom_core::Secret::new("lk-ops-secret")),
                team: Some("eng".to_owned()),
                ..KeyConfig::default()
            }],
            admin_key: None,
        };
        let keys = Arc::new(KeyStore::new(&auth, &state).unwrap());
        AdminGuard { state, keys: Some(keys), budgets: Budgets::new(budgets), admin_key: None }
    }

    async fn listed(guard: &AdminGuard, query: &str) -> Vec<(String, String, String)> {
        let reply = budgets(guard, query).await.unwrap_or_else(|error| panic!("{error:?}"));
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                let text = |field: &str| entry[field].as_str().unwrap().to_owned();
                (text("subject"), text("scope"), text("name"))
            })
            .collect()
    }

    fn row(subject: &str, scope: &str, name: &str) -> (String, String, String) {
        (subject.to_owned(), scope.to_owned(), name.to_owned())
    }

    #[tokio::test]
    async fn lists_match_budgets_per_value_budgets_of_keys_and_keys_own_budgets() {
        let guard = guard(&[
            budget(BudgetScope::Team, Some("web"), None, Some(1000)),
            budget(BudgetScope::Team, None, Some(5.0), None),
            budget(BudgetScope::User, None, None, Some(10)),
        ]);
        let new = NewKey {
            id: Some("k1".to_owned()),
            team: Some("web".to_owned()),
            budgets: vec![budget(BudgetScope::Key, None, None, Some(50))],
            ..NewKey::default()
        };
        guard.keys.as_ref().unwrap().create(new).await.unwrap();
        assert_eq!(
            listed(&guard, "").await,
            // The `match` budget, then k1's subjects and own budget, then ops's (ids in
            // order); no key has a user.
            [
                row("web", "team", "team web monthly tokens"),
                row("web", "team", "team web monthly cost"),
                row("k1", "key", "key k1 monthly tokens"),
                row("eng", "team", "team eng monthly cost"),
            ]
        );
        assert_eq!(
            listed(&guard, "scope=user&value=ann").await,
            [row("ann", "user", "user ann monthly tokens")]
        );
        assert_eq!(listed(&guard, "scope=key&value=k1").await, [row("k1", "key", "key k1 monthly tokens")]);
        assert_eq!(listed(&guard, "scope=team&value=x").await, [row("x", "team", "team x monthly cost")]);
    }

    #[tokio::test]
    async fn cost_budgets_carry_usd_amounts() {
        let guard = guard(&[budget(BudgetScope::Team, Some("eng"), Some(2.5), None)]);
        let reply = budgets(&guard, "").await.unwrap();
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        let entry = &body["data"][0];
        assert_eq!(
            (&entry["unit"], &entry["limit"], &entry["limit_usd"], &entry["spent"], &entry["spent_usd"]),
            (&json!("nano_usd"), &json!(2_500_000_000u64), &json!(2.5), &json!(0), &json!(0.0))
        );
    }

    #[test]
    fn queries_name_scope_and_value_together() {
        assert_eq!(parse_query(""), Ok(None));
        assert_eq!(
            parse_query("scope=team&value=eng"),
            Ok(Some(SubjectQuery { scope: BudgetScope::Team, value: "eng".to_owned() }))
        );
        for (query, param) in [
            ("scope=team", "value"),
            ("value=eng", "scope"),
            ("scope=model&value=x", "scope"),
            ("scope=team&scope=user&value=x", "scope"),
            ("scope=team&value=", "value"),
            ("team=eng", "query"),
        ] {
            let error = parse_query(query).unwrap_err();
            assert_eq!(
                (error.status, error.param.as_deref()),
                (StatusCode::BAD_REQUEST, Some(param)),
                "{query}"
            );
        }
    }
}
