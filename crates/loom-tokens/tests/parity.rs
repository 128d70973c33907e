//! Parity with Python `tiktoken` (golden counts from `tests/golden/generate.py`).

use std::time::{Duration, Instant};

use loom_tokens::Encoding;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    tiktoken_version: String,
    cases: Vec<Case>,
    generated: Vec<Generated>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    o200k_base: usize,
    cl100k_base: usize,
}

#[derive(Deserialize)]
struct Generated {
    name: String,
    seed: u64,
    alphabet: Vec<String>,
    target_bytes: usize,
    bytes: usize,
    o200k_base: usize,
    cl100k_base: usize,
}

fn golden() -> Golden {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/tiktoken.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// SplitMix64, as in generate.py.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn generate(seed: u64, alphabet: &[String], target_bytes: usize) -> String {
    let mut rng = SplitMix64(seed);
    let mut text = String::with_capacity(target_bytes + 64);
    while text.len() < target_bytes {
        text.push_str(&alphabet[(rng.next() % alphabet.len() as u64) as usize]);
    }
    text
}

fn expected(encoding: Encoding, o200k: usize, cl100k: usize) -> usize {
    match encoding {
        Encoding::O200kBase => o200k,
        Encoding::Cl100kBase => cl100k,
    }
}

#[test]
fn corpus_counts_equal_tiktoken() {
    let golden = golden();
    assert!(golden.cases.len() >= 2000, "corpus has {} strings", golden.cases.len());
    let mut mismatches = Vec::new();
    for case in &golden.cases {
        for encoding in Encoding::ALL {
            let want = expected(encoding, case.o200k_base, case.cl100k_base);
            let got = encoding.count(&case.text);
            if got != want {
                mismatches.push(format!("{encoding}: {:?}: tiktoken {want}, loom {got}", case.text));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} counts differ from tiktoken {}:\n{}",
        mismatches.len(),
        golden.cases.len() * 2,
        golden.tiktoken_version,
        mismatches
            .iter()
            .take(20)
            .map(|m| m.chars().take(300).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn one_megabyte_inputs_equal_tiktoken() {
    let golden = golden();
    for input in &golden.generated {
        let text = generate(input.seed, &input.alphabet, input.target_bytes);
        assert_eq!(text.len(), input.bytes, "{}: generator differs from generate.py", input.name);
        for encoding in Encoding::ALL {
            let started = Instant::now();
            let got = encoding.count(&text);
            let elapsed = started.elapsed();
            let want = expected(encoding, input.o200k_base, input.cl100k_base);
            assert_eq!(got, want, "{} with {encoding}", input.name);
            eprintln!("{:24} {encoding:11} {got:7} tokens in {elapsed:?}", input.name);
            // linear time: a quadratic BPE takes minutes on these; the bench shows ~0.2 s
            // worst case in release (the limit is loose for shared CI machines)
            let limit = Duration::from_secs(if cfg!(debug_assertions) { 60 } else { 2 });
            assert!(elapsed < limit, "{} with {encoding} took {elapsed:?}", input.name);
        }
    }
}

#[test]
fn one_megabyte_of_spaces() {
    // Python tiktoken cannot count this (its regex overflows); the golden file has 600 KB.
    // A run of n spaces is split into a 128-space token per 128 and the rest.
    let text = " ".repeat(1_000_000);
    for encoding in Encoding::ALL {
        assert_eq!(encoding.count(&text), 1_000_000usize.div_ceil(128), "{encoding}");
    }
}

#[test]
fn recombined_corpus_equals_tiktoken_rs() {
    // Beyond the golden file: 1,000 pairs of corpus strings glued by separators, against
    // tiktoken-rs (itself checked against Python tiktoken upstream).
    let golden = golden();
    let o200k = tiktoken_rs::o200k_base().unwrap();
    let cl100k = tiktoken_rs::cl100k_base().unwrap();
    let separators = ["", " ", "\n", "  ", "\t", "'s ", "\r\n", "1"];
    let mut rng = SplitMix64(42);
    let mut pick = |n: usize| (rng.next() % n as u64) as usize;
    for _ in 0..1000 {
        let a = &golden.cases[pick(golden.cases.len())].text;
        let b = &golden.cases[pick(golden.cases.len())].text;
        let text = format!("{a}{}{b}", separators[pick(separators.len())]);
        assert_eq!(Encoding::O200kBase.count(&text), o200k.encode_ordinary(&text).len(), "o200k {text:?}");
        assert_eq!(Encoding::Cl100kBase.count(&text), cl100k.encode_ordinary(&text).len(), "cl100k {text:?}");
    }
}
