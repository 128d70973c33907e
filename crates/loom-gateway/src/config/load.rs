//! Loading: YAML layers, `${VAR}` substitution, `LOOM_` environment overrides, parsing.

use std::path::{Path, PathBuf};

use loom_core::file::{MAX_CONFIG_BYTES, read_config_text};
use serde_json::{Map, Value};

use super::error::ConfigError;
use super::interpolate::{Segment, interpolate, render_path};
use super::schema::LoomConfig;

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "LOOM_";

/// `LOOM_` variables that are not config keys (read by the binary itself).
pub const ENV_IGNORED: [&str; 2] = ["LOOM_CONFIG", "LOOM_LOG"];

/// Separator between nested keys in an override variable's name.
pub const ENV_SEPARATOR: &str = "__";

impl LoomConfig {
    /// Loads, overrides from the process environment, and validates the YAML file at `path`
    /// (a regular file of at most [`MAX_CONFIG_BYTES`]).
    pub fn load(path: &Path) -> Result<LoomConfig, ConfigError> {
        LoomConfig::load_files(std::slice::from_ref(&path))
    }

    /// Loads the YAML files at `paths` as layers, later files over earlier ones (see
    /// [`ConfigBuilder`]), then overrides from the process environment and validates.
    /// Errors at keys a file set are [`ConfigError::InFile`].
    pub fn load_files(paths: &[impl AsRef<Path>]) -> Result<LoomConfig, ConfigError> {
        let lookup = process_env;
        let mut builder = ConfigBuilder::new(&lookup);
        for path in paths {
            builder = builder.file(path.as_ref())?;
        }
        builder.env_overrides(process_overrides()).build()
    }

    /// Loads and validates `yaml`, reading `${VAR}` through `env`; no `LOOM_` overrides apply.
    pub fn from_yaml_str(
        yaml: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<LoomConfig, ConfigError> {
        ConfigBuilder::new(env).yaml(yaml).build()
    }

    /// Parses `yaml` (a whole config or a fragment) without validating it.
    pub fn parse_yaml_str(
        yaml: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<LoomConfig, ConfigError> {
        ConfigBuilder::new(env).yaml(yaml).build_unvalidated()
    }
}

/// Builds a [`LoomConfig`] from YAML layers, a `${VAR}` lookup and `LOOM_` overrides.
///
/// Layers deep-merge in order: a later layer's keys replace the earlier ones', maps merge
/// key by key, lists are replaced whole. Then `${VAR}` placeholders are substituted, then
/// the overrides apply, then the result is parsed (and, with [`ConfigBuilder::build`], validated).
/// Parsing stops at the first error; validation reports every broken rule
/// ([`ConfigError::Many`]). An error at a key that a layer read from a file set (the
/// last such layer) is wrapped in [`ConfigError::InFile`] naming that file.
pub struct ConfigBuilder<'e> {
    layers: Vec<Layer>,
    env: &'e dyn Fn(&str) -> Option<String>,
    overrides: Vec<(String, String)>,
}

/// One YAML layer and the file it was read from, if any.
struct Layer {
    yaml: String,
    file: Option<PathBuf>,
}

impl<'e> ConfigBuilder<'e> {
    /// A builder that reads `${VAR}` through `env`.
    pub fn new(env: &'e dyn Fn(&str) -> Option<String>) -> Self {
        ConfigBuilder { layers: Vec::new(), env, overrides: Vec::new() }
    }

    /// Adds a YAML layer on top of the previous ones.
    pub fn yaml(mut self, yaml: impl Into<String>) -> Self {
        self.layers.push(Layer { yaml: yaml.into(), file: None });
        self
    }

    /// Adds a YAML layer read from `file` on top of the previous ones; errors at the keys
    /// it sets name the file.
    pub fn yaml_from(mut self, file: impl Into<PathBuf>, yaml: impl Into<String>) -> Self {
        self.layers.push(Layer { yaml: yaml.into(), file: Some(file.into()) });
        self
    }

    /// Reads the YAML file at `path` (a regular file of at most [`MAX_CONFIG_BYTES`]) as a
    /// layer on top of the previous ones.
    pub fn file(self, path: &Path) -> Result<Self, ConfigError> {
        let yaml = read_config_text(path, MAX_CONFIG_BYTES)
            .map_err(|error| ConfigError::Io { path: path.to_path_buf(), source: error.into() })?;
        Ok(self.yaml_from(path, yaml))
    }

    /// Adds environment variables (name, value); only `LOOM_*` names except `LOOM_CONFIG`/`LOOM_LOG` apply.
    pub fn env_overrides(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.overrides.extend(vars.into_iter().filter(|(name, _)| is_override(name)));
        self
    }

