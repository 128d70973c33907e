//! Measures the semantic match on labelled question pairs: how many paraphrases hit, how
//! many different questions would be served the wrong answer, with the guard and without.
//!
//! The embedder is the caller's (a closure from text to vector), so the same figures come
//! from the local MiniLM or any embeddings endpoint.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::same_question::{Difference, Verdict, same_question};

/// The share of must-miss pairs the issue allows to hit.
pub const MAX_FALSE_HIT_RATE: f64 = 0.01;
/// The share of paraphrases the issue wants to hit.
pub const MIN_PARAPHRASE_HIT_RATE: f64 = 0.70;

/// What a labelled pair tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairKind {
    /// The same question in other words: must hit.
    Paraphrase,
    /// One is negated: must miss.
    Negation,
    /// Different numbers: must miss.
    Number,
    /// Different units or conversion direction: must miss.
    Unit,
    /// A different name, product or identifier: must miss.
    Entity,
    /// A comparison reversed: must miss.
    Comparison,
    /// A different date or time: must miss.
    Date,
    /// A different quoted string: must miss.
    Quote,
    /// A related but different question: must miss.
    Topic,
}

impl PairKind {
    /// A lower-case name, as in the data file.
    pub fn as_str(self) -> &'static str {
        match self {
            PairKind::Paraphrase => "paraphrase",
            PairKind::Negation => "negation",
            PairKind::Number => "number",
            PairKind::Unit => "unit",
            PairKind::Entity => "entity",
            PairKind::Comparison => "comparison",
            PairKind::Date => "date",
            PairKind::Quote => "quote",
            PairKind::Topic => "topic",
        }
    }
}

/// One labelled pair: `a` is the stored question, `b` the new one.
#[derive(Clone, Debug, Deserialize)]
pub struct QuestionPair {
    /// The question whose answer is stored.
    pub a: String,
    /// The question asked now.
    pub b: String,
    /// Whether `a`'s answer answers `b`.
    pub same: bool,
    /// What the pair tests.
    pub kind: PairKind,
    /// The subject area ("cooking", "finance", ...).
    pub domain: String,
}

/// A data file that cannot be read as labelled pairs.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A line is not a pair.
    #[error("line {line}: {source}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What serde_json found.
        source: serde_json::Error,
    },
    /// `same` disagrees with `kind` (only paraphrases are the same question).
    #[error("line {line}: `same` is {same} but the kind is {kind}")]
    Inconsistent {
        /// 1-based line number.
        line: usize,
        /// The `same` field.
        same: bool,
        /// The `kind` field.
        kind: &'static str,
    },
}

/// Reads JSON lines of `{"a", "b", "same", "kind", "domain"}`; blank lines are skipped.
pub fn parse_pairs(jsonl: &str) -> Result<Vec<QuestionPair>, EvalError> {
    let mut pairs = Vec::new();
    for (index, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let pair: QuestionPair =
            serde_json::from_str(line).map_err(|source| EvalError::Parse { line: index + 1, source })?;
        if pair.same != (pair.kind == PairKind::Paraphrase) {
            return Err(EvalError::Inconsistent {
                line: index + 1,
                same: pair.same,
                kind: pair.kind.as_str(),
            });
        }
        pairs.push(pair);
    }
    Ok(pairs)
}

/// A pair with its cosine and the guard's verdict (which depends on no threshold).
#[derive(Clone, Copy, Debug)]
pub struct ScoredPair {
    /// The pair's kind.
    pub kind: PairKind,
    /// Cosine similarity of the two embeddings.
    pub cosine: f32,
    /// The guard's verdict, `a` stored and `b` new.
    pub verdict: Verdict,
}

impl ScoredPair {
    /// Scores a pair whose cosine is known.
    pub fn new(pair: &QuestionPair, cosine: f32) -> ScoredPair {
        ScoredPair { kind: pair.kind, cosine, verdict: same_question(&pair.a, &pair.b) }
    }

    /// Whether the cache serves `a`'s answer for `b` at `threshold`.
    pub fn hits(&self, threshold: f32) -> bool {
        self.cosine >= threshold && self.verdict.is_same()
    }
}

/// Cosine similarity (0 when either vector is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norms == 0.0 { 0.0 } else { dot / norms }
}

/// Embeds both sides of every pair with `embed` and runs the guard on each.
pub fn score_pairs<E>(
    pairs: &[QuestionPair],
    mut embed: impl FnMut(&str) -> Result<Vec<f32>, E>,
) -> Result<Vec<ScoredPair>, E> {
    pairs.iter().map(|pair| Ok(ScoredPair::new(pair, cosine(&embed(&pair.a)?, &embed(&pair.b)?)))).collect()
}

/// Embeds, guards and counts at one threshold: [`score_pairs`] then [`evaluate`].
pub fn evaluate_pairs<E>(
    pairs: &[QuestionPair],
    embed: impl FnMut(&str) -> Result<Vec<f32>, E>,
    threshold: f32,
) -> Result<Evaluation, E> {
    Ok(evaluate(&score_pairs(pairs, embed)?, threshold))
}

