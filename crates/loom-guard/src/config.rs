//! Configuration: `ai_gateway.auth`, `.rate_limits`, `.budgets` and `.state`, as serde structs.
//!
//! Deserializing checks shapes and types; [`AuthConfig::validate`], [`StateConfig::validate`],
//! [`validate_limits`] and [`validate_budgets`] check the rest and name the YAML key path of
//! every problem.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use loom_core::Secret;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::keys::KeyHash;
use crate::pattern;
use crate::time::Timestamp;

/// `ai_gateway.rate_limits`: limits that apply to every request.
pub type RateLimitsConfig = Vec<LimitConfig>;
/// `ai_gateway.budgets`: budgets that apply to every request.
pub type BudgetsConfig = Vec<BudgetConfig>;

/// `ai_gateway.auth`: virtual keys.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether requests need a Loom key (default false, for the quickstart).
    #[serde(default)]
    pub enabled: bool,
    /// Keys from the configuration (read-only at run time; default none).
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// The key the admin port asks for (default none: the admin port is open).
    #[serde(default)]
    pub admin_key: Option<Secret>,
}

/// One key under `ai_gateway.auth.keys`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Unique id, shown in usage records and the admin API.
    pub id: String,
    /// Human name (default none).
    #[serde(default)]
    pub name: Option<String>,
    /// The key in plaintext, usually `${ENV}`; exactly one of `key` and `key_sha256`.
    #[serde(default)]
    pub key: Option<Secret>,
    /// Lowercase hex SHA-256 of the plaintext key; exactly one of `key` and `key_sha256`.
    #[serde(default)]
    pub key_sha256: Option<String>,
    /// User the key's requests are accounted to (default none).
    #[serde(default)]
    pub user: Option<String>,
    /// Team the key's requests are accounted to (default none).
    #[serde(default)]
    pub team: Option<String>,
    /// Free-form labels (default none).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Allowed model patterns with `*` wildcards (default empty: every model).
    #[serde(default)]
    pub models: Vec<String>,
    /// Allowed route ids (default empty: every route).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Whether the key's requests may set `x-loom-user` (default false).
    #[serde(default)]
    pub allow_identity_headers: bool,
    /// When the key stops working, RFC 3339 (default never).
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// Limits for this key's requests only (default none).
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
    /// Budgets for this key's requests only (default none).
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
    /// Security checks for this key's requests, instead of its route's or the global ones
    /// (default none: those apply).
    #[serde(default)]
    pub checks: Option<crate::ChecksConfig>,
}

/// What a limit or budget counts per: each value of the scope gets its own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Per virtual key.
    Key,
    /// Per user.
    User,
    /// Per team.
    Team,
    /// Per requested model.
    Model,
    /// Per provider.
    Provider,
    /// Per route.
    Route,
    /// One bucket for everything.
    #[default]
    Global,
}

impl Scope {
    /// The scope's name as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::User => "user",
            Scope::Team => "team",
            Scope::Model => "model",
            Scope::Provider => "provider",
            Scope::Route => "route",
            Scope::Global => "global",
        }
    }
}

/// What a budget counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// Per virtual key.
    Key,
    /// Per user.
    User,
    /// Per team.
    Team,
}

impl BudgetScope {
    /// The scope's name as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Key => "key",
            BudgetScope::User => "user",
            BudgetScope::Team => "team",
        }
    }
}

/// One rate limit: one or more rates at one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// What the limit counts per.
    pub scope: Scope,
    /// YAML `match`: only this value of the scope (a `*` pattern; the matching values share
    /// one bucket). Absent (default): every value gets its own bucket.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// Requests per second (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u64>,
    /// Requests per minute (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// Tokens (estimated input plus requested output, reconciled after the call) per minute
    /// (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// How much may be spent at once (default: the per-period amount, so a whole period's
    /// allowance may go in one burst). Only with a single rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

