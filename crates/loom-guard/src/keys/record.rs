//! A virtual key's record, and the admin API's bodies that create and change one.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize};

use crate::GuardError;
use crate::check::ChecksConfig;
use crate::config::{
    BudgetConfig, ConfigProblem, KeyConfig, LimitConfig, access_problems, id_problem, validate_budgets,
    validate_limits,
};
use crate::keys::KeyHash;
use crate::pattern;
use crate::time::{Timestamp, optional_rfc3339};

/// Where a key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// The configuration file: read-only at run time.
    Config,
    /// Created through the admin API at run time.
    #[default]
    Api,
}

/// A virtual key: who it is, what it may use, and its own limits and budgets.
///
/// Serializes for the admin API without any secret: the hash is skipped too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualKey {
    /// Unique id.
    pub id: String,
    /// Human name.
    #[serde(default)]
    pub name: Option<String>,
    /// User the key's requests are accounted to.
    #[serde(default)]
    pub user: Option<String>,
    /// Team the key's requests are accounted to.
    #[serde(default)]
    pub team: Option<String>,
    /// Free-form labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Allowed model patterns (empty: every model).
    #[serde(default)]
    pub models: Vec<String>,
    /// Allowed route ids (empty: every route).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Whether requests with this key may set `x-loom-user`.
    #[serde(default)]
    pub allow_identity_headers: bool,
    /// When the key stops working.
    #[serde(default, with = "optional_rfc3339")]
    pub expires_at: Option<SystemTime>,
    /// Whether the key was revoked.
    #[serde(default)]
    pub revoked: bool,
    /// Limits for this key's requests only.
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
    /// Budgets for this key's requests only.
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
    /// Security checks for this key's requests, instead of its route's or the global ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<ChecksConfig>,
    /// When the key was created (none for configuration keys).
    #[serde(default, with = "optional_rfc3339")]
    pub created_at: Option<SystemTime>,
    /// Where the key comes from.
    #[serde(default)]
    pub source: KeySource,
    /// SHA-256 of the plaintext key (never serialized).
    #[serde(skip)]
    pub hash: KeyHash,
}

impl VirtualKey {
    /// Whether the key may use `model` (an empty list allows every model).
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|allowed| pattern::matches(allowed, model))
    }

    /// Whether the key may use `route` (an empty list allows every route; a request on no
    /// route is allowed only then).
    pub fn allows_route(&self, route: Option<&str>) -> bool {
        self.routes.is_empty()
            || route.is_some_and(|route| self.routes.iter().any(|allowed| allowed == route))
    }

    /// Whether the key works at `now`: not revoked, not expired.
    pub fn is_live(&self, now: SystemTime) -> bool {
        !self.revoked && self.expires_at.is_none_or(|expires_at| now < expires_at)
    }

    /// The record of a configuration key (`None` when it has neither or both of
    /// `key`/`key_sha256`, or a malformed hash: validation reports those).
    pub fn from_config(config: &KeyConfig) -> Option<Self> {
        let hash = config.hash().ok()??;
        Some(VirtualKey {
            id: config.id.clone(),
            name: config.name.clone(),
            user: config.user.clone(),
            team: config.team.clone(),
            metadata: config.metadata.clone(),
            models: config.models.clone(),
            routes: config.routes.clone(),
            allow_identity_headers: config.allow_identity_headers,
            expires_at: config.expires_at.map(Timestamp::system_time),
            revoked: false,
            limits: config.limits.clone(),
            budgets: config.budgets.clone(),
            checks: config.checks.clone(),
            created_at: None,
            source: KeySource::Config,
            hash,
        })
    }
}

/// The body of `POST /ai/keys`: a new key's properties (the plaintext is generated).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Unique id (default: generated, `vk-` and 16 hex characters).
    #[serde(default)]
    pub id: Option<String>,
    /// Human name.
    #[serde(default)]
    pub name: Option<String>,
    /// User the key's requests are accounted to.
    #[serde(default)]
    pub user: Option<String>,
    /// Team the key's requests are accounted to.
    #[serde(default)]
    pub team: Option<String>,
    /// Free-form labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Allowed model patterns (default: every model).
    #[serde(default)]
    pub models: Vec<String>,
    /// Allowed route ids (default: every route).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Whether requests with this key may set `x-loom-user` (default false).
    #[serde(default)]
    pub allow_identity_headers: bool,
    /// When the key stops working, RFC 3339 (default never).
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// Limits for this key's requests only.
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
    /// Budgets for this key's requests only.
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
    /// Security checks for this key's requests (default: its route's or the global ones).
    #[serde(default)]
    pub checks: Option<ChecksConfig>,
}

