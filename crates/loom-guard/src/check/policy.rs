//! [`Policy`]: a `checks` block compiled, and what it finds in a request's texts.

use std::sync::Arc;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::config::{Action, ChecksConfig, ContentFilterConfig, EmbeddingStageConfig, MAX_REGEX_BYTES, Side};
use super::text::{Inspected, rewrite_texts};
use crate::inspect::injection::{Verdict, injection_score};
use crate::inspect::normalize::{Normalized, fold, normalize, windows};
use crate::inspect::pii::{PiiKind, find};
use crate::inspect::redact::Redactor;
use crate::inspect::semantic;
use loom_core::RequestPayload;

/// The name of the prompt-injection check (in errors, headers, metrics and usage records).
pub const INJECTION: &str = "injection";
/// The name of the personal-data check.
pub const PII: &str = "pii";

/// Why a `checks` block could not be compiled (validation rules these out).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A filter's deny list or regexes did not compile.
    #[error("content filter `{filter}`: its patterns do not compile")]
    Pattern {
        /// The filter's name.
        filter: String,
    },
}

/// The checks that run on a request, compiled from a [`ChecksConfig`].
#[derive(Debug, Clone)]
pub struct Policy {
    injection: Option<InjectionCheck>,
    /// The filters that read requests.
    filters: Vec<ContentFilter>,
    /// The PII check on requests (also when it redacts: redaction covers both sides).
    pii: Option<PiiCheck>,
    /// The filters that read answers.
    answer_filters: Vec<ContentFilter>,
    /// The PII check on answers (block, flag or log).
    answer_pii: Option<PiiCheck>,
}

#[derive(Debug, Clone)]
struct PiiCheck {
    action: Action,
    /// Empty: every kind.
    kinds: Vec<PiiKind>,
    exempt_system: bool,
}

#[derive(Debug, Clone)]
struct InjectionCheck {
    action: Action,
    threshold: Option<f32>,
    exempt_system: bool,
    /// The embedding stage, when enabled.
    embedding: Option<EmbeddingStageConfig>,
}

#[derive(Debug, Clone)]
struct ContentFilter {
    /// `content_filter:<name>`.
    check: Arc<str>,
    action: Action,
    exempt_system: bool,
    /// The deny list as one regex over folded text.
    deny: Option<Regex>,
    regexes: Option<RegexSet>,
}

/// What one check found in a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The check's name: [`INJECTION`] or `content_filter:<name>`.
    pub check: Arc<str>,
    /// What the check does when it fires.
    pub action: Action,
    /// Whether it fired.
    pub fired: bool,
    /// The injection check's highest score and the rules that matched (none for filters).
    pub injection: Option<InjectionFinding>,
    /// The PII check's kinds found, by name (never the values; empty for other checks).
    pub pii_kinds: Vec<&'static str>,
}

/// The injection check's evidence, without the text it was found in.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectionFinding {
    /// The highest score of any text.
    pub score: f32,
    /// The threshold it was compared with.
    pub threshold: f32,
    /// The rule ids that matched, in order of first match.
    pub rules: Vec<&'static str>,
    /// Which of the inspected texts scored highest.
    pub top: Option<usize>,
    /// The embedding stage's probability, when it ran.
    pub embedding: Option<f32>,
}

/// What `POST /ai/guard/scan` reports about one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// The injection verdict, its threshold the configured one when set.
    pub injection: Verdict,
    /// The content filters that match, by name.
    pub content_filters: Vec<String>,
    /// How many payloads normalisation decoded from the text.
    pub decoded_views: usize,
    /// The kinds of personal data and credentials in the text, by name.
    pub pii_kinds: Vec<&'static str>,
}