/// A budget's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// The calendar day, UTC.
    Day,
    /// The calendar week, UTC, starting Monday.
    Week,
    /// The calendar month, UTC.
    Month,
    /// The last `Duration` (written like `30d` or `12h`, at least 1m), summed over 24
    /// sub-windows of 1/24th of it: spend leaves the window one sub-window at a time.
    Rolling(Duration),
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Day => f.write_str("day"),
            Period::Week => f.write_str("week"),
            Period::Month => f.write_str("month"),
            Period::Rolling(length) => write!(f, "{}", humantime::format_duration(*length)),
        }
    }
}

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            _ => humantime::parse_duration(text).map(Period::Rolling).map_err(|_| {
                format!(
                    "`{text}` is not a period: expected day, week, month or a duration such as 30d or 12h"
                )
            }),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One budget: a maximum cost and/or token count per period at one scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// What the budget counts per.
    pub scope: BudgetScope,
    /// YAML `match`: only this value of the scope (a `*` pattern; matching values share one
    /// budget). Absent (default): every value has its own budget.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// The period the maximums apply to.
    pub period: Period,
    /// Maximum cost in USD per period (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Maximum tokens (input plus output) per period (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

/// Where limits, budgets, reservations and run-time keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// In this process (the default): nothing is shared between instances.
    #[default]
    Memory,
    /// On Redis (or Valkey), shared by every instance using the same URL and prefix.
    Redis,
}

/// What to do with a request when the state backend fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Let the request through unchecked.
    FailOpen,
    /// Refuse the request.
    FailClosed,
}

/// `ai_gateway.state.on_state_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnStateError {
    /// For rate limits (default `fail_open`).
    #[serde(default = "fail_open")]
    pub rate_limits: FailMode,
    /// For budgets (default `fail_closed`).
    #[serde(default = "fail_closed")]
    pub budgets: FailMode,
}

impl Default for OnStateError {
    fn default() -> Self {
        OnStateError { rate_limits: FailMode::FailOpen, budgets: FailMode::FailClosed }
    }
}

fn fail_open() -> FailMode {
    FailMode::FailOpen
}

fn fail_closed() -> FailMode {
    FailMode::FailClosed
}

/// `ai_gateway.reservations`: what a request reserves from rate limits and budgets
/// before its call (settled with the real usage after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReservationsConfig {
    /// Output tokens reserved for a request that sets no `max_tokens` (default 1024).
    pub default_output_tokens: u64,
    /// How long a reservation holds when its instance never settles it (default 10m).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl Default for ReservationsConfig {
    fn default() -> Self {
        ReservationsConfig {
            default_output_tokens: crate::rate_limit::DEFAULT_OUTPUT_TOKENS,
            ttl: crate::rate_limit::DEFAULT_RESERVATION_TTL,
        }
    }
}

impl ReservationsConfig {
    /// Problems with these settings, their keys under `path`.
    pub fn validate_at(&self, path: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.default_output_tokens > 10_000_000 {
            problems.push(ConfigProblem {
                path: format!("{path}.default_output_tokens"),
                message: format!("{} is more than 10000000", self.default_output_tokens),
            });
        }
        if self.ttl < Duration::from_secs(1) || self.ttl > Duration::from_secs(86_400) {
            problems.push(ConfigProblem {
                path: format!("{path}.ttl"),
                message: "must be between 1s and 24h".to_owned(),
            });
        }
        problems
    }
}

/// `ai_gateway.state`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `memory` (default) or `redis`.
    #[serde(default)]
    pub backend: Backend,
    /// Redis URL (`redis://[:password@]host:port/db`, `rediss://...`); required for `redis`.
    #[serde(default)]
    pub url: Option<Secret>,
    /// Prefix of every Redis key, used as its hash tag (default `loom`).
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Per-call Redis timeout (default 500ms).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Bound on in-memory buckets (default 1,000,000).
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
    /// What a failing backend means for requests (default: rate limits open, budgets closed).
    #[serde(default)]
    pub on_state_error: OnStateError,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            backend: Backend::Memory,
            url: None,
            key_prefix: default_key_prefix(),
            timeout: default_timeout(),
            max_entries: default_max_entries(),
            on_state_error: OnStateError::default(),
        }
    }
}

