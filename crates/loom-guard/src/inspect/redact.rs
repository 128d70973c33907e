//! Redaction: findings replaced by placeholders such as `[EMAIL_1]`, the same value
//! getting the same placeholder throughout a request (its prompt and its answer).

use std::collections::HashMap;

use super::pii::{Finding, PiiKind, find_prefix};

/// The placeholders of one request: a counter per kind and the placeholder given to each
/// value. The values stay in memory only; `Debug` shows counts, never a value.
#[derive(Default, Clone)]
pub struct Redactor {
    placeholders: HashMap<(PiiKind, String), String>,
    counters: HashMap<PiiKind, u32>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Redactor").field("values", &self.placeholders.len()).finish()
    }
}

impl Redactor {
    /// A redactor with no placeholders given yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `text` with each finding replaced by its value's placeholder. Findings out of
    /// range, off character boundaries or overlapping an earlier one are skipped.
    pub fn redact(&mut self, text: &str, findings: &[Finding]) -> String {
        let mut redacted = String::with_capacity(text.len());
        let mut copied = 0;
        for finding in findings {
            let range = finding.range.clone();
            let Some(value) = text.get(range.clone()) else { continue };
            if range.start < copied || range.is_empty() {
                continue;
            }
            redacted.push_str(&text[copied..range.start]);
            redacted.push_str(self.placeholder(finding.kind, value));
            copied = range.end;
        }
        redacted.push_str(&text[copied..]);
        redacted
    }

    /// `text` with all its PII and secrets replaced by their placeholders, however many
    /// (searched again after every
    /// [`MAX_FINDINGS`](super::pii::MAX_FINDINGS)).
    pub fn redact_all(&mut self, text: &str) -> String {
        let mut redacted = String::with_capacity(text.len());
        let mut from = 0;
        loop {
            let rest = &text[from..];
            let (findings, searched) = find_prefix(rest);
            if searched >= rest.len() || searched == 0 {
                redacted.push_str(&self.redact(rest, &findings));
                return redacted;
            }
            redacted.push_str(&self.redact(&rest[..searched], &findings));
            from += searched;
        }
    }

    /// The placeholder of `value` as a `kind`: the one it was given before, or the kind's
    /// next (`[CARD_1]`, `[CARD_2]`, ...).
    pub fn placeholder(&mut self, kind: PiiKind, value: &str) -> &str {
        let counters = &mut self.counters;
        self.placeholders.entry((kind, canonical(kind, value))).or_insert_with(|| {
            let counter = counters.entry(kind).or_insert(0);
            *counter += 1;
            format!("[{}_{}]", kind.placeholder_label(), counter)
        })
    }

    /// How many distinct values have a placeholder.
    pub fn len(&self) -> usize {
        self.placeholders.len()
    }

    /// Whether no value has a placeholder yet.
    pub fn is_empty(&self) -> bool {
        self.placeholders.is_empty()
    }
}

/// The form under which two spellings of one value share a placeholder: a card or phone
/// with or without separators, an e-mail address in any case.
fn canonical(kind: PiiKind, value: &str) -> String {
    match kind {
        PiiKind::PaymentCard | PiiKind::Phone | PiiKind::UsSsn => {
            value.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect()
        }
        PiiKind::Iban => {
            value.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase()
        }
        PiiKind::Email => value.to_lowercase(),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::pii::MAX_FINDINGS;
    use super::*;

    fn finding(kind: PiiKind, text: &str, value: &str) -> Finding {
        let start = text.find(value).unwrap();
        Finding { kind, range: start..start + value.len() }
    }

    #[test]
    fn the_same_value_gets_the_same_placeholder_and_counters_are_per_kind() {
        let text = "a@x.io, b@y.io, card 4111 1111 1111 1111, again a@x.io";
        let mut findings = vec![
            finding(PiiKind::Email, text, "a@x.io"),
            finding(PiiKind::Email, text, "b@y.io"),
            finding(PiiKind::PaymentCard, text, "4111 1111 1111 1111"),
        ];
        let last = text.rfind("a@x.io").unwrap();
        findings.push(Finding { kind: PiiKind::Email, range: last..last + 6 });
        let mut redactor = Redactor::new();
        assert_eq!(redactor.redact(text, &findings), "[EMAIL_1], [EMAIL_2], card [CARD_1], again [EMAIL_1]");
        assert_eq!(redactor.len(), 3);
    }

    #[test]
    fn placeholders_persist_across_texts_of_one_request() {
        let mut redactor = Redactor::new();
        assert_eq!(redactor.redact_all("mail Bob@Example.com"), "mail [EMAIL_1]");
        assert_eq!(redactor.redact_all("card 4111111111111111"), "card [CARD_1]");
        assert_eq!(
            redactor.redact_all("bob@example.com paid with 4111-1111-1111-1111"),
            "[EMAIL_1] paid with [CARD_1]"
        );
    }

    #[test]
    fn bad_ranges_are_skipped_instead_of_panicking() {
        let text = "héllo a@x.io";
        let findings = [
            Finding { kind: PiiKind::Email, range: 2..4 },
            Finding { kind: PiiKind::Email, range: 7..13 },
            Finding { kind: PiiKind::Email, range: 8..10 },
            Finding { kind: PiiKind::Email, range: 100..200 },
        ];
        assert_eq!(Redactor::new().redact(text, &findings), "héllo [EMAIL_1]");
    }

    #[test]
    fn texts_with_more_than_max_findings_are_redacted_whole() {
        let text = "a1@x.io 4111111111111111 10.0.0.1 ".repeat(MAX_FINDINGS);
        let redacted = Redactor::new().redact_all(&text);
        assert_eq!(redacted, "[EMAIL_1] [CARD_1] [IP_1] ".repeat(MAX_FINDINGS));
    }

    #[test]
    fn debug_never_shows_a_value() {
        let mut redactor = Redactor::new();
        redactor.redact_all("key AKIAIOSFODNN7EXAMPLE");
        let shown = format!("{redactor:?}");
        assert!(!shown.contains("AKIA"), "{shown}");
        assert_eq!(shown, "Redactor { values: 1 }");
    }
}