impl NewKey {
    /// The first problem with this body, as `GuardError::Invalid` naming the field.
    pub fn validate(&self) -> Result<(), GuardError> {
        let mut problems = Vec::new();
        if let Some(id) = &self.id
            && let Some(message) = id_problem(id)
        {
            problems.push(ConfigProblem { path: "id".to_owned(), message: message.to_owned() });
        }
        problems.extend(access_problems(&self.models, &self.routes, ""));
        problems.extend(validate_limits(&self.limits, "limits"));
        problems.extend(validate_budgets(&self.budgets, "budgets"));
        problems.extend(checks_problems(self.checks.as_ref()));
        first_problem(problems)
    }

    /// The record this body describes, with its id, hash and creation time.
    pub(crate) fn into_key(self, id: String, hash: KeyHash, now: SystemTime) -> VirtualKey {
        VirtualKey {
            id,
            name: self.name,
            user: self.user,
            team: self.team,
            metadata: self.metadata,
            models: self.models,
            routes: self.routes,
            allow_identity_headers: self.allow_identity_headers,
            expires_at: self.expires_at.map(Timestamp::system_time),
            revoked: false,
            limits: self.limits,
            budgets: self.budgets,
            checks: self.checks,
            created_at: Some(now),
            source: KeySource::Api,
            hash,
        }
    }
}

/// The body of `PATCH /ai/keys/{id}`: absent fields stay, `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    /// New name (`null` clears it).
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    /// New user (`null` clears it).
    #[serde(default, deserialize_with = "present")]
    pub user: Option<Option<String>>,
    /// New team (`null` clears it).
    #[serde(default, deserialize_with = "present")]
    pub team: Option<Option<String>>,
    /// New labels (replace the old ones).
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// New allowed model patterns.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// New allowed route ids.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// Whether requests with this key may set `x-loom-user`.
    #[serde(default)]
    pub allow_identity_headers: Option<bool>,
    /// New expiry (`null`: never).
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<Timestamp>>,
    /// New limits (replace the old ones).
    #[serde(default)]
    pub limits: Option<Vec<LimitConfig>>,
    /// New budgets (replace the old ones).
    #[serde(default)]
    pub budgets: Option<Vec<BudgetConfig>>,
    /// New security checks (`null`: the route's or global ones again).
    #[serde(default, deserialize_with = "present")]
    pub checks: Option<Option<ChecksConfig>>,
}

/// A key's checks' problems; the embedding stage needs the gateway's embedder, which a
/// key made at run time cannot be checked against, so it is refused here.
fn checks_problems(checks: Option<&ChecksConfig>) -> Vec<ConfigProblem> {
    let Some(checks) = checks else { return Vec::new() };
    let mut problems = checks.validate_at("checks");
    if checks.injection.embedding.enabled {
        problems.push(ConfigProblem {
            path: "checks.injection.embedding.enabled".to_owned(),
            message: "not on keys made at run time (set it in the config)".to_owned(),
        });
    }
    problems
}

/// A field that is present: `null` becomes `Some(None)`, absence stays `None` (by `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

impl KeyPatch {
    /// The first problem with this body, as `GuardError::Invalid` naming the field.
    pub fn validate(&self) -> Result<(), GuardError> {
        let mut problems = access_problems(
            self.models.as_deref().unwrap_or_default(),
            self.routes.as_deref().unwrap_or_default(),
            "",
        );
        problems.extend(validate_limits(self.limits.as_deref().unwrap_or_default(), "limits"));
        problems.extend(validate_budgets(self.budgets.as_deref().unwrap_or_default(), "budgets"));
        problems.extend(checks_problems(self.checks.as_ref().and_then(Option::as_ref)));
        first_problem(problems)
    }

