//! `checks:` as written in YAML (globally, per route, per key), and its validation.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::ConfigProblem;
use crate::inspect::pii::PiiKind;

/// Most content filters one `checks` block may hold.
pub const MAX_FILTERS: usize = 64;
/// Most deny-list entries plus regexes one filter may hold.
pub const MAX_FILTER_PATTERNS: usize = 4096;
/// Most bytes a compiled filter regex may take (the `regex` crate's size limit).
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// What a check does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refuse the request with a 400 `content_policy_violation`.
    #[default]
    Block,
    /// Let it through and name the check in the answer's `x-loom-guard` header.
    Flag,
    /// Let it through and write a log line (the check and its score, never the text).
    Log,
    /// Replace each value found with a placeholder (`[EMAIL_1]`) and let the request go
    /// on: only for `pii`.
    Redact,
}

impl Action {
    /// The action's name as written in config (and its metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Flag => "flag",
            Action::Log => "log",
            Action::Redact => "redact",
        }
    }
}

/// Which side of an exchange a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// What the client sends (what the model will read).
    Request,
    /// What the model answers.
    Response,
}

fn request_side() -> Vec<Side> {
    vec![Side::Request]
}

/// `checks:`: which security checks run on a request's input, and what each does.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// The prompt-injection check (on unless `enabled: false`).
    pub injection: InjectionConfig,
    /// Deny lists and regexes, each with a name and an action (default none).
    pub content_filters: Vec<ContentFilterConfig>,
    /// Personal data and credentials in the request (off unless `enabled: true`).
    pub pii: PiiConfig,
}

/// `checks.pii`: personal data and credentials in what the model will read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Whether the check runs (default false).
    pub enabled: bool,
    /// What it does when it finds one of `kinds` (default block).
    pub action: Action,
    /// The kinds it looks for (default: every kind).
    pub kinds: Vec<PiiKind>,
    /// Whether system and developer messages are skipped (default true).
    pub exempt_system: bool,
    /// Which sides it reads (default `[request]`; `redact` covers both whatever this says).
    pub on: Vec<Side>,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            enabled: false,
            action: Action::Block,
            kinds: Vec::new(),
            exempt_system: true,
            on: request_side(),
        }
    }
}

/// `checks.injection`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// Whether the check runs (default true).
    pub enabled: bool,
    /// What it does when it fires (default block).
    pub action: Action,
    /// The score in (0, 1] at or above which a text is an injection (default: the
    /// built-in model's, chosen on validation data).
    pub threshold: Option<f32>,
    /// Whether system and developer messages are skipped (default true: operators write them).
    pub exempt_system: bool,
    /// The embedding stage (off unless `enabled: true`; needs `ai_gateway.embedder`).
    pub embedding: EmbeddingStageConfig,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        InjectionConfig {
            enabled: true,
            action: Action::Block,
            threshold: None,
            exempt_system: true,
            embedding: EmbeddingStageConfig::default(),
        }
    }
}

/// `checks.injection.embedding`: a classifier over the text's sentence embedding, asked
/// only when the default stages' score falls in the band they are unsure about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingStageConfig {
    /// Whether the stage runs (default false).
    pub enabled: bool,
    /// How long a request waits for its embedding (default 200ms).
    #[serde(with = "humantime_serde")]
    pub timeout: std::time::Duration,
    /// What the check decides when no embedding comes (saturated pool, timeout, error):
    /// `allow` keeps the default stages' decision (the default), `block` treats the text
    /// as an injection.
    pub on_error: OnEmbeddingError,
    /// Most windows of 256 word pieces embedded per text (default 4; the rest is read by
    /// the default stages only).
    pub max_windows: usize,
}

impl Default for EmbeddingStageConfig {
    fn default() -> Self {
        EmbeddingStageConfig {
            enabled: false,
            timeout: std::time::Duration::from_millis(200),
            on_error: OnEmbeddingError::Allow,
            max_windows: 4,
        }
    }
}

/// `checks.injection.embedding.on_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnEmbeddingError {
    /// Keep the default stages' decision.
    #[default]
    Allow,
    /// Treat the text as an injection.
    Block,
}

/// Most windows `checks.injection.embedding.max_windows` may ask for.
pub const MAX_EMBEDDING_WINDOWS: usize = 32;

/// One `checks.content_filters[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentFilterConfig {
    /// The filter's name: in errors, the `x-loom-guard` header and metrics.
    pub name: String,
    /// Words and phrases, matched case-insensitively and as whole words on the
    /// normalised text (and every payload decoded from it).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Regular expressions, matched on the text as sent.
    #[serde(default)]
    pub regex: Vec<String>,
    /// What the filter does when it matches (default block).
    #[serde(default)]
    pub action: Action,
    /// Whether system and developer messages are skipped (default true).
    #[serde(default = "yes")]
    pub exempt_system: bool,
    /// Which sides it reads (default `[request]`).
    #[serde(default = "request_side")]
    pub on: Vec<Side>,
}

fn yes() -> bool {
    true
}

impl ChecksConfig {
    /// The checks that run when no `checks` block is configured: the prompt-injection
    /// check with `action: flag` (marked, counted, never refused).
    pub fn built_in() -> ChecksConfig {
        ChecksConfig {
            injection: InjectionConfig { action: Action::Flag, ..InjectionConfig::default() },
            ..ChecksConfig::default()
        }
    }

