//! Measures the semantic cache's match on the labelled question pairs with the real
//! all-MiniLM-L6-v2: paraphrase hit rate and false-hit rate (overall and by kind) at a
//! threshold, what the cosine alone would give, and a sweep over thresholds.
//!
//! ```text
//! cargo run --release -p loom-cache --example eval_pairs -- \
//!     --model target/test-data/minilm [--data FILE] [--threshold 0.80] [--sweep 0.70:0.98:0.01] [--show]
//! ```
//! `--model` defaults to `$TEST_MINILM_DIR`; `--show` lists the pairs the cache gets wrong.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use loom_cache::eval::{self, MAX_FALSE_HIT_RATE, QuestionPair, ScoredPair};
use loom_tokens::embed::Embedder;

struct Options {
    model: Option<PathBuf>,
    data: PathBuf,
    threshold: f32,
    sweep: (f32, f32, f32),
    show: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        model: std::env::var_os("TEST_MINILM_DIR").map(PathBuf::from),
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/question-pairs.jsonl")),
        threshold: loom_cache::DEFAULT_SIMILARITY_THRESHOLD,
        sweep: (0.70, 0.98, 0.01),
        show: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--model" => options.model = Some(PathBuf::from(value()?)),
            "--data" => options.data = PathBuf::from(value()?),
            "--threshold" => {
                options.threshold = value()?.parse().map_err(|error| format!("--threshold: {error}"))?
            }
            "--sweep" => {
                let text = value()?;
                let parts: Vec<f32> = text
                    .split(':')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|error| format!("--sweep: {error}"))?;
                let [from, to, step] = parts[..] else { return Err("--sweep wants FROM:TO:STEP".into()) };
                options.sweep = (from, to, step);
            }
            "--show" => options.show = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("eval_pairs: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let options = options()?;
    let model = options.model.ok_or("no model: pass --model DIR or set TEST_MINILM_DIR")?;
    let data = std::fs::read_to_string(&options.data)
        .map_err(|error| format!("{}: {error}", options.data.display()))?;
    let pairs = eval::parse_pairs(&data).map_err(|error| error.to_string())?;
    let embedder = Embedder::load(&model).map_err(|error| error.to_string())?;

    let started = Instant::now();
    let scored =
        eval::score_pairs(&pairs, |text| embedder.embed(text).map(|embedding| embedding.as_slice().to_vec()))
            .map_err(|error| error.to_string())?;
    let embed_time = started.elapsed();
    println!(
        "{} pairs ({} paraphrases, {} must-miss) from {}; {} texts embedded in {:.1} s",
        pairs.len(),
        pairs.iter().filter(|pair| pair.same).count(),
        pairs.iter().filter(|pair| !pair.same).count(),
        options.data.display(),
        pairs.len() * 2,
        embed_time.as_secs_f64()
    );
    println!(
        "guard: {:.2} us per pair (mean over {} pairs, both texts read)",
        guard_micros(&pairs),
        pairs.len()
    );
    let (long_a, long_b) = long_texts(&pairs);
    let long_pair = QuestionPair { a: long_a, b: long_b, ..pairs[0].clone() };
    println!(
        "guard on two texts of {} and {} bytes (near the 1,536-byte bound): {:.2} us\n",
        long_pair.a.len(),
        long_pair.b.len(),
        guard_micros(std::slice::from_ref(&long_pair))
    );

    println!("{}\n", eval::evaluate(&scored, options.threshold));

    let (from, to, step) = options.sweep;
    let sweep = eval::sweep(&scored, eval::thresholds(from, to, step));
    println!("sweep        guarded                 cosine alone");
    println!("threshold    paraphrase  false-hit   paraphrase  false-hit");
    for evaluation in &sweep {
        println!(
            "{:<12.3} {:>9.1}% {:>9.1}%  {:>10.1}% {:>9.1}%",
            evaluation.threshold,
            evaluation.paraphrases.hit_rate() * 100.0,
            evaluation.must_miss.hit_rate() * 100.0,
            evaluation.paraphrases.cosine_hit_rate() * 100.0,
            evaluation.must_miss.cosine_hit_rate() * 100.0,
        );
    }
    match eval::pick_threshold(&sweep, MAX_FALSE_HIT_RATE) {
        Some(best) => println!(
            "\nlowest threshold with false hits <= {:.0}%: {:.3} (paraphrase hit rate {:.1}%, false hits {:.1}%)",
            MAX_FALSE_HIT_RATE * 100.0,
            best.threshold,
            best.paraphrases.hit_rate() * 100.0,
            best.must_miss.hit_rate() * 100.0
        ),
        None => {
            println!("\nno threshold in the sweep keeps false hits <= {:.0}%", MAX_FALSE_HIT_RATE * 100.0)
        }
    }
    let cosine_only = sweep
        .iter()
        .filter(|evaluation| evaluation.must_miss.cosine_hit_rate() <= MAX_FALSE_HIT_RATE)
        .min_by(|a, b| a.threshold.total_cmp(&b.threshold));
    if let Some(best) = cosine_only {
        println!(
            "cosine alone needs {:.3} for the same bound: paraphrase hit rate {:.1}%",
            best.threshold,
            best.paraphrases.cosine_hit_rate() * 100.0
        );
    }
    if options.show {
        show_mistakes(&pairs, &scored, options.threshold);
    }
    Ok(())
}

/// Mean time of the guard per pair, over many rounds.
fn guard_micros(pairs: &[QuestionPair]) -> f64 {
    const ROUNDS: usize = 50;
    let started = Instant::now();
    let mut same = 0usize;
    for _ in 0..ROUNDS {
        for pair in pairs {
            same += usize::from(std::hint::black_box(loom_cache::same_question(&pair.a, &pair.b)).is_same());
        }
    }
    std::hint::black_box(same);
    started.elapsed().as_secs_f64() * 1e6 / (ROUNDS * pairs.len()) as f64
}

/// Two texts of about 1,400 bytes made of the pairs' questions, the second one changed at the end.
fn long_texts(pairs: &[QuestionPair]) -> (String, String) {
    let mut text = String::new();
    for pair in pairs.iter().filter(|pair| pair.same) {
        if text.len() + pair.a.len() > 1_400 {
            break;
        }
        text.push_str(&pair.a);
        text.push(' ');
    }
    let changed = format!("{text}Is it not?");
    (format!("{text}Is it?"), changed)
}

fn show_mistakes(pairs: &[QuestionPair], scored: &[ScoredPair], threshold: f32) {
    println!("\nmistakes at {threshold:.3}:");
    for (pair, score) in pairs.iter().zip(scored) {
        let hit = score.hits(threshold);
        if hit != pair.same {
            let why = score.verdict.difference().map_or("cosine", |difference| difference.as_str());
            let outcome = if hit { "FALSE HIT" } else { "missed" };
            println!(
                "  {outcome:<9} {:<10} cos {:.3} ({why})\n      {}\n      {}",
                pair.kind.as_str(),
                score.cosine,
                pair.a,
                pair.b
            );
        }
    }
}