fn default_key_prefix() -> String {
    "loom".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_millis(500)
}

/// The default bound on in-memory buckets.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

fn default_max_entries() -> usize {
    DEFAULT_MAX_ENTRIES
}

/// One configuration problem, with the YAML key path it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key path, e.g. `ai_gateway.auth.keys[2].key_sha256`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl ConfigProblem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigProblem { path: path.into(), message: message.into() }
    }
}

impl AuthConfig {
    /// Problems with this `ai_gateway.auth` section (empty when it is usable).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        self.validate_at("ai_gateway.auth")
    }

    /// Problems with this section, its paths starting with `path`.
    pub fn validate_at(&self, path: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut hashes: HashMap<KeyHash, usize> = HashMap::new();
        if let Some(admin) = &self.admin_key
            && admin.expose().is_empty()
        {
            problems.push(ConfigProblem::new(format!("{path}.admin_key"), "must not be empty"));
        }
        for (index, key) in self.keys.iter().enumerate() {
            let at = format!("{path}.keys[{index}]");
            problems.extend(key.validate_at(&at));
            if let Some(first) = ids.insert(key.id.as_str(), index) {
                problems.push(ConfigProblem::new(
                    format!("{at}.id"),
                    format!("duplicate key id `{}` (also at keys[{first}])", key.id),
                ));
            }
            if let Ok(Some(hash)) = key.hash()
                && let Some(first) = hashes.insert(hash, index)
            {
                problems.push(ConfigProblem::new(at, format!("the same key as keys[{first}]")));
            }
        }
        problems
    }
}

impl KeyConfig {
    /// The key's hash, from `key` or `key_sha256`; `None` when neither or both are set.
    pub fn hash(&self) -> Result<Option<KeyHash>, String> {
        match (&self.key, &self.key_sha256) {
            (Some(plaintext), None) => Ok(Some(KeyHash::of(plaintext.expose()))),
            (None, Some(hex)) => KeyHash::from_hex(hex).map(Some).map_err(|error| error.to_string()),
            _ => Ok(None),
        }
    }

    fn validate_at(&self, at: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if let Some(message) = id_problem(&self.id) {
            problems.push(ConfigProblem::new(format!("{at}.id"), message));
        }
        match (&self.key, &self.key_sha256) {
            (Some(_), Some(_)) | (None, None) => {
                problems.push(ConfigProblem::new(at, "set exactly one of `key` and `key_sha256`"))
            }
            (Some(plaintext), None) if plaintext.expose().is_empty() => {
                problems.push(ConfigProblem::new(format!("{at}.key"), "must not be empty"))
            }
            (None, Some(hex)) if KeyHash::from_hex(hex).is_err() => problems
                .push(ConfigProblem::new(format!("{at}.key_sha256"), "expected 64 lowercase hex characters")),
            _ => {}
        }
        problems.extend(access_problems(&self.models, &self.routes, at));
        problems.extend(validate_limits(&self.limits, &format!("{at}.limits")));
        problems.extend(validate_budgets(&self.budgets, &format!("{at}.budgets")));
        if let Some(checks) = &self.checks {
            problems.extend(checks.validate_at(&format!("{at}.checks")));
        }
        problems
    }
}

/// Why a key id is unusable, if it is.
pub(crate) fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("must not be empty")
    } else if id.len() > 128 {
        Some("at most 128 characters")
    } else if id.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        Some("must not contain whitespace, control characters or `/`")
    } else {
        None
    }
}

/// Problems with allowed model patterns and route ids.
pub(crate) fn access_problems(models: &[String], routes: &[String], at: &str) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    for (index, model) in models.iter().enumerate() {
        if let Some(message) = pattern::problem(model) {
            problems.push(ConfigProblem::new(join(at, &format!("models[{index}]")), message));
        }
    }
    for (index, route) in routes.iter().enumerate() {
        if route.is_empty() {
            problems.push(ConfigProblem::new(join(at, &format!("routes[{index}]")), "must not be empty"));
        }
    }
    problems
}