impl Policy {
    /// Compiles `config`.
    pub fn new(config: &ChecksConfig) -> Result<Policy, PolicyError> {
        let injection = config.injection.enabled.then_some(InjectionCheck {
            action: config.injection.action,
            threshold: config.injection.threshold,
            exempt_system: config.injection.exempt_system,
            embedding: config.injection.embedding.enabled.then(|| config.injection.embedding.clone()),
        });
        let on = |filter: &ContentFilterConfig, side| filter.on.contains(&side);
        let filters_on = |side| {
            config
                .content_filters
                .iter()
                .filter(|filter| on(filter, side))
                .map(ContentFilter::new)
                .collect::<Result<Vec<_>, _>>()
        };
        let pii = &config.pii;
        let pii_check =
            || PiiCheck { action: pii.action, kinds: pii.kinds.clone(), exempt_system: pii.exempt_system };
        let redacts = pii.action == Action::Redact;
        Ok(Policy {
            injection,
            filters: filters_on(Side::Request)?,
            pii: (pii.enabled && (redacts || pii.on.contains(&Side::Request))).then(pii_check),
            answer_filters: filters_on(Side::Response)?,
            answer_pii: (pii.enabled && !redacts && pii.on.contains(&Side::Response)).then(pii_check),
        })
    }

    /// Whether no check runs.
    pub fn is_empty(&self) -> bool {
        self.injection.is_none() && self.filters.is_empty() && self.pii.is_none() && !self.checks_answers()
    }

    /// The injection check's embedding stage, when enabled.
    pub fn embedding_stage(&self) -> Option<&EmbeddingStageConfig> {
        self.injection.as_ref().and_then(|check| check.embedding.as_ref())
    }

    /// Whether any check reads answers (besides PII redaction).
    pub fn checks_answers(&self) -> bool {
        !self.answer_filters.is_empty() || self.answer_pii.is_some()
    }

    /// Every answer-side check, as not fired, in [`Policy::inspect_answer`]'s order.
    pub fn answer_checks(&self) -> Vec<Finding> {
        let unfired = |check: Arc<str>, action| Finding {
            check,
            action,
            fired: false,
            injection: None,
            pii_kinds: Vec::new(),
        };
        let filters = self.answer_filters.iter().map(|filter| unfired(filter.check.clone(), filter.action));
        let pii = self.answer_pii.as_ref().map(|check| unfired(Arc::from(PII), check.action));
        filters.chain(pii).collect()
    }

    /// Runs the answer-side checks on an answer's text: one finding per check, the
    /// content filters first, the PII check last.
    pub fn inspect_answer(&self, text: &str) -> Vec<Finding> {
        let mut fired: Vec<bool> =
            self.answer_filters.iter().map(|filter| filter.matches_raw(text)).collect();
        if self.answer_filters.iter().zip(&fired).any(|(filter, fired)| !fired && filter.deny.is_some()) {
            for window in windows(text) {
                let normalized = normalize(window);
                for (filter, fired) in self.answer_filters.iter().zip(fired.iter_mut()) {
                    *fired = *fired || filter.matches_folded(&normalized);
                }
            }
        }
        let filters = self.answer_filters.iter().zip(fired).map(|(filter, fired)| Finding {
            check: filter.check.clone(),
            action: filter.action,
            fired,
            injection: None,
            pii_kinds: Vec::new(),
        });
        let pii = self.answer_pii.as_ref().map(|check| {
            let mut kinds: Vec<PiiKind> = Vec::new();
            for found in find(text) {
                if (check.kinds.is_empty() || check.kinds.contains(&found.kind))
                    && !kinds.contains(&found.kind)
                {
                    kinds.push(found.kind);
                }
            }
            kinds.sort();
            Finding {
                check: Arc::from(PII),
                action: check.action,
                fired: !kinds.is_empty(),
                injection: None,
                pii_kinds: kinds.iter().map(|kind| kind.as_str()).collect(),
            }
        });
        filters.chain(pii).collect()
    }