/// Hits among some pairs: with the guard, and with the cosine alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Pairs counted.
    pub pairs: usize,
    /// Cosine at or above the threshold and the guard agrees.
    pub hits: usize,
    /// Cosine at or above the threshold.
    pub cosine_hits: usize,
}

impl Tally {
    fn add(&mut self, pair: &ScoredPair, threshold: f32) {
        self.pairs += 1;
        self.hits += usize::from(pair.hits(threshold));
        self.cosine_hits += usize::from(pair.cosine >= threshold);
    }

    /// Share of pairs that hit with the guard.
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits, self.pairs)
    }

    /// Share of pairs that hit on the cosine alone.
    pub fn cosine_hit_rate(&self) -> f64 {
        ratio(self.cosine_hits, self.pairs)
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// The figures at one threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The similarity threshold.
    pub threshold: f32,
    /// Paraphrases (must hit).
    pub paraphrases: Tally,
    /// All must-miss pairs: their hits are false hits.
    pub must_miss: Tally,
    /// Must-miss pairs by kind.
    pub by_kind: BTreeMap<PairKind, Tally>,
    /// Paraphrases the guard refused (at any cosine), by the reason it gave.
    pub paraphrases_refused: BTreeMap<&'static str, usize>,
}

impl Evaluation {
    /// Whether the targets hold: false hits <= 1%, paraphrase hits >= 70%.
    pub fn meets_targets(&self) -> bool {
        self.must_miss.hit_rate() <= MAX_FALSE_HIT_RATE
            && self.paraphrases.hit_rate() >= MIN_PARAPHRASE_HIT_RATE
    }
}

/// Counts hits at `threshold`.
pub fn evaluate(scored: &[ScoredPair], threshold: f32) -> Evaluation {
    let mut evaluation = Evaluation {
        threshold,
        paraphrases: Tally::default(),
        must_miss: Tally::default(),
        by_kind: BTreeMap::new(),
        paraphrases_refused: BTreeMap::new(),
    };
    for pair in scored {
        if pair.kind == PairKind::Paraphrase {
            evaluation.paraphrases.add(pair, threshold);
            if let Some(difference) = pair.verdict.difference() {
                *evaluation.paraphrases_refused.entry(difference.as_str()).or_default() += 1;
            }
        } else {
            evaluation.must_miss.add(pair, threshold);
            evaluation.by_kind.entry(pair.kind).or_default().add(pair, threshold);
        }
    }
    evaluation
}

/// The figures at each threshold.
pub fn sweep(scored: &[ScoredPair], thresholds: impl IntoIterator<Item = f32>) -> Vec<Evaluation> {
    thresholds.into_iter().map(|threshold| evaluate(scored, threshold)).collect()
}

/// The lowest threshold (so the most paraphrase hits) whose false-hit rate is within
/// `max_false_hit_rate`.
pub fn pick_threshold(sweep: &[Evaluation], max_false_hit_rate: f64) -> Option<&Evaluation> {
    sweep
        .iter()
        .filter(|evaluation| evaluation.must_miss.hit_rate() <= max_false_hit_rate)
        .min_by(|a, b| a.threshold.total_cmp(&b.threshold))
}

/// Thresholds from `from` to `to` (inclusive) in steps of `step`, rounded to 3 decimals.
pub fn thresholds(from: f32, to: f32, step: f32) -> Vec<f32> {
    if step <= 0.0 || to < from {
        return vec![from];
    }
    let steps = ((to - from) / step).round() as usize;
    (0..=steps).map(|index| ((from + step * index as f32) * 1000.0).round() / 1000.0).collect()
}

impl fmt::Display for Evaluation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = |rate: f64| format!("{:.1}%", rate * 100.0);
        writeln!(formatter, "threshold {:.3}", self.threshold)?;
        writeln!(formatter, "  {:<12} {:>5} {:>14} {:>14}", "pairs", "n", "hit (guarded)", "hit (cosine)")?;
        let mut row = |name: &str, tally: &Tally| {
            writeln!(
                formatter,
                "  {:<12} {:>5} {:>8} {:>5} {:>8} {:>5}",
                name,
                tally.pairs,
                percent(tally.hit_rate()),
                tally.hits,
                percent(tally.cosine_hit_rate()),
                tally.cosine_hits
            )
        };
        row("paraphrase", &self.paraphrases)?;
        row("must-miss", &self.must_miss)?;
        for (kind, tally) in &self.by_kind {
            row(&format!("  {}", kind.as_str()), tally)?;
        }
        let refused: Vec<String> =
            self.paraphrases_refused.iter().map(|(reason, count)| format!("{reason} {count}")).collect();
        write!(
            formatter,
            "  paraphrases the guard refused: {}",
            if refused.is_empty() { "none".into() } else { refused.join(", ") }
        )
    }
}

/// The guard's own reading of each pair, threshold aside: which must-miss pairs it lets
/// through and which paraphrases it refuses (for tuning and the docs).
pub fn guard_disagreements(pairs: &[QuestionPair]) -> Vec<(&QuestionPair, Option<Difference>)> {
    pairs
        .iter()
        .filter_map(|pair| {
            let verdict = same_question(&pair.a, &pair.b);
            (verdict.is_same() != pair.same).then_some((pair, verdict.difference()))
        })
        .collect()
}