/// `at.name`, or `name` at the root.
fn join(at: &str, name: &str) -> String {
    if at.is_empty() { name.to_owned() } else { format!("{at}.{name}") }
}

/// Problems with a list of limits at `path` (e.g. `ai_gateway.rate_limits`).
pub fn validate_limits(limits: &[LimitConfig], path: &str) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    for (index, limit) in limits.iter().enumerate() {
        let at = format!("{path}[{index}]");
        let rates = [
            ("requests_per_second", limit.requests_per_second),
            ("requests_per_minute", limit.requests_per_minute),
            ("tokens_per_minute", limit.tokens_per_minute),
        ];
        let set = rates.iter().filter(|(_, rate)| rate.is_some()).count();
        if set == 0 {
            problems.push(ConfigProblem::new(
                &at,
                "set at least one of requests_per_second, requests_per_minute, tokens_per_minute",
            ));
        }
        for (name, rate) in rates {
            if rate == Some(0) {
                problems.push(ConfigProblem::new(format!("{at}.{name}"), "must be at least 1"));
            }
        }
        match limit.burst {
            Some(0) => problems.push(ConfigProblem::new(format!("{at}.burst"), "must be at least 1")),
            Some(_) if set > 1 => problems.push(ConfigProblem::new(
                format!("{at}.burst"),
                "a burst needs a single rate: write one limit per rate",
            )),
            _ => {}
        }
        problems.extend(match_problem(limit.matches.as_deref(), limit.scope == Scope::Global, &at));
    }
    problems
}

/// Problems with a list of budgets at `path` (e.g. `ai_gateway.budgets`).
pub fn validate_budgets(budgets: &[BudgetConfig], path: &str) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    for (index, budget) in budgets.iter().enumerate() {
        let at = format!("{path}[{index}]");
        if budget.max_cost_usd.is_none() && budget.max_tokens.is_none() {
            problems.push(ConfigProblem::new(&at, "set at least one of max_cost_usd and max_tokens"));
        }
        if let Some(cost) = budget.max_cost_usd
            && !(cost.is_finite() && cost >= 0.0)
        {
            problems.push(ConfigProblem::new(
                format!("{at}.max_cost_usd"),
                "must be a finite number of USD, 0 or more",
            ));
        }
        if let Period::Rolling(length) = budget.period {
            if length < Duration::from_secs(60) {
                problems.push(ConfigProblem::new(format!("{at}.period"), "a rolling period is at least 1m"));
            } else if length > Duration::from_secs(10 * 366 * 86_400) {
                problems
                    .push(ConfigProblem::new(format!("{at}.period"), "a rolling period is at most 10 years"));
            }
        }
        problems.extend(match_problem(budget.matches.as_deref(), false, &at));
    }
    problems
}

fn match_problem(matches: Option<&str>, global: bool, at: &str) -> Option<ConfigProblem> {
    let pattern = matches?;
    if global {
        return Some(ConfigProblem::new(
            format!("{at}.match"),
            "the global scope has one bucket: remove `match`",
        ));
    }
    pattern::problem(pattern).map(|message| ConfigProblem::new(format!("{at}.match"), message))
}

impl StateConfig {
    /// Problems with this `ai_gateway.state` section (empty when it is usable).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        self.validate_at("ai_gateway.state")
    }

    /// Problems with this section, its paths starting with `path`.
    pub fn validate_at(&self, path: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        match (&self.backend, &self.url) {
            (Backend::Redis, None) => {
                problems.push(ConfigProblem::new(format!("{path}.url"), "required when backend is redis"))
            }
            (_, Some(url)) if !is_redis_url(url.expose()) => problems.push(ConfigProblem::new(
                format!("{path}.url"),
                "expected a redis://, rediss:// or unix:// URL",
            )),
            _ => {}
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}']) {
            problems.push(ConfigProblem::new(
                format!("{path}.key_prefix"),
                "must not be empty nor contain `{` or `}` (it becomes the keys' hash tag)",
            ));
        }
        if self.timeout.is_zero() {
            problems.push(ConfigProblem::new(format!("{path}.timeout"), "must be more than 0"));
        }
        if self.max_entries == 0 {
            problems.push(ConfigProblem::new(format!("{path}.max_entries"), "must be at least 1"));
        }
        problems
    }
}

