//! Text as the detectors read it: folded to a canonical form, with every payload
//! embedded in it decoded.

/// A text as the detectors read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Normalized {
    /// The text folded to a canonical form (lower case).
    pub folded: String,
    /// Payloads decoded from the text, each folded like `folded`.
    pub decoded: Vec<String>,
}

/// Normalises `text` for the detectors.
pub fn normalize(text: &str) -> Normalized {
    Normalized { folded: text.to_lowercase(), decoded: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_folded_to_lower_case() {
        assert_eq!(normalize("Ignore ALL").folded, "ignore all");
    }
}