    /// Builds and validates the config.
    pub fn build(self) -> Result<LoomConfig, ConfigError> {
        let Built { config, secrets, origins } = self.build_with_secrets()?;
        // Validation messages quote values, which may have come from the environment; they
        // never quote a secret key's value, so their examples stay readable.
        config.validate().map_err(|error| {
            error.map_problems(|problem| match problem {
                ConfigError::Invalid { key, message } => origins
                    .attribute(ConfigError::Invalid { message: without_secrets(&message, &secrets), key }),
                other => other,
            })
        })?;
        Ok(config)
    }

    /// Builds the config without validating it (for fragments).
    pub fn build_unvalidated(self) -> Result<LoomConfig, ConfigError> {
        self.build_with_secrets().map(|built| built.config)
    }

    /// The config, unvalidated, the values substituted from the environment, and where
    /// each key came from.
    fn build_with_secrets(self) -> Result<Built, ConfigError> {
        let mut merged = Value::Object(Map::new());
        let mut origins = Origins::default();
        for layer in self.layers {
            let tree = parse_layer(&layer.yaml).map_err(|error| match &layer.file {
                Some(path) => ConfigError::InFile { path: path.clone(), error: Box::new(error) },
                None => error,
            })?;
            deep_merge(&mut merged, tree.clone());
            origins.layers.push((layer.file, tree));
        }
        let secrets = interpolate(&mut merged, self.env).map_err(|error| origins.attribute(error))?;
        let mut applied = Vec::new();
        for (name, raw) in &self.overrides {
            let path = apply_override(&mut merged, name, raw)?;
            origins.overridden.push(path.clone());
            applied.push((path, name.as_str()));
        }
        let config = serde_path_to_error::deserialize(&merged).map_err(|error| {
            let key = render_path(&to_segments(error.path()));
            let mut message = redact(&key, &error.inner().to_string(), &secrets);
            if let Some((_, var)) = applied.iter().find(|(path, _)| caused_by(&key, &message, path)) {
                message.push_str(&format!(" (set by environment variable {var})"));
                return ConfigError::Parse { key, message };
            }
            origins.attribute(ConfigError::Parse { key, message })
        })?;
        Ok(Built { config, secrets, origins })
    }
}

/// What [`ConfigBuilder::build_with_secrets`] makes.
struct Built {
    config: LoomConfig,
    /// The values substituted from the environment, hidden in error messages.
    secrets: Vec<String>,
    origins: Origins,
}

/// Where the keys of a merged config came from.
#[derive(Default)]
struct Origins {
    /// Each layer's own tree (before substitution), in order, with its file.
    layers: Vec<(Option<PathBuf>, Value)>,
    /// Key paths set by `LOOM_` variables (their errors name the variable instead).
    overridden: Vec<String>,
}

impl Origins {
    /// `error` wrapped in [`ConfigError::InFile`] when its key came from a file.
    fn attribute(&self, error: ConfigError) -> ConfigError {
        let Some(key) = error.key() else { return error };
        if matches!(error, ConfigError::InFile { .. } | ConfigError::Many { .. })
            || self.overridden.iter().any(|path| is_under(path, key))
        {
            return error;
        }
        match self.file_of(key) {
            Some(path) => ConfigError::InFile { path: path.to_path_buf(), error: Box::new(error) },
            None => error,
        }
    }

    /// The file of the last layer that holds `key`, else the last that holds the block
    /// around it (a missing key's error names the block's file).
    fn file_of(&self, key: &str) -> Option<&Path> {
        if key.is_empty() {
            return None;
        }
        let last_holding = |key: &str| self.layers.iter().rev().find(|(_, tree)| holds(tree, key));
        let (file, _) = last_holding(key).or_else(|| parent_key(key).and_then(last_holding))?;
        file.as_deref()
    }
}

/// Whether `key` is `outer` or lies under it.
fn is_under(outer: &str, key: &str) -> bool {
    key == outer || key.strip_prefix(outer).is_some_and(|rest| rest.starts_with(['.', '[']))
}

/// The key one level up from `key` (`a.b[2]` -> `a.b`, `a.b` -> `a`); `None` at the top.
fn parent_key(key: &str) -> Option<&str> {
    let cut = if key.ends_with(']') { key.rfind('[') } else { key.rfind('.') };
    cut.map(|cut| &key[..cut]).filter(|parent| !parent.is_empty())
}

/// Whether the tree `node` has a value at the rendered key path `path` (`a.b[0].c`).
/// Map keys may hold dots, so every key that the path starts with is tried.
fn holds(node: &Value, path: &str) -> bool {
    if path.is_empty() {
        return true;
    }
    match node {
        Value::Object(map) => {
            let path = path.strip_prefix('.').unwrap_or(path);
            map.iter().any(|(key, value)| {
                path.strip_prefix(key.as_str()).is_some_and(|rest| {
                    (rest.is_empty() || rest.starts_with(['.', '['])) && holds(value, rest)
                })
            })
        }
        Value::Array(items) => path
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .and_then(|(index, rest)| Some((items.get(index.parse::<usize>().ok()?)?, rest)))
            .is_some_and(|(item, rest)| holds(item, rest)),
        _ => false,
    }
}

/// Looks a variable up in the process environment.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The process's `LOOM_*` variables that override config keys.
fn process_overrides() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| is_override(name))
        .collect()
}

