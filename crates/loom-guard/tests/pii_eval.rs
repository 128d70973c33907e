//! The PII detector against the targets on the generated labelled set
//! (`scripts/pii-data.py`): recall >= 0.95 and precision >= 0.95 over all kinds. Per-kind
//! figures are printed (`cargo nextest run -p loom-guard --test pii_eval --no-capture`),
//! with a few misses and false findings of each kind to show where it errs.
//!
//! A finding is correct when a labelled span of its kind overlaps it; a labelled span is
//! found when a finding of its kind overlaps it.
//!
//! Needs `TEST_PII_DATA` = the directory of `pii-test.jsonl` (`.ci/run` sets it).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use loom_guard::inspect::pii::{PiiKind, find};
use serde::Deserialize;

#[derive(Deserialize)]
struct Labelled {
    text: String,
    spans: Vec<Span>,
}

#[derive(Deserialize)]
struct Span {
    start: usize,
    end: usize,
    kind: String,
}

fn labelled_set() -> Vec<Labelled> {
    let Some(dir) = std::env::var_os("TEST_PII_DATA") else {
        panic!(
            "TEST_PII_DATA is not set: run `python3 scripts/pii-data.py` and point it at target/test-data/pii"
        )
    };
    let path = PathBuf::from(dir).join("pii-test.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    text.lines().map(|line| serde_json::from_str(line).expect("a labelled line")).collect()
}

#[derive(Default)]
struct Counts {
    spans: u32,
    spans_found: u32,
    findings: u32,
    findings_correct: u32,
    misses: Vec<String>,
    false_findings: Vec<String>,
}

impl Counts {
    fn recall(&self) -> f64 {
        if self.spans == 0 { 1.0 } else { f64::from(self.spans_found) / f64::from(self.spans) }
    }

    fn precision(&self) -> f64 {
        if self.findings == 0 { 1.0 } else { f64::from(self.findings_correct) / f64::from(self.findings) }
    }
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Shown examples per kind and outcome.
const EXAMPLES: usize = 3;

#[test]
fn pii_recall_and_precision_meet_the_targets_on_the_generated_set() {
    let mut per_kind: BTreeMap<&'static str, Counts> = BTreeMap::new();
    let (mut negatives, mut negatives_flagged) = (0u32, 0u32);
    let set = labelled_set();
    assert!(set.len() > 1000, "{} texts", set.len());
    for example in &set {
        let findings = find(&example.text);
        if example.spans.is_empty() {
            negatives += 1;
            negatives_flagged += u32::from(!findings.is_empty());
        }
        let spans: Vec<(PiiKind, Range<usize>)> = example
            .spans
            .iter()
            .map(|span| {
                let kind =
                    PiiKind::from_name(&span.kind).unwrap_or_else(|| panic!("unknown kind {}", span.kind));
                (kind, span.start..span.end)
            })
            .collect();
        for (kind, range) in &spans {
            let counts = per_kind.entry(kind.as_str()).or_default();
            counts.spans += 1;
            if findings.iter().any(|finding| finding.kind == *kind && overlaps(&finding.range, range)) {
                counts.spans_found += 1;
            } else if counts.misses.len() < EXAMPLES {
                let found: Vec<String> = findings
                    .iter()
                    .map(|finding| format!("{}:{:?}", finding.kind, &example.text[finding.range.clone()]))
                    .collect();
                counts.misses.push(format!(
                    "{:?} in {:?} (found {found:?})",
                    &example.text[range.clone()],
                    example.text
                ));
            }
        }
        for finding in &findings {
            let counts = per_kind.entry(finding.kind.as_str()).or_default();
            counts.findings += 1;
            if spans.iter().any(|(kind, range)| *kind == finding.kind && overlaps(&finding.range, range)) {
                counts.findings_correct += 1;
            } else if counts.false_findings.len() < EXAMPLES {
                counts.false_findings.push(format!(
                    "{:?} in {:?}",
                    &example.text[finding.range.clone()],
                    example.text
                ));
            }
        }
    }
    let mut all = Counts::default();
    println!("{:<20} {:>6} {:>8} {:>9} {:>10}", "kind", "spans", "recall", "findings", "precision");
    for (kind, counts) in &per_kind {
        println!(
            "{kind:<20} {:>6} {:>8.3} {:>9} {:>10.3}",
            counts.spans,
            counts.recall(),
            counts.findings,
            counts.precision()
        );
        for miss in &counts.misses {
            println!("    missed {miss}");
        }
        for false_finding in &counts.false_findings {
            println!("    false  {false_finding}");
        }
        all.spans += counts.spans;
        all.spans_found += counts.spans_found;
        all.findings += counts.findings;
        all.findings_correct += counts.findings_correct;
    }
    let (recall, precision) = (all.recall(), all.precision());
    println!("{:<20} {:>6} {recall:>8.3} {:>9} {precision:>10.3}", "all", all.spans, all.findings);
    println!(
        "look-alike texts with no PII: {negatives_flagged} of {negatives} flagged ({:.4})",
        f64::from(negatives_flagged) / f64::from(negatives.max(1))
    );
    assert!(negatives > 500, "{negatives} look-alike texts");
    assert!(recall >= 0.95, "recall {recall:.3} below 0.95");
    assert!(precision >= 0.95, "precision {precision:.3} below 0.95");
}
