//! The embedding stage's classifier: logistic regression over a sentence embedding
//! (all-MiniLM-L6-v2, 384 dimensions), and the band of default-stage scores in which it
//! decides. Below the band a text is benign and above it an injection whatever the
//! embedding says; inside it, the embedding decides. The vector comes from the caller
//! (`loom_tokens::embed`, feature `embed`), so this module needs no model runtime.
//!
//! The built-in classifier (`injection-embedding.json`) is trained by
//! `examples/train_injection_embedding.rs` (see docs/evaluation.md).

use std::sync::OnceLock;

use serde::Deserialize;

/// A trained embedding classifier with its band and threshold.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SemanticModel {
    /// One weight per embedding dimension.
    pub weights: Vec<f32>,
    /// The intercept.
    pub bias: f32,
    /// The probability at or above which a text in the band is an injection.
    pub threshold: f32,
    /// The default stages' scores `[low, high)` in which the embedding decides.
    pub band: [f32; 2],
}

/// Why a classifier file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SemanticModelError {
    /// Not the JSON shape of a classifier.
    #[error("embedding classifier: {0}")]
    Json(#[from] serde_json::Error),
    /// Its numbers make no sense.
    #[error("embedding classifier: {0}")]
    Invalid(&'static str),
}

impl SemanticModel {
    /// Parses and checks a classifier file.
    pub fn from_json(json: &str) -> Result<SemanticModel, SemanticModelError> {
        let model: SemanticModel = serde_json::from_str(json)?;
        if model.weights.is_empty() || !model.weights.iter().chain([&model.bias]).all(|w| w.is_finite()) {
            return Err(SemanticModelError::Invalid("weights must be finite and non-empty"));
        }
        let [low, high] = model.band;
        if !(0.0..=1.0).contains(&low)
            || !(low..=1.0).contains(&high)
            || !(0.0..=1.0).contains(&model.threshold)
        {
            return Err(SemanticModelError::Invalid("band and threshold must be in [0, 1], low <= high"));
        }
        Ok(model)
    }

    /// The embedding's dimensions the classifier expects.
    pub fn dims(&self) -> usize {
        self.weights.len()
    }

    /// Whether a default-stage score falls in the band the embedding decides.
    pub fn in_band(&self, score: f32) -> bool {
        score >= self.band[0] && score < self.band[1]
    }

    /// The probability that the embedded text is an injection (0 when the dimensions differ).
    pub fn probability(&self, embedding: &[f32]) -> f32 {
        if embedding.len() != self.weights.len() {
            return 0.0;
        }
        let z = self.bias + self.weights.iter().zip(embedding).map(|(w, x)| w * x).sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }

    /// The decision on a text whose default-stage score is `score` and whose windows'
    /// embeddings are `windows` (the highest probability counts).
    pub fn decide<'a>(&self, score: f32, windows: impl IntoIterator<Item = &'a [f32]>) -> SemanticVerdict {
        let probability = windows.into_iter().map(|window| self.probability(window)).fold(0.0f32, f32::max);
        SemanticVerdict { probability, injection: self.is_injection(score, probability) }
    }

    /// The decision on a text whose default-stage score is `score` and whose embedding's
    /// probability is `probability`: the band says which of the two decides.
    pub fn is_injection(&self, score: f32, probability: f32) -> bool {
        if score >= self.band[1] {
            true
        } else if score < self.band[0] {
            false
        } else {
            probability >= self.threshold
        }
    }
}

/// The embedding stage's verdict on a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SemanticVerdict {
    /// The classifier's highest probability over the text's windows.
    pub probability: f32,
    /// The decision.
    pub injection: bool,
}

/// The built-in classifier, parsed once.
pub fn builtin() -> Result<&'static SemanticModel, &'static SemanticModelError> {
    static MODEL: OnceLock<Result<SemanticModel, SemanticModelError>> = OnceLock::new();
    MODEL.get_or_init(|| SemanticModel::from_json(include_str!("injection-embedding.json"))).as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> SemanticModel {
        SemanticModel { weights: vec![4.0, -4.0], bias: 0.0, threshold: 0.5, band: [0.3, 0.9] }
    }

    #[test]
    fn the_band_decides_who_decides() {
        let model = model();
        let attack: &[f32] = &[1.0, 0.0];
        let benign: &[f32] = &[0.0, 1.0];
        // In the band, the embedding decides.
        assert!(model.decide(0.5, [attack]).injection);
        assert!(!model.decide(0.5, [benign]).injection);
        // Outside it, the default stages' score does.
        assert!(model.decide(0.95, [benign]).injection);
        assert!(!model.decide(0.1, [attack]).injection);
        // The highest window counts.
        assert!(model.decide(0.5, [benign, attack]).injection);
        assert_eq!(model.probability(&[1.0]), 0.0, "wrong dimensions never fire");
    }

    #[test]
    fn a_bad_file_is_refused_and_the_builtin_loads() {
        assert!(SemanticModel::from_json("{}").is_err());
        let inverted = r#"{"weights": [1.0], "bias": 0.0, "threshold": 0.5, "band": [0.9, 0.3]}"#;
        assert!(matches!(SemanticModel::from_json(inverted), Err(SemanticModelError::Invalid(_))));
        let model = builtin().unwrap();
        assert_eq!(model.dims(), 384);
    }
}