/// Whether the variable `name` is a config override.
fn is_override(name: &str) -> bool {
    name.len() > ENV_PREFIX.len()
        && name.get(..ENV_PREFIX.len()).is_some_and(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
        && !ENV_IGNORED.iter().any(|ignored| ignored.eq_ignore_ascii_case(name))
}

/// Parses one YAML document into a JSON-like tree; an empty document is an empty map.
fn parse_layer(yaml: &str) -> Result<Value, ConfigError> {
    let value = super::yaml::parse(yaml).map_err(|error| ConfigError::Parse {
        key: String::new(),
        message: format!("invalid YAML: {error}"),
    })?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        _ => Err(ConfigError::Parse {
            key: String::new(),
            message: "the config must be a mapping of keys (like `server:` and `ai_gateway:`)".to_owned(),
        }),
    }
}

/// Merges `top` onto `base`: maps merge key by key, anything else is replaced.
fn deep_merge(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(base), Value::Object(top)) => {
            for (key, value) in top {
                match base.get_mut(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, top) => *base = top,
    }
}

/// Sets the key named by override variable `name` (e.g. `LOOM_SERVER__LISTEN`) to `raw`; returns the key path.
fn apply_override(root: &mut Value, name: &str, raw: &str) -> Result<String, ConfigError> {
    let bad = |message: String| ConfigError::Parse { key: String::new(), message };
    let keys: Vec<String> =
        name[ENV_PREFIX.len()..].split(ENV_SEPARATOR).map(str::to_ascii_lowercase).collect();
    if keys.iter().any(String::is_empty) {
        return Err(bad(format!(
            "environment variable {name}: empty key segment; nest keys with a single `__`, e.g. LOOM_SERVER__LISTEN"
        )));
    }
    let mut path = Vec::new();
    let mut node = root;
    for key in &keys {
        if let Value::Array(items) = node {
            let index = key.parse::<usize>().ok().filter(|index| *index < items.len()).ok_or_else(|| {
                bad(format!(
                    "environment variable {name}: `{key}` is not an index of {} ({} entries)",
                    render_path(&path),
                    items.len()
                ))
            })?;
            path.push(Segment::Index(index));
            node = &mut items[index];
        } else {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            path.push(Segment::Key(key.clone()));
            node = match node {
                Value::Object(map) => map.entry(key.clone()).or_insert(Value::Null),
                _ => {
                    return Err(bad(format!("environment variable {name}: cannot nest under a value")));
                }
            };
        }
    }
    // figment 0.10's unescaping slices by char index and panics on a multi-byte
    // character before a `\`: such a value is read as a JSON string if it is quoted (the
    // same escapes), else taken as the plain string it is.
    let parsed: figment::value::Value = if raw.contains('\\') && !raw.is_ascii() {
        let unquoted = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned());
        figment::value::Value::from(unquoted)
    } else {
        raw.parse().unwrap_or_else(|never| match never {})
    };
    *node = serde_json::to_value(&parsed)
        .map_err(|error| bad(format!("environment variable {name}: unusable value: {error}")))?;
    Ok(render_path(&path))
}

/// Converts a serde path to key segments.
fn to_segments(path: &serde_path_to_error::Path) -> Vec<Segment> {
    use serde_path_to_error::Segment as S;
    path.iter()
        .map(|segment| match segment {
            S::Seq { index } => Segment::Index(*index),
            S::Map { key } => Segment::Key(key.clone()),
            S::Enum { variant } => Segment::Key(variant.clone()),
            S::Unknown => Segment::Key("?".to_owned()),
        })
        .collect()
}