    /// `key` with this patch applied.
    pub(crate) fn apply(self, key: &VirtualKey) -> VirtualKey {
        let mut key = key.clone();
        if let Some(name) = self.name {
            key.name = name;
        }
        if let Some(user) = self.user {
            key.user = user;
        }
        if let Some(team) = self.team {
            key.team = team;
        }
        if let Some(metadata) = self.metadata {
            key.metadata = metadata;
        }
        if let Some(models) = self.models {
            key.models = models;
        }
        if let Some(routes) = self.routes {
            key.routes = routes;
        }
        if let Some(allow) = self.allow_identity_headers {
            key.allow_identity_headers = allow;
        }
        if let Some(expires_at) = self.expires_at {
            key.expires_at = expires_at.map(Timestamp::system_time);
        }
        if let Some(limits) = self.limits {
            key.limits = limits;
        }
        if let Some(budgets) = self.budgets {
            key.budgets = budgets;
        }
        if let Some(checks) = self.checks {
            key.checks = checks;
        }
        key
    }
}

fn first_problem(problems: Vec<ConfigProblem>) -> Result<(), GuardError> {
    match problems.into_iter().next() {
        Some(problem) => Err(GuardError::Invalid { field: problem.path, message: problem.message }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(models: &[&str], routes: &[&str]) -> VirtualKey {
        let new = NewKey {
            models: models.iter().map(|m| m.to_string()).collect(),
            routes: routes.iter().map(|r| r.to_string()).collect(),
            ..NewKey::default()
        };
        new.into_key("k".to_owned(), KeyHash::of("x"), SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn models_and_routes_allow_by_pattern_and_id() {
        let open = key(&[], &[]);
        assert!(open.allows_model("anything") && open.allows_route(None) && open.allows_route(Some("r")));
        let narrow = key(&["gpt-4o*", "claude-3-haiku"], &["chat"]);
        assert!(narrow.allows_model("gpt-4o-mini"));
        assert!(narrow.allows_model("claude-3-haiku"));
        assert!(!narrow.allows_model("gpt-4"));
        assert!(!narrow.allows_model("claude-3-haiku-2"));
        assert!(narrow.allows_route(Some("chat")));
        assert!(!narrow.allows_route(Some("batch")));
        assert!(!narrow.allows_route(None));
    }

    #[test]
    fn liveness_follows_expiry_and_revocation() {
        let mut record = key(&[], &[]);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert!(record.is_live(now));
        record.expires_at = Some(now);
        assert!(!record.is_live(now));
        assert!(record.is_live(now - Duration::from_secs(1)));
        record.expires_at = None;
        record.revoked = true;
        assert!(!record.is_live(now));
    }

    #[test]
    fn serialized_keys_carry_no_hash() {
        let record = key(&["gpt-4o*"], &[]);
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"id":"k","name":null,"user":null,"team":null,"metadata":{},"models":["gpt-4o*"],"routes":[],"allow_identity_headers":false,"expires_at":null,"revoked":false,"limits":[],"budgets":[],"created_at":"1970-01-01T00:00:00Z","source":"api"}"#
        );
        assert!(!json.contains(&KeyHash::of("x").to_hex()));
    }

    #[test]
    fn patches_change_only_present_fields_and_null_clears() {
        let mut record = key(&[], &[]);
        record.name = Some("old".to_owned());
        record.team = Some("eng".to_owned());
        let patch: KeyPatch =
            serde_json::from_str(r#"{"name":null,"user":"ann","models":["gpt-4o"]}"#).unwrap();
        let patched = patch.apply(&record);
        assert_eq!(patched.name, None);
        assert_eq!(patched.user.as_deref(), Some("ann"));
        assert_eq!(patched.team.as_deref(), Some("eng"));
        assert_eq!(patched.models, ["gpt-4o"]);
    }

    #[test]
    fn bodies_name_the_bad_field() {
        let new: NewKey =
            serde_json::from_str(r#"{"limits":[{"scope":"key","requests_per_minute":0}]}"#).unwrap();
        assert_eq!(
            new.validate(),
            Err(GuardError::invalid("limits[0].requests_per_minute", "must be at least 1"))
        );
        let new: NewKey = serde_json::from_str(r#"{"id":"a b"}"#).unwrap();
        assert_eq!(
            new.validate(),
            Err(GuardError::invalid("id", "must not contain whitespace, control characters or `/`"))
        );
        let patch: KeyPatch = serde_json::from_str(r#"{"models":[""]}"#).unwrap();
        assert_eq!(
            patch.validate(),
            Err(GuardError::invalid("models[0]", "a pattern must not be empty (use `*` for every name)"))
        );
        let unknown = serde_json::from_str::<KeyPatch>(r#"{"key":"sk"}"#).unwrap_err();
        assert!(unknown.to_string().starts_with("unknown field `key`"), "{unknown}");
    }
}