    /// Runs every check on `texts`: one finding per check, the injection check first, the
    /// PII check last.
    pub fn inspect(&self, texts: &[Inspected<'_>]) -> Vec<Finding> {
        let mut injection = self.injection.as_ref().map(|check| (check, InjectionFinding::default()));
        let mut fired = vec![false; self.filters.len()];
        let mut pii_kinds: Vec<PiiKind> = Vec::new();
        for (index, text) in texts.iter().enumerate() {
            if let Some(check) = &self.pii
                && !(text.system && check.exempt_system)
            {
                for found in find(&text.text) {
                    let wanted = check.kinds.is_empty() || check.kinds.contains(&found.kind);
                    if wanted && !pii_kinds.contains(&found.kind) {
                        pii_kinds.push(found.kind);
                    }
                }
            }
            for (filter, fired) in self.filters.iter().zip(fired.iter_mut()) {
                if !*fired && filter.applies(text) && filter.matches_raw(&text.text) {
                    *fired = true;
                }
            }
            let injection_open =
                injection.as_ref().is_some_and(|(check, found)| check.applies(text) && !found.settled(check));
            let deny_open = self
                .filters
                .iter()
                .zip(&fired)
                .any(|(filter, fired)| !fired && filter.deny.is_some() && filter.applies(text));
            if !injection_open && !deny_open {
                continue;
            }
            for window in windows(&text.text) {
                let normalized = normalize(window);
                if injection_open && let Some((_, found)) = injection.as_mut() {
                    found.add(&injection_score(&normalized), index);
                }
                for (filter, fired) in self.filters.iter().zip(fired.iter_mut()) {
                    if !*fired && filter.applies(text) && filter.matches_folded(&normalized) {
                        *fired = true;
                    }
                }
            }
        }
        let injection = injection.map(|(check, found)| {
            let fired = found.fired(check.threshold);
            let threshold = check.threshold.unwrap_or_else(|| found.model_threshold());
            Finding {
                check: Arc::from(INJECTION),
                action: check.action,
                fired,
                injection: Some(InjectionFinding { threshold, ..found }),
                pii_kinds: Vec::new(),
            }
        });
        let pii = self.pii.as_ref().map(|check| {
            pii_kinds.sort();
            Finding {
                check: Arc::from(PII),
                action: check.action,
                fired: !pii_kinds.is_empty(),
                injection: None,
                pii_kinds: pii_kinds.iter().map(|kind| kind.as_str()).collect(),
            }
        });
        let filters = self.filters.iter().zip(fired).map(|(filter, fired)| Finding {
            check: filter.check.clone(),
            action: filter.action,
            fired,
            injection: None,
            pii_kinds: Vec::new(),
        });
        injection.into_iter().chain(filters).chain(pii).collect()
    }

    /// With the PII check's action `redact`: replaces every value of its kinds in the
    /// texts the checks read with a placeholder (`[EMAIL_1]`, the same one for the same
    /// value throughout the request), and returns the placeholders given, for the answer.
    pub fn redact(&self, payload: &mut RequestPayload) -> Option<Redactor> {
        let check = self.pii.as_ref().filter(|check| check.action == Action::Redact)?;
        let mut redactor = Redactor::new();
        rewrite_texts(payload, check.exempt_system, |text| {
            if check.kinds.is_empty() {
                let redacted = redactor.redact_all(text);
                return (redacted != text).then_some(redacted);
            }
            let findings: Vec<_> =
                find(text).into_iter().filter(|found| check.kinds.contains(&found.kind)).collect();
            (!findings.is_empty()).then(|| redactor.redact(text, &findings))
        });
        Some(redactor)
    }

    /// Scans one text (read as a user's) for an operator: the injection verdict with the
    /// configured threshold, and the filters (on either side) that match.
    pub fn scan(&self, text: &str) -> Scan {
        let normalized = normalize(text);
        let mut injection = injection_score(&normalized);
        if let Some(threshold) = self.injection.as_ref().and_then(|check| check.threshold) {
            injection.threshold = threshold;
            injection.injection = injection.score >= threshold;
        }
        let mut content_filters: Vec<String> = Vec::new();
        for filter in self.filters.iter().chain(&self.answer_filters) {
            let name = filter.name();
            let seen = content_filters.iter().any(|found| found == name);
            if !seen && (filter.matches_raw(text) || filter.matches_folded(&normalized)) {
                content_filters.push(name.to_owned());
            }
        }
        let mut pii_kinds: Vec<PiiKind> = Vec::new();
        for found in find(text) {
            if !pii_kinds.contains(&found.kind) {
                pii_kinds.push(found.kind);
            }
        }
        pii_kinds.sort();
        Scan {
            injection,
            content_filters,
            decoded_views: normalized.decoded.len(),
            pii_kinds: pii_kinds.iter().map(|kind| kind.as_str()).collect(),
        }
    }
}

impl Default for InjectionFinding {
    fn default() -> Self {
        InjectionFinding {
            score: 0.0,
            threshold: f32::INFINITY,
            rules: Vec::new(),
            top: None,
            embedding: None,
        }
    }
}

impl InjectionFinding {
    fn add(&mut self, verdict: &Verdict, text: usize) {
        if self.top.is_none() || verdict.score > self.score {
            self.top = Some(text);
        }
        self.score = self.score.max(verdict.score);
        // The built-in model's threshold is the same for every text.
        self.threshold = verdict.threshold;
        for rule in &verdict.rules.matched {
            if !self.rules.contains(rule) {
                self.rules.push(rule);
            }
        }
    }