    /// Problems with this block, its paths starting with `path` (e.g. `ai_gateway.checks`).
    pub fn validate_at(&self, path: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if let Some(threshold) = self.injection.threshold
            && !(threshold > 0.0 && threshold <= 1.0)
        {
            problems.push(ConfigProblem {
                path: format!("{path}.injection.threshold"),
                message: format!("{threshold} is not in (0, 1]"),
            });
        }
        let embedding = &self.injection.embedding;
        if embedding.enabled && !(1..=MAX_EMBEDDING_WINDOWS).contains(&embedding.max_windows) {
            problems.push(ConfigProblem {
                path: format!("{path}.injection.embedding.max_windows"),
                message: format!("must be 1 to {MAX_EMBEDDING_WINDOWS}"),
            });
        }
        if embedding.enabled && embedding.timeout.is_zero() {
            problems.push(ConfigProblem {
                path: format!("{path}.injection.embedding.timeout"),
                message: "must be more than 0".to_owned(),
            });
        }
        let only_pii = |path: String| ConfigProblem {
            path,
            message: "redact is only for pii (use block, flag or log)".to_owned(),
        };
        if self.injection.action == Action::Redact {
            problems.push(only_pii(format!("{path}.injection.action")));
        }
        for (index, filter) in self.content_filters.iter().enumerate() {
            if filter.action == Action::Redact {
                problems.push(only_pii(format!("{path}.content_filters[{index}].action")));
            }
        }
        if self.pii.on.is_empty() {
            problems.push(no_side(format!("{path}.pii.on")));
        }
        for (index, filter) in self.content_filters.iter().enumerate() {
            if filter.on.is_empty() {
                problems.push(no_side(format!("{path}.content_filters[{index}].on")));
            }
        }
        if self.content_filters.len() > MAX_FILTERS {
            problems.push(ConfigProblem {
                path: format!("{path}.content_filters"),
                message: format!("at most {MAX_FILTERS} filters"),
            });
        }
        let mut names = HashSet::new();
        for (index, filter) in self.content_filters.iter().enumerate() {
            let at = format!("{path}.content_filters[{index}]");
            if let Some(message) = name_problem(&filter.name) {
                problems.push(ConfigProblem { path: format!("{at}.name"), message: message.to_owned() });
            } else if !names.insert(filter.name.as_str()) {
                problems.push(ConfigProblem {
                    path: format!("{at}.name"),
                    message: format!("duplicate filter name `{}`", filter.name),
                });
            }
            problems.extend(filter.pattern_problems(&at));
        }
        problems
    }
}

impl ContentFilterConfig {
    fn pattern_problems(&self, at: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let problem = |path: String, message: String| ConfigProblem { path, message };
        if self.deny.is_empty() && self.regex.is_empty() {
            problems.push(problem(at.to_owned(), "set `deny`, `regex` or both".to_owned()));
        }
        if self.deny.len() + self.regex.len() > MAX_FILTER_PATTERNS {
            problems.push(problem(at.to_owned(), format!("at most {MAX_FILTER_PATTERNS} patterns")));
        }
        for (index, phrase) in self.deny.iter().enumerate() {
            if crate::inspect::normalize::fold(phrase).is_empty() {
                problems.push(problem(format!("{at}.deny[{index}]"), "must hold a word".to_owned()));
            }
        }
        for (index, pattern) in self.regex.iter().enumerate() {
            if let Err(error) = regex::RegexBuilder::new(pattern).size_limit(MAX_REGEX_BYTES).build() {
                problems.push(problem(format!("{at}.regex[{index}]"), regex_message(&error)));
            }
        }
        problems
    }
}

fn no_side(path: String) -> ConfigProblem {
    ConfigProblem { path, message: "name `request`, `response` or both".to_owned() }
}

/// A regex error without the pattern echoed (a deny pattern may itself be sensitive).
fn regex_message(error: &regex::Error) -> String {
    match error {
        regex::Error::CompiledTooBig(limit) => format!("compiles to more than {limit} bytes"),
        _ => "not a valid regular expression".to_owned(),
    }
}

/// Why a filter name is unusable, if it is: names are metric labels and header values.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > 64 {
        Some("at most 64 characters")
    } else if !name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')) {
        Some("only ASCII letters, digits, `_`, `-` and `.`")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> ChecksConfig {
        use figment::providers::{Format, Yaml};
        figment::Figment::from(Yaml::string(yaml)).extract().unwrap()
    }

    #[test]
    fn an_empty_block_runs_the_injection_check_with_the_defaults() {
        let config = parse("content_filters: []");
        assert_eq!(config.injection, InjectionConfig::default());
        assert!(config.injection.enabled && config.injection.exempt_system);
        assert_eq!(config.injection.action, Action::Block);
        assert!(config.validate_at("checks").is_empty());
    }

    #[test]
    fn problems_name_their_key_path_and_never_echo_a_pattern() {
        let config = parse(
            r#"
injection: {threshold: 1.5}
content_filters:
  - {name: "bad name", deny: [secret-project]}
  - {name: codes, regex: ["(unclosed-SECRET"]}
  - {name: codes, deny: ["  "]}
  - {name: empty}
"#,
        );
        let problems: Vec<String> =
            config.validate_at("ai_gateway.checks").iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "ai_gateway.checks.injection.threshold: 1.5 is not in (0, 1]",
                "ai_gateway.checks.content_filters[0].name: only ASCII letters, digits, `_`, `-` and `.`",
                "ai_gateway.checks.content_filters[1].regex[0]: not a valid regular expression",
                "ai_gateway.checks.content_filters[2].name: duplicate filter name `codes`",
                "ai_gateway.checks.content_filters[2].deny[0]: must hold a word",
                "ai_gateway.checks.content_filters[3]: set `deny`, `regex` or both",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        use figment::providers::{Format, Yaml};
        let result: Result<ChecksConfig, _> =
            figment::Figment::from(Yaml::string("injection: {treshold: 0.5}")).extract();
        assert!(result.is_err());
    }
}
