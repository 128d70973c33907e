//! Trains the fast learned prompt-injection detector and writes `injection.model`.
//!
//! ```text
//! cargo run --release -p loom-guard --example train_injection -- \
//!     --data target/test-data/injection --out crates/loom-guard/src/inspect/injection.model
//! ```
//!
//! `--data` holds `<source>-<split>.jsonl` files, one `{"text","label","source","split",
//! "category"}` object a line. The model is logistic regression over
//! `loom_guard::inspect::features` (the extractor the detector uses at run time), trained
//! on the train splits by full-batch gradient descent (Adam steps) with L2: deterministic,
//! no random state. Its weights are quantised to i8; the decision threshold for the
//! combined rule + learned score is the lowest that keeps the false-positive rate of every
//! source's validation split at or below `--max-fpr`. It then prints precision, recall,
//! F1 and false-positive rate per source on the validation and test splits (with the
//! quantised model, through the same code as the gateway), and the latency.
//!
//! Options: `--epochs N` (200), `--l2 X` (1e-6), `--rate X` (0.02), `--max-fpr X` (0.03),
//! `--show-errors` (print rule false positives on the train and validation splits and
//! the validation misclassifications, for tuning the rules).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[path = "common/labelled.rs"]
mod labelled;

use loom_guard::inspect::features::{self, Features};
use loom_guard::inspect::injection::{self, Verdict};
use loom_guard::inspect::linear::{self, LinearModel};
use loom_guard::inspect::normalize::{Normalized, normalize};
use loom_guard::inspect::rules;

struct Options {
    data: PathBuf,
    out: PathBuf,
    epochs: usize,
    l2: f32,
    rate: f32,
    max_fpr: f64,
    show_errors: bool,
}

struct Example {
    text: String,
    category: String,
    label: bool,
    source: String,
    split: String,
    normalized: Normalized,
    features: Features,
}