    /// The built-in model's threshold, also when no text was scored.
    fn model_threshold(&self) -> f32 {
        if self.threshold.is_finite() {
            self.threshold
        } else {
            injection_score(&Normalized::default()).threshold
        }
    }

    /// Whether no later text can change the decision: the score is at or above the
    /// threshold and, with the embedding stage, above the band it decides.
    fn settled(&self, check: &InjectionCheck) -> bool {
        let band_top = match (&check.embedding, semantic::builtin()) {
            (Some(_), Ok(model)) => model.band[1],
            _ => 0.0,
        };
        self.fired(check.threshold) && self.score >= band_top
    }

    fn fired(&self, configured: Option<f32>) -> bool {
        self.score >= configured.unwrap_or(self.threshold)
    }
}

impl InjectionCheck {
    fn applies(&self, text: &Inspected<'_>) -> bool {
        !(text.system && self.exempt_system)
    }
}

impl ContentFilter {
    fn new(config: &ContentFilterConfig) -> Result<ContentFilter, PolicyError> {
        let error = || PolicyError::Pattern { filter: config.name.clone() };
        let phrases: Vec<String> = config
            .deny
            .iter()
            .map(|phrase| fold(phrase))
            .filter(|phrase| !phrase.is_empty())
            .map(|phrase| regex::escape(&phrase))
            .collect();
        let deny = if phrases.is_empty() {
            None
        } else {
            let pattern = format!(r"(?i)\b(?:{})\b", phrases.join("|"));
            Some(RegexBuilder::new(&pattern).size_limit(MAX_REGEX_BYTES * 4).build().map_err(|_| error())?)
        };
        let regexes = if config.regex.is_empty() {
            None
        } else {
            Some(
                RegexSetBuilder::new(&config.regex)
                    .size_limit(MAX_REGEX_BYTES * 4)
                    .build()
                    .map_err(|_| error())?,
            )
        };
        Ok(ContentFilter {
            check: Arc::from(format!("content_filter:{}", config.name)),
            action: config.action,
            exempt_system: config.exempt_system,
            deny,
            regexes,
        })
    }

    fn name(&self) -> &str {
        self.check.strip_prefix("content_filter:").unwrap_or(&self.check)
    }

    fn applies(&self, text: &Inspected<'_>) -> bool {
        !(text.system && self.exempt_system)
    }

    fn matches_raw(&self, text: &str) -> bool {
        self.regexes.as_ref().is_some_and(|regexes| regexes.is_match(text))
    }

    fn matches_folded(&self, normalized: &Normalized) -> bool {
        self.deny.as_ref().is_some_and(|deny| normalized.views().any(|view| deny.is_match(view)))
    }
}
