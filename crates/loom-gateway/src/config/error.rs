//! The error a config that cannot load reports; each names the offending key.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded; every variant but `Io` names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed, or a key is unknown or has the wrong type.
    #[error("{}{message}", KeyPrefix(key))]
    Parse {
        /// Dotted key path, e.g. `ai_gateway.providers[0]`; empty for the document itself.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A `${VAR}` names an environment variable that is not set.
    #[error("{}environment variable {var} is not set", KeyPrefix(key))]
    MissingEnv {
        /// The variable's name.
        var: String,
        /// Dotted key path of the value that uses it.
        key: String,
    },
    /// The config parsed but breaks a rule.
    #[error("{}{message}", KeyPrefix(key))]
    Invalid {
        /// Dotted key path of the offending value.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// An error at a key whose value came from this config file (when several are layered).
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file that set the key (or the block holding it).
        path: PathBuf,
        /// The error itself.
        error: Box<ConfigError>,
    },
    /// Several broken rules, in config order, one line each; never fewer than two.
    #[error("{}", Lines(errors))]
    Many {
        /// Each error (none of them `Many`).
        errors: Vec<ConfigError>,
    },
}

impl ConfigError {
    /// The dotted key path at fault, if the error has one (the first error's, for `Many`).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Parse { key, .. }
            | ConfigError::MissingEnv { key, .. }
            | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::InFile { error, .. } => error.key(),
            ConfigError::Many { errors } => errors.first().and_then(ConfigError::key),
        }
    }

    /// Each error this one reports: the errors of `Many`, else itself.
    pub fn problems(&self) -> &[ConfigError] {
        match self {
            ConfigError::Many { errors } => errors,
            other => std::slice::from_ref(other),
        }
    }

    /// The error for `problems` found together: none, the one, or `Many`.
    pub(crate) fn from_problems(mut problems: Vec<ConfigError>) -> Option<Self> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(ConfigError::Many { errors: problems }),
        }
    }

    /// This error with `change` applied to each of its problems.
    pub(crate) fn map_problems(self, change: impl Fn(ConfigError) -> ConfigError) -> Self {
        match self {
            ConfigError::Many { errors } => {
                ConfigError::Many { errors: errors.into_iter().map(change).collect() }
            }
            other => change(other),
        }
    }

    /// A validation error at `key`.
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), message: message.into() }
    }
}

/// Writes `key: `, or nothing for the document root.
struct KeyPrefix<'a>(&'a str);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { Ok(()) } else { write!(f, "{}: ", self.0) }
    }
}

/// Writes each error on its own line.
struct Lines<'a>(&'a [ConfigError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}
