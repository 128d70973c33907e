//! `${VAR}` and `${VAR:-default}` substitution in parsed string values.

use serde_json::Value;

use super::error::ConfigError;

/// One step of a key path: a map key or a list index.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    /// A map key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// Renders a key path as `a.b[0].c`.
pub(crate) fn render_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Substitutes `${VAR}` in every string value of `value` (never in keys), looking
/// variables up with `env`; returns the values substituted from the environment.
pub(crate) fn interpolate(
    value: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let mut used = Vec::new();
    let mut path = Vec::new();
    walk(value, env, &mut path, &mut used)?;
    Ok(used)
}

fn walk(
    value: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
    path: &mut Vec<Segment>,
    used: &mut Vec<String>,
) -> Result<(), ConfigError> {
    match value {
        Value::String(text) => {
            if text.contains('$') {
                *text = substitute(text, env, used).map_err(|error| error.at(render_path(path)))?;
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                path.push(Segment::Index(index));
                walk(item, env, path, used)?;
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                path.push(Segment::Key(key.clone()));
                walk(item, env, path, used)?;
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// A substitution failure, before the key path is known.
enum SubstError {
    Missing(String),
    Syntax(String),
}

impl SubstError {
    fn at(self, key: String) -> ConfigError {
        match self {
            SubstError::Missing(var) => ConfigError::MissingEnv { var, key },
            SubstError::Syntax(message) => ConfigError::Parse { key, message },
        }
    }
}

/// Expands the placeholders of one string.
fn substitute(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    used: &mut Vec<String>,
) -> Result<String, SubstError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let tail = &rest[dollar..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| {
                SubstError::Syntax("unterminated `${`: expected `${VAR}` or `${VAR:-default}`".to_owned())
            })?;
            let body = &after[..end];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if !is_var_name(name) {
                return Err(SubstError::Syntax(format!(
                    "invalid placeholder `${{{name}}}`: a variable name is letters, digits and `_`; \
                     write `${{VAR:-default}}` for a default"
                )));
            }
            match (env(name), default) {
                (Some(found), Some(default)) if found.is_empty() => out.push_str(default),
                (Some(found), _) => {
                    out.push_str(&found);
                    if !found.is_empty() {
                        used.push(found);
                    }
                }
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(SubstError::Missing(name.to_owned())),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `name` is a valid environment variable name.
fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-secret".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, String> {
        let mut used = Vec::new();
        substitute(text, &env, &mut used).map_err(|error| match error {
            SubstError::Missing(var) => format!("missing {var}"),
            SubstError::Syntax(message) => message,
        })
    }

    #[test]
    fn expands_placeholders_and_defaults() {
        assert_eq!(run("${KEY}").as_deref(), Ok("sk-secret"));
        assert_eq!(run("Bearer ${KEY}!").as_deref(), Ok("Bearer sk-secret!"));
        assert_eq!(run("${NOPE:-fallback}").as_deref(), Ok("fallback"));
        assert_eq!(run("${EMPTY:-fallback}").as_deref(), Ok("fallback"));
        assert_eq!(run("${EMPTY}").as_deref(), Ok(""));
        assert_eq!(run("${KEY:-fallback}").as_deref(), Ok("sk-secret"));
        assert_eq!(run("${NOPE:-}").as_deref(), Ok(""));
        assert_eq!(run("cost $5, $${KEY}").as_deref(), Ok("cost $5, ${KEY}"));
        assert_eq!(run("trailing $").as_deref(), Ok("trailing $"));
    }

    #[test]
    fn reports_missing_and_malformed_placeholders() {
        assert_eq!(run("${NOPE}"), Err("missing NOPE".to_owned()));
        assert!(run("${KEY").is_err_and(|message| message.contains("unterminated")));
        assert!(run("${KEY:fallback}").is_err_and(|message| message.contains("invalid placeholder")));
        assert!(run("${}").is_err());
    }

    #[test]
    fn paths_render_with_dots_and_indices() {
        let path = [
            Segment::Key("ai_gateway".to_owned()),
            Segment::Key("providers".to_owned()),
            Segment::Index(0),
            Segment::Key("api_key".to_owned()),
        ];
        assert_eq!(render_path(&path), "ai_gateway.providers[0].api_key");
    }
}