/// Whether the error at `key` with `message` comes from the override of `path`.
fn caused_by(key: &str, message: &str, path: &str) -> bool {
    let under = |outer: &str, inner: &str| {
        inner == outer || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    under(path, key)
        || path
            .rsplit_once('.')
            .is_some_and(|(parent, field)| parent == key && message.contains(&format!("`{field}`")))
}

/// Replaces the values substituted from the environment in `message` with `***`.
fn without_secrets(message: &str, secrets: &[String]) -> String {
    let mut message = message.to_owned();
    // Values under 4 characters are no secret, and hiding them would garble the message.
    for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
        message = message.replace(secret.as_str(), "***");
    }
    message
}

/// Removes secrets from a parse error message: substituted environment values, and any
/// literal at a key that may hold one (`api_key`, `headers`).
fn redact(key: &str, message: &str, secrets: &[String]) -> String {
    let message = without_secrets(message, secrets);
    let sensitive = key.rsplit(['.', '[']).next() == Some("api_key")
        || key.split('.').any(|segment| segment == "headers" || segment.starts_with("headers["));
    if !sensitive {
        return message;
    }
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(quote) if c == quote => {
                out.push_str("***");
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_names_filter_prefix_and_ignored() {
        assert!(is_override("LOOM_SERVER__LISTEN"));
        assert!(is_override("loom_server__listen"));
        assert!(!is_override("LOOM_CONFIG"));
        assert!(!is_override("LOOM_LOG"));
        assert!(!is_override("LOOM_"));
        assert!(!is_override("OPENAI_API_KEY"));
    }

    #[test]
    fn overrides_nest_and_index_lists() {
        let mut root = serde_json::json!({"ai_gateway": {"providers": [{"name": "a"}]}});
        let path = apply_override(&mut root, "LOOM_AI_GATEWAY__PROVIDERS__0__NAME", "b");
        assert_eq!(path.ok().as_deref(), Some("ai_gateway.providers[0].name"));
        let path = apply_override(&mut root, "LOOM_SERVER__MAX_BODY_BYTES", "1024");
        assert_eq!(path.ok().as_deref(), Some("server.max_body_bytes"));
        assert_eq!(
            root,
            serde_json::json!({
                "ai_gateway": {"providers": [{"name": "b"}]},
                "server": {"max_body_bytes": 1024}
            })
        );
        assert!(apply_override(&mut root, "LOOM_AI_GATEWAY__PROVIDERS__3__NAME", "c").is_err());
        assert!(apply_override(&mut root, "LOOM_SERVER____LISTEN", "c").is_err());
    }

    #[test]
    fn key_paths_are_found_in_layer_trees() {
        let tree = serde_json::json!({
            "ai_gateway": {"providers": [{"name": "a"}], "token_accounting": {"prices": {"gpt-4.1": {"x": 1}}}}
        });
        for present in [
            "ai_gateway",
            "ai_gateway.providers",
            "ai_gateway.providers[0]",
            "ai_gateway.providers[0].name",
            "ai_gateway.token_accounting.prices.gpt-4.1.x",
        ] {
            assert!(holds(&tree, present), "{present}");
        }
        for absent in [
            "server",
            "ai_gateway.providers[1]",
            "ai_gateway.providers[0].type",
            "ai_gateway.provider",
            "ai_gateway.providers[x]",
        ] {
            assert!(!holds(&tree, absent), "{absent}");
        }
        assert_eq!(parent_key("a.b[2]"), Some("a.b"));
        assert_eq!(parent_key("a.b[2].c"), Some("a.b[2]"));
        assert_eq!(parent_key("a"), None);
    }

    #[test]
    fn redacts_secret_literals() {
        let message = "invalid type: integer `12345`, expected a string";
        assert_eq!(
            redact("ai_gateway.providers[0].api_key", message, &[]),
            "invalid type: integer `***`, expected a string"
        );
        assert_eq!(redact("server.listen", "bad sk-1 here", &["sk-1".to_owned()]), "bad *** here");
    }

    #[test]
    fn validation_examples_at_secret_keys_stay_readable() {
        let env = |name: &str| (name == "KEY").then(|| "sk-from-the-environment".to_owned());
        let yaml = "ai_gateway:\n  providers:\n    - {name: a, type: openai, api_key: \"\"}\n    \
                    - {name: b, type: openai, api_key: \"${KEY}\", headers: {\"bad name\": x}}\n";
        let error = ConfigBuilder::new(&env).yaml(yaml).build().expect_err("invalid");
        let messages: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
        assert!(
            messages.iter().any(|message| message.contains("(e.g. `api_key: ${API_KEY_VAR}`)")),
            "{messages:?}"
        );
        assert!(messages.iter().all(|message| !message.contains("sk-from-the-environment")), "{messages:?}");
    }
}
