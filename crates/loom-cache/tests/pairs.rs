//! The labelled question pairs: their shape, and the guard's reading of them without a model.

use std::collections::{BTreeMap, BTreeSet};

use loom_cache::eval::{PairKind, QuestionPair, parse_pairs};
use loom_cache::same_question;

fn pairs(file: &str) -> Vec<QuestionPair> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    parse_pairs(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_set_has_300_pairs_across_domains_and_kinds_about_45_percent_paraphrases() {
    let pairs = pairs("question-pairs.jsonl");
    assert!(pairs.len() >= 300, "{} pairs", pairs.len());
    let paraphrase_share = pairs.iter().filter(|pair| pair.same).count() as f64 / pairs.len() as f64;
    assert!((0.40..=0.50).contains(&paraphrase_share), "paraphrases: {paraphrase_share}");
    let domains: BTreeSet<&str> = pairs.iter().map(|pair| pair.domain.as_str()).collect();
    assert_eq!(
        domains.into_iter().collect::<Vec<_>>(),
        ["cooking", "finance", "health", "math", "programming", "science", "support", "travel"]
    );
    let mut kinds: BTreeMap<PairKind, usize> = BTreeMap::new();
    for pair in &pairs {
        *kinds.entry(pair.kind).or_default() += 1;
    }
    assert_eq!(kinds.len(), 9, "{kinds:?}");
    assert!(kinds.iter().all(|(kind, count)| *kind == PairKind::Paraphrase || *count >= 20), "{kinds:?}");
    let distinct: BTreeSet<(&str, &str)> =
        pairs.iter().map(|pair| (pair.a.as_str(), pair.b.as_str())).collect();
    assert_eq!(distinct.len(), pairs.len(), "duplicate pairs");
    assert!(pairs.iter().all(|pair| pair.a != pair.b));
}

#[test]
fn a_pair_whose_label_contradicts_its_kind_is_refused() {
    let error =
        parse_pairs(r#"{"a": "x", "b": "y", "same": true, "kind": "negation", "domain": "d"}"#).unwrap_err();
    assert_eq!(error.to_string(), "line 1: `same` is true but the kind is negation");
    assert!(parse_pairs(r#"{"a": "x", "b": "y", "same": false, "kind": "typo", "domain": "d"}"#).is_err());
}

/// Shares of pairs the guard lets through: paraphrases, and must-miss pairs of the kinds
/// it checks (topic changes are the cosine's to catch).
fn guard_shares(pairs: &[QuestionPair]) -> (f64, f64) {
    let share = |selected: Vec<&QuestionPair>| {
        selected.iter().filter(|pair| same_question(&pair.a, &pair.b).is_same()).count() as f64
            / selected.len() as f64
    };
    let paraphrases = share(pairs.iter().filter(|pair| pair.same).collect());
    let checked = share(pairs.iter().filter(|pair| !pair.same && pair.kind != PairKind::Topic).collect());
    (paraphrases, checked)
}

#[test]
fn the_guard_lets_paraphrases_by_and_refuses_the_differences_it_checks() {
    for file in ["question-pairs.jsonl", "question-pairs-holdout.jsonl"] {
        let (paraphrases, checked) = guard_shares(&pairs(file));
        eprintln!(
            "{file}: guard allows {paraphrases:.3} of paraphrases, {checked:.3} of checked must-miss pairs"
        );
        assert!(paraphrases >= 0.90, "{file}: the guard refuses too many paraphrases: allows {paraphrases}");
        assert!(checked <= 0.03, "{file}: the guard lets through {checked} of the must-miss pairs it checks");
    }
}