fn main() -> ExitCode {
    match parse_options().and_then(|options| run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("train_injection: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        data: PathBuf::new(),
        out: PathBuf::new(),
        epochs: 200,
        l2: 1e-6,
        rate: 0.02,
        max_fpr: 0.03,
        show_errors: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--show-errors" {
            options.show_errors = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--data" => options.data = value.into(),
            "--out" => options.out = value.into(),
            "--epochs" => options.epochs = value.parse().map_err(|e| bad(&e))?,
            "--l2" => options.l2 = value.parse().map_err(|e| bad(&e))?,
            "--rate" => options.rate = value.parse().map_err(|e| bad(&e))?,
            "--max-fpr" => options.max_fpr = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.data.as_os_str().is_empty() || options.out.as_os_str().is_empty() {
        return Err("usage: train_injection --data DIR --out FILE [--epochs N] [--l2 X] [--rate X] [--max-fpr X] [--show-errors]".into());
    }
    Ok(options)
}

fn run(options: &Options) -> Result<(), String> {
    let examples = load(&options.data)?;
    let train: Vec<&Example> = examples.iter().filter(|e| e.split == "train").collect();
    let validation: Vec<&Example> = examples.iter().filter(|e| e.split == "validation").collect();
    let test: Vec<&Example> = examples.iter().filter(|e| e.split == "test").collect();
    println!("examples: {} train, {} validation, {} test", train.len(), validation.len(), test.len());
    if train.is_empty() || validation.is_empty() {
        return Err("need train and validation splits".into());
    }

    let started = Instant::now();
    let (weights, bias) = fit(&train, options);
    println!("trained in {:.1}s", started.elapsed().as_secs_f64());

    let unthresholded = linear::encode(&weights, bias, 0.5);
    let model = LinearModel::from_bytes(&unthresholded).map_err(|e| e.to_string())?;
    let threshold = pick_threshold(&model, &validation, options.max_fpr)?;
    let bytes = linear::encode(&weights, bias, threshold);
    let model = LinearModel::from_bytes(&bytes).map_err(|e| e.to_string())?;
    std::fs::write(&options.out, &bytes).map_err(|e| format!("{}: {e}", options.out.display()))?;
    let nonzero = bytes[bytes.len() - features::BUCKETS..].iter().filter(|&&b| b != 0).count();
    println!(
        "wrote {} ({} bytes, {nonzero} non-zero weights), threshold {threshold:.4}",
        options.out.display(),
        bytes.len()
    );

    for (name, split) in [("validation", &validation), ("test", &test)] {
        report(&model, name, split);
    }
    if options.show_errors {
        let tuning: Vec<&Example> = train.iter().chain(&validation).copied().collect();
        show_errors(&model, &tuning);
    }
    latency(&model, &test);
    Ok(())
}

fn load(dir: &Path) -> Result<Vec<Example>, String> {
    Ok(labelled::load(dir)?
        .into_iter()
        .map(|row| {
            let normalized = normalize(&row.text);
            let features = features::extract(&normalized.folded);
            Example {
                label: row.label,
                category: row.category,
                source: row.source,
                split: row.split,
                normalized,
                features,
                text: row.text,
            }
        })
        .collect())
}

/// Full-batch logistic regression with L2, by Adam steps; each source weighs the same.
fn fit(train: &[&Example], options: &Options) -> (Vec<f32>, f32) {
    let mut per_source: BTreeMap<&str, usize> = BTreeMap::new();
    for example in train {
        *per_source.entry(&example.source).or_default() += 1;
    }
    let sample_weight: Vec<f32> = train
        .iter()
        .map(|e| train.len() as f32 / (per_source.len() * per_source[e.source.as_str()]) as f32)
        .collect();
    let total_weight: f32 = sample_weight.iter().sum();

    let (beta1, beta2, epsilon) = (0.9f32, 0.999f32, 1e-8f32);
    let mut weights = vec![0.0f32; features::BUCKETS];
    let mut bias = 0.0f32;
    let mut gradient = vec![0.0f32; features::BUCKETS];
    let mut first = vec![0.0f32; features::BUCKETS + 1];
    let mut second = vec![0.0f32; features::BUCKETS + 1];
    for epoch in 1..=options.epochs {
        gradient.iter_mut().for_each(|g| *g = 0.0);
        let mut bias_gradient = 0.0f32;
        let mut loss = 0.0f32;
        for (example, &weight) in train.iter().zip(&sample_weight) {
            let f = &example.features;
            let z =
                bias + f.buckets.iter().zip(&f.values).map(|(&b, &v)| weights[b as usize] * v).sum::<f32>();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = if example.label { 1.0 } else { 0.0 };
            loss -= weight * (y * p.max(1e-7).ln() + (1.0 - y) * (1.0 - p).max(1e-7).ln());
            let g = weight * (p - y);
            bias_gradient += g;
            for (&b, &v) in f.buckets.iter().zip(&f.values) {
                gradient[b as usize] += g * v;
            }
        }
        let correction1 = 1.0 - beta1.powi(epoch as i32);
        let correction2 = 1.0 - beta2.powi(epoch as i32);
        let mut step = |param: &mut f32, g: f32, i: usize| {
            first[i] = beta1 * first[i] + (1.0 - beta1) * g;
            second[i] = beta2 * second[i] + (1.0 - beta2) * g * g;
            let m = first[i] / correction1;
            let v = second[i] / correction2;
            *param -= options.rate * m / (v.sqrt() + epsilon);
        };
        for (i, w) in weights.iter_mut().enumerate() {
            let g = gradient[i] / total_weight + options.l2 * *w;
            step(w, g, i);
        }
        step(&mut bias, bias_gradient / total_weight, features::BUCKETS);
        if epoch % 50 == 0 || epoch == options.epochs {
            println!("epoch {epoch}: training loss {:.4}", loss / total_weight);
        }
    }
    (weights, bias)
}

fn verdict(model: &LinearModel<'_>, example: &Example) -> Verdict {
    injection::verdict_with(model, &example.normalized)
}

/// The lowest combined-score threshold that keeps every source's false-positive rate at
/// or below `max_fpr` on `validation`.
fn pick_threshold(model: &LinearModel<'_>, validation: &[&Example], max_fpr: f64) -> Result<f32, String> {
    let mut benign: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    for example in validation.iter().filter(|e| !e.label) {
        benign.entry(&example.source).or_default().push(verdict(model, example).score);
    }
    let mut threshold = 0.0f32;
    for scores in benign.values_mut() {
        scores.sort_by(|a, b| b.total_cmp(a));
        let allowed = (max_fpr * scores.len() as f64).floor() as usize;
        // Above the (allowed + 1)-th highest benign score, at most `allowed` pass it.
        if let Some(&score) = scores.get(allowed) {
            threshold = threshold.max(next_up(score));
        }
    }
    if threshold > 1.0 {
        return Err("no threshold reaches the false-positive target".into());
    }
    Ok(threshold.max(f32::MIN_POSITIVE))
}

fn next_up(x: f32) -> f32 {
    f32::from_bits(x.to_bits() + 1)
}

#[derive(Default)]
struct Counts {
    tp: usize,
    fp: usize,
    tn: usize,
    fn_: usize,
}

impl Counts {
    fn add(&mut self, predicted: bool, label: bool) {
        match (predicted, label) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fn_ += 1,
        }
    }

    fn line(&self, stage: &str) -> String {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(self.tp, self.tp + self.fp);
        let recall = ratio(self.tp, self.tp + self.fn_);
        let f1 =
            if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        let fpr = ratio(self.fp, self.fp + self.tn);
        format!(
            "  {stage:<22} precision {precision:.3}  recall {recall:.3}  F1 {f1:.3}  FPR {fpr:.4}  (tp {} fp {} tn {} fn {})",
            self.tp, self.fp, self.tn, self.fn_
        )
    }
}

fn report(model: &LinearModel<'_>, split: &str, examples: &[&Example]) {
    let mut sources: BTreeMap<&str, [Counts; 3]> = BTreeMap::new();
    for example in examples {
        let verdict = verdict(model, example);
        for source in [example.source.as_str(), "all"] {
            let counts = sources.entry(source).or_default();
            counts[0].add(!verdict.rules.matched.is_empty(), example.label);
            counts[1].add(verdict.learned >= verdict.threshold, example.label);
            counts[2].add(verdict.injection, example.label);
        }
    }
    for (source, counts) in &sources {
        println!("{split} / {source}:");
        println!("{}", counts[0].line("rules (any match)"));
        println!("{}", counts[1].line("learned"));
        println!("{}", counts[2].line("rules + learned"));
    }
    let mut categories: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for example in examples {
        let flagged = verdict(model, example).injection;
        let entry = categories.entry((&example.source, &example.category)).or_default();
        entry.0 += 1;
        entry.1 += usize::from(flagged);
    }
    println!("{split}, flagged by rules + learned per source and category:");
    for ((source, category), (total, flagged)) in categories {
        println!("  {source:<12} {category:<22} {flagged:>5} of {total:<5}");
    }
}

/// Prints rule false positives on `examples` and the combined stages' errors on its
/// validation part.
fn show_errors(model: &LinearModel<'_>, examples: &[&Example]) {
    for example in examples {
        let verdict = verdict(model, example);
        if !example.label && !verdict.rules.matched.is_empty() {
            println!("RULE FP {:?}: {}", verdict.rules.matched, example.text);
        }
        if example.split == "validation" && example.label != verdict.injection {
            println!(
                "{} {:.3} [{}]: {}",
                if example.label { "MISS" } else { "FP" },
                verdict.score,
                example.source,
                example.text.chars().take(300).collect::<String>()
            );
        }
    }
}

/// Times the default stages (normalisation excluded: it is another stage) on the test
/// texts as they are, and on texts of about 1 and 4 KB made by joining them.
fn latency(model: &LinearModel<'_>, examples: &[&Example]) {
    let texts: Vec<Normalized> = examples.iter().map(|e| e.normalized.clone()).collect();
    time("test texts", model, &texts);
    for size in [1024, 4096] {
        let mut joined = Vec::new();
        let mut current = String::new();
        for text in &texts {
            current.push_str(&text.folded);
            current.push('\n');
            if current.len() >= size {
                joined.push(Normalized { folded: std::mem::take(&mut current), decoded: vec![] });
            }
        }
        time(&format!("~{size}-byte texts"), model, &joined);
    }
}

fn time(name: &str, model: &LinearModel<'_>, texts: &[Normalized]) {
    let bytes: usize = texts.iter().map(|t| t.folded.len()).sum();
    let kb = bytes as f64 / 1024.0;
    let rules = measure(|| texts.iter().map(|t| rules::score(t).matched.len()).sum::<usize>());
    let learned = measure(|| texts.iter().filter(|t| model.score(t) >= 0.5).count());
    let both = measure(|| texts.iter().filter(|t| injection::verdict_with(model, t).injection).count());
    let figures = |seconds: f64| {
        format!("{:.1} us/request {:.1} us/KB", seconds * 1e6 / texts.len().max(1) as f64, seconds * 1e6 / kb)
    };
    println!(
        "latency, {name} ({} texts, {:.0} bytes on average; one thread, normalisation excluded; {}):",
        texts.len(),
        bytes as f64 / texts.len().max(1) as f64,
        if rules.1.is_some() { "CPU time of this thread" } else { "wall time" }
    );
    for (stage, (wall, cpu)) in [("rules", rules), ("learned", learned), ("rules + learned", both)] {
        println!("  {stage:<16} {}", figures(cpu.unwrap_or(wall)));
    }
}

/// The wall time and (on Linux) this thread's CPU time of one pass of `work`, averaged
/// over passes repeated for at least 0.3 s (the CPU time's clock ticks are coarse): the
/// CPU time is the figure to trust on a shared machine.
fn measure<T>(mut work: impl FnMut() -> T) -> (f64, Option<f64>) {
    let cpu_before = thread_cpu_ns();
    let started = Instant::now();
    let mut passes = 0u32;
    while passes == 0 || started.elapsed().as_secs_f64() < 0.3 {
        std::hint::black_box(work());
        passes += 1;
    }
    let wall = started.elapsed().as_secs_f64() / f64::from(passes);
    let cpu =
        cpu_before.zip(thread_cpu_ns()).map(|(a, b)| b.saturating_sub(a) as f64 / 1e9 / f64::from(passes));
    (wall, cpu)
}

/// Nanoseconds this thread has run on a CPU (Linux's schedstat), if known.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}