fn is_redis_url(url: &str) -> bool {
    ["redis://", "rediss://", "unix://", "redis+unix://"].iter().any(|scheme| url.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::{Format, Yaml};

    use super::*;

    fn load<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        Figment::from(Yaml::string(yaml)).extract().unwrap()
    }

    /// Figment extracts maps only: lists go under `list`.
    #[derive(Deserialize)]
    struct Listed<T> {
        list: Vec<T>,
    }

    fn load_list<T: serde::de::DeserializeOwned>(yaml: &str) -> Result<Vec<T>, String> {
        Figment::from(Yaml::string(&format!("list: {yaml}")))
            .extract::<Listed<T>>()
            .map(|listed| listed.list)
            .map_err(|error| error.to_string())
    }

    fn paths(problems: &[ConfigProblem]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_key_problem_names_its_path() {
        let auth: AuthConfig = load(
            r#"
enabled: true
admin_key: ""
keys:
  - {id: a, key: sk-one}
  - {id: a, key: sk-two}
  - {id: c, key_sha256: "ABCDEF"}
  - {id: d}
  - {id: e, key: sk-x, key_sha256: "0000000000000000000000000000000000000000000000000000000000000000"}
  - {id: "", key: ""}
  - {id: g, key: sk-one, models: ["", "gpt 4"], routes: [""]}
"#,
        );
        assert_eq!(
            paths(&auth.validate()),
            [
                "ai_gateway.auth.admin_key: must not be empty",
                "ai_gateway.auth.keys[1].id: duplicate key id `a` (also at keys[0])",
                "ai_gateway.auth.keys[2].key_sha256: expected 64 lowercase hex characters",
                "ai_gateway.auth.keys[3]: set exactly one of `key` and `key_sha256`",
                "ai_gateway.auth.keys[4]: set exactly one of `key` and `key_sha256`",
                "ai_gateway.auth.keys[5].id: must not be empty",
                "ai_gateway.auth.keys[5].key: must not be empty",
                "ai_gateway.auth.keys[6].models[0]: a pattern must not be empty (use `*` for every name)",
                "ai_gateway.auth.keys[6].models[1]: a pattern must not contain whitespace or control characters",
                "ai_gateway.auth.keys[6].routes[0]: must not be empty",
                "ai_gateway.auth.keys[6]: the same key as keys[0]",
            ]
        );
    }

    #[test]
    fn every_limit_and_budget_problem_names_its_path() {
        let limits: RateLimitsConfig = load_list(
            r#"[
  {scope: team},
  {scope: user, requests_per_minute: 0, burst: 0},
  {scope: model, requests_per_minute: 10, tokens_per_minute: 100, burst: 5},
  {scope: global, match: x, requests_per_second: 1},
  {scope: model, match: "", requests_per_second: 1}]"#,
        )
        .unwrap();
        assert_eq!(
            paths(&validate_limits(&limits, "ai_gateway.rate_limits")),
            [
                "ai_gateway.rate_limits[0]: set at least one of requests_per_second, requests_per_minute, tokens_per_minute",
                "ai_gateway.rate_limits[1].requests_per_minute: must be at least 1",
                "ai_gateway.rate_limits[1].burst: must be at least 1",
                "ai_gateway.rate_limits[2].burst: a burst needs a single rate: write one limit per rate",
                "ai_gateway.rate_limits[3].match: the global scope has one bucket: remove `match`",
                "ai_gateway.rate_limits[4].match: a pattern must not be empty (use `*` for every name)",
            ]
        );
        let budgets: BudgetsConfig = load_list(
            r#"[
  {scope: team, period: month},
  {scope: user, period: day, max_cost_usd: -1},
  {scope: key, period: 0s, max_tokens: 5},
  {scope: key, period: 1s, max_tokens: 5}]"#,
        )
        .unwrap();
        let mut budgets = budgets;
        budgets.push(BudgetConfig {
            scope: BudgetScope::Team,
            matches: None,
            period: Period::Week,
            max_cost_usd: Some(f64::NAN),
            max_tokens: None,
        });
        assert_eq!(
            paths(&validate_budgets(&budgets, "ai_gateway.budgets")),
            [
                "ai_gateway.budgets[0]: set at least one of max_cost_usd and max_tokens",
                "ai_gateway.budgets[1].max_cost_usd: must be a finite number of USD, 0 or more",
                "ai_gateway.budgets[2].period: a rolling period is at least 1m",
                "ai_gateway.budgets[3].period: a rolling period is at least 1m",
                "ai_gateway.budgets[4].max_cost_usd: must be a finite number of USD, 0 or more",
            ]
        );
    }

    #[test]
    fn key_limits_and_budgets_are_validated_under_the_key() {
        let auth: AuthConfig = load(
            r#"
keys:
  - id: a
    key: sk-a
    limits: [{scope: key}]
    budgets: [{scope: key, period: day}]
"#,
        );
        assert_eq!(
            paths(&auth.validate()),
            [
                "ai_gateway.auth.keys[0].limits[0]: set at least one of requests_per_second, requests_per_minute, tokens_per_minute",
                "ai_gateway.auth.keys[0].budgets[0]: set at least one of max_cost_usd and max_tokens",
            ]
        );
    }

    #[test]
    fn state_problems_name_their_paths_and_never_print_the_url() {
        let state: StateConfig = load("{backend: redis, key_prefix: 'a{b}', timeout: 0s, max_entries: 0}");
        assert_eq!(
            paths(&state.validate()),
            [
                "ai_gateway.state.url: required when backend is redis",
                "ai_gateway.state.key_prefix: must not be empty nor contain `{` or `}` (it becomes the keys' hash tag)",
                "ai_gateway.state.timeout: must be more than 0",
                "ai_gateway.state.max_entries: must be at least 1",
            ]
        );
        let state: StateConfig = load("{backend: redis, url: 'http://:hunter2@host'}");
        let problems = paths(&state.validate());
        assert_eq!(problems, ["ai_gateway.state.url: expected a redis://, rediss:// or unix:// URL"]);
        assert!(!format!("{state:?}").contains("hunter2"));
    }

    #[test]
    fn defaults_are_as_documented() {
        let state: StateConfig = load("{}");
        assert_eq!(state.backend, Backend::Memory);
        assert_eq!(state.key_prefix, "loom");
        assert_eq!(state.timeout, Duration::from_millis(500));
        assert_eq!(state.max_entries, 1_000_000);
        assert_eq!(
            state.on_state_error,
            OnStateError { rate_limits: FailMode::FailOpen, budgets: FailMode::FailClosed }
        );
        let auth: AuthConfig = load("{}");
        assert!(!auth.enabled && auth.keys.is_empty() && auth.admin_key.is_none());
        assert!(auth.validate().is_empty());
    }

    #[test]
    fn unknown_fields_and_bad_periods_are_refused_by_name() {
        let error = load_list::<LimitConfig>("[{scope: key, requests_per_minute: 1, rpm: 2}]").unwrap_err();
        assert!(error.to_string().contains("unknown field: found `rpm`"), "{error}");
        let error =
            load_list::<BudgetConfig>("[{scope: key, period: fortnight, max_tokens: 1}]").unwrap_err();
        assert!(error.to_string().contains("`fortnight` is not a period"), "{error}");
    }

    #[test]
    fn periods_parse_and_print_back() {
        for (text, period) in [
            ("day", Period::Day),
            ("week", Period::Week),
            ("month", Period::Month),
            ("30d", Period::Rolling(Duration::from_secs(30 * 86_400))),
            ("12h", Period::Rolling(Duration::from_secs(12 * 3600))),
        ] {
            let parsed: Period = text.parse().unwrap();
            assert_eq!(parsed, period);
            assert_eq!(parsed.to_string().parse::<Period>().unwrap(), period);
        }
    }
}
