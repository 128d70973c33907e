//! Trains the embedding stage of the prompt-injection check:
//!
//! ```text
//! cargo run --release -p loom-guard --features embed --example train_injection_embedding -- \
//!     --data target/test-data/injection --model target/test-data/minilm \
//!     --out crates/loom-guard/src/inspect/injection-embedding.json
//! ```
//!
//! Every text of `--data` (see `train_injection`) is embedded with the all-MiniLM-L6-v2
//! model in `--model` (its first 256-word-piece window; cached in `--cache`, default
//! `<data>/../injection-embeddings.bin`, keyed by the text's xxh3). A logistic regression
//! over the embeddings is fitted on the train splits (full-batch Adam, L2, each source
//! weighing the same; deterministic). Then, on the validation splits, the band of
//! default-stage scores in which the embedding decides and the classifier's threshold are
//! chosen: the highest recall with every source's false-positive rate at or below
//! `--max-fpr`, the narrowest band on ties (fewer texts embedded). It prints the test
//! splits' figures for the default stages and for all stages, the share of texts that
//! reach the embedding stage, and, with `--everyday DIR`, how many hand-written benign
//! prompts each flags.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use loom_guard::inspect::injection::injection_score;
use loom_guard::inspect::normalize::normalize;
use loom_guard::inspect::semantic::SemanticModel;
use loom_tokens::embed::Embedder;

#[path = "common/labelled.rs"]
mod labelled;

struct Options {
    data: PathBuf,
    model: PathBuf,
    out: PathBuf,
    cache: Option<PathBuf>,
    everyday: Option<PathBuf>,
    epochs: usize,
    l2: f32,
    rate: f32,
    max_fpr: f64,
}

struct Example {
    label: bool,
    source: String,
    split: String,
    /// The default stages' combined score.
    score: f32,
    embedding: Vec<f32>,
}

fn main() -> ExitCode {
    match parse_options().and_then(|options| run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("train_injection_embedding: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        data: PathBuf::new(),
        model: PathBuf::new(),
        out: PathBuf::new(),
        cache: None,
        everyday: None,
        epochs: 400,
        l2: 1e-4,
        rate: 0.05,
        max_fpr: 0.03,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--data" => options.data = value.into(),
            "--model" => options.model = value.into(),
            "--out" => options.out = value.into(),
            "--cache" => options.cache = Some(value.into()),
            "--everyday" => options.everyday = Some(value.into()),
            "--epochs" => options.epochs = value.parse().map_err(|e| bad(&e))?,
            "--l2" => options.l2 = value.parse().map_err(|e| bad(&e))?,
            "--rate" => options.rate = value.parse().map_err(|e| bad(&e))?,
            "--max-fpr" => options.max_fpr = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if [&options.data, &options.model, &options.out].iter().any(|path| path.as_os_str().is_empty()) {
        return Err("usage: train_injection_embedding --data DIR --model DIR --out FILE [--cache FILE] \
                    [--everyday DIR] [--epochs N] [--l2 X] [--rate X] [--max-fpr X]"
            .into());
    }
    Ok(options)
}

fn run(options: &Options) -> Result<(), String> {
    let rows = labelled::load(&options.data)?;
    let embedder = Embedder::load(&options.model).map_err(|e| e.to_string())?;
    let cache_path =
        options.cache.clone().unwrap_or_else(|| options.data.with_file_name("injection-embeddings.bin"));
    let texts: Vec<&str> = rows.iter().map(|row| row.text.as_str()).collect();
    let embeddings = embed_all(&embedder, &texts, &cache_path)?;
    let examples: Vec<Example> = rows
        .iter()
        .map(|row| Example {
            label: row.label,
            source: row.source.clone(),
            split: row.split.clone(),
            score: injection_score(&normalize(&row.text)).score,
            embedding: embeddings[&hash(&row.text)].clone(),
        })
        .collect();
    let split = |name: &str| examples.iter().filter(|e| e.split == name).collect::<Vec<_>>();
    let (train, validation, test) = (split("train"), split("validation"), split("test"));
    println!("examples: {} train, {} validation, {} test", train.len(), validation.len(), test.len());

    let started = Instant::now();
    let (weights, bias) = fit(&train, options);
    println!("trained in {:.1}s", started.elapsed().as_secs_f64());
    let default_threshold = injection_score(&normalize("")).threshold;
    let unbanded = SemanticModel { weights, bias, threshold: 0.5, band: [0.0, 1.0] };
    let model = choose_band(&unbanded, &validation, default_threshold, options.max_fpr)?;
    println!(
        "band [{:.3}, {:.3}), threshold {:.4} (the default stages' threshold: {default_threshold:.4})",
        model.band[0], model.band[1], model.threshold
    );
    let rounded: Vec<f64> = model.weights.iter().map(|w| (f64::from(*w) * 1e6).round() / 1e6).collect();
    let json = serde_json::json!({
        "weights": rounded, "bias": model.bias, "threshold": model.threshold, "band": model.band,
    });
    std::fs::write(&options.out, format!("{json}\n"))
        .map_err(|e| format!("{}: {e}", options.out.display()))?;
    // What runs is what was written: read it back.
    let written = std::fs::read_to_string(&options.out).map_err(|e| e.to_string())?;
    let model = SemanticModel::from_json(&written).map_err(|e| e.to_string())?;
    println!("wrote {}", options.out.display());

    for (name, examples) in [("validation", &validation), ("test", &test)] {
        report(&model, default_threshold, name, examples);
    }
    if let Some(dir) = &options.everyday {
        everyday(&model, &embedder, default_threshold, dir)?;
    }
    Ok(())
}

fn hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// The embedding of every text's first window, from the cache or computed (on two threads).
fn embed_all(embedder: &Embedder, texts: &[&str], cache: &Path) -> Result<HashMap<u64, Vec<f32>>, String> {
    let dims = embedder.dims();
    let mut known = read_cache(cache, dims);
    let missing: Vec<&str> = {
        let mut seen = std::collections::HashSet::new();
        texts
            .iter()
            .copied()
            .filter(|text| !known.contains_key(&hash(text)) && seen.insert(hash(text)))
            .collect()
    };
    if missing.is_empty() {
        return Ok(known);
    }
    println!("embedding {} texts ({} cached)", missing.len(), known.len());
    let started = Instant::now();
    let done = Mutex::new(Vec::with_capacity(missing.len()));
    let failed = Mutex::new(None);
    std::thread::scope(|scope| {
        for part in missing.chunks(missing.len().div_ceil(2)) {
            let (done, failed) = (&done, &failed);
            scope.spawn(move || {
                for text in part {
                    match embedder.embed(text) {
                        Ok(embedding) => {
                            done.lock().unwrap().push((hash(text), embedding.as_slice().to_vec()))
                        }
                        Err(error) => *failed.lock().unwrap() = Some(error.to_string()),
                    }
                }
            });
        }
    });
    if let Some(error) = failed.into_inner().unwrap() {
        return Err(error);
    }
    println!("embedded in {:.1}s", started.elapsed().as_secs_f64());
    known.extend(done.into_inner().unwrap());
    write_cache(cache, &known).map_err(|e| format!("{}: {e}", cache.display()))?;
    Ok(known)
}

fn read_cache(path: &Path, dims: usize) -> HashMap<u64, Vec<f32>> {
    let Ok(bytes) = std::fs::read(path) else { return HashMap::new() };
    let record = 8 + 4 * dims;
    bytes
        .chunks_exact(record)
        .map(|chunk| {
            let key = u64::from_le_bytes(chunk[..8].try_into().unwrap());
            let vector =
                chunk[8..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            (key, vector)
        })
        .collect()
}

fn write_cache(path: &Path, embeddings: &HashMap<u64, Vec<f32>>) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    let mut keys: Vec<&u64> = embeddings.keys().collect();
    keys.sort();
    for key in keys {
        bytes.extend(key.to_le_bytes());
        embeddings[key].iter().for_each(|x| bytes.extend(x.to_le_bytes()));
    }
    std::fs::write(path, bytes)
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
    let total: f32 = sample_weight.iter().sum();
    let dims = train.first().map_or(0, |e| e.embedding.len());
    let (beta1, beta2, epsilon) = (0.9f32, 0.999f32, 1e-8f32);
    let mut params = vec![0.0f32; dims + 1];
    let (mut first, mut second) = (vec![0.0f32; dims + 1], vec![0.0f32; dims + 1]);
    for epoch in 1..=options.epochs {
        let mut gradient = vec![0.0f32; dims + 1];
        let mut loss = 0.0f32;
        for (example, &weight) in train.iter().zip(&sample_weight) {
            let z =
                params[dims] + params[..dims].iter().zip(&example.embedding).map(|(w, x)| w * x).sum::<f32>();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = if example.label { 1.0 } else { 0.0 };
            loss -= weight * (y * p.max(1e-7).ln() + (1.0 - y) * (1.0 - p).max(1e-7).ln());
            let g = weight * (p - y);
            gradient[..dims].iter_mut().zip(&example.embedding).for_each(|(acc, x)| *acc += g * x);
            gradient[dims] += g;
        }
        let (c1, c2) = (1.0 - beta1.powi(epoch as i32), 1.0 - beta2.powi(epoch as i32));
        for i in 0..=dims {
            let l2 = if i < dims { options.l2 * params[i] } else { 0.0 };
            let g = gradient[i] / total + l2;
            first[i] = beta1 * first[i] + (1.0 - beta1) * g;
            second[i] = beta2 * second[i] + (1.0 - beta2) * g * g;
            params[i] -= options.rate * (first[i] / c1) / ((second[i] / c2).sqrt() + epsilon);
        }
        if epoch % 100 == 0 || epoch == options.epochs {
            println!("epoch {epoch}: training loss {:.4}", loss / total);
        }
    }
    let bias = params[dims];
    params.truncate(dims);
    (params, bias)
}

/// The band and threshold with the highest validation recall at every source's
/// false-positive rate <= `max_fpr`; the narrowest band on ties.
fn choose_band(
    model: &SemanticModel,
    validation: &[&Example],
    default: f32,
    max_fpr: f64,
) -> Result<SemanticModel, String> {
    let probabilities: Vec<f32> = validation.iter().map(|e| model.probability(&e.embedding)).collect();
    let mut lows: Vec<f32> = (1..=20).map(|i| i as f32 * 0.05).filter(|&low| low < default).collect();
    lows.push(default);
    let mut highs: Vec<f32> = (1..=20).map(|i| i as f32 * 0.05).filter(|&high| high > default).collect();
    highs.push(default);
    let mut thresholds: Vec<f32> = (1..200).map(|i| i as f32 * 0.005).collect();
    thresholds.push(1.0);
    let mut best: Option<(usize, f32, SemanticModel)> = None;
    for &low in &lows {
        for &high in &highs {
            if high < low {
                continue;
            }
            for &threshold in &thresholds {
                let candidate = SemanticModel { band: [low, high], threshold, ..model.clone() };
                let (recall_hits, fpr_ok) = validate(&candidate, validation, &probabilities, max_fpr);
                if !fpr_ok {
                    continue;
                }
                let width = high - low;
                let better = match &best {
                    None => true,
                    Some((hits, best_width, _)) => {
                        recall_hits > *hits || (recall_hits == *hits && width < *best_width)
                    }
                };
                if better {
                    best = Some((recall_hits, width, candidate));
                }
            }
        }
    }
    best.map(|(_, _, model)| model).ok_or_else(|| "no band reaches the false-positive target".to_owned())
}

/// (injections caught, whether every source's false-positive rate is within `max_fpr`).
fn validate(
    model: &SemanticModel,
    examples: &[&Example],
    probabilities: &[f32],
    max_fpr: f64,
) -> (usize, bool) {
    let mut caught = 0;
    let mut benign: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (example, &probability) in examples.iter().zip(probabilities) {
        let injection = model.is_injection(example.score, probability);
        if example.label {
            caught += usize::from(injection);
        } else {
            let entry = benign.entry(&example.source).or_default();
            entry.0 += usize::from(injection);
            entry.1 += 1;
        }
    }
    (caught, benign.values().all(|&(flagged, total)| flagged as f64 <= max_fpr * total as f64))
}

fn report(model: &SemanticModel, default: f32, split: &str, examples: &[&Example]) {
    // Per source: [default stages, all stages] as (tp, fp, tn, fn), and how many reached the embedding.
    let mut sources: BTreeMap<&str, ([[usize; 4]; 2], usize, usize)> = BTreeMap::new();
    for example in examples {
        let all = model.is_injection(example.score, model.probability(&example.embedding));
        for source in [example.source.as_str(), "all"] {
            let entry = sources.entry(source).or_default();
            for (counts, predicted) in entry.0.iter_mut().zip([example.score >= default, all]) {
                counts[match (predicted, example.label) {
                    (true, true) => 0,
                    (true, false) => 1,
                    (false, false) => 2,
                    (false, true) => 3,
                }] += 1;
            }
            entry.1 += usize::from(model.in_band(example.score));
            entry.2 += 1;
        }
    }
    for (source, (counts, embedded, total)) in sources {
        println!(
            "{split} / {source}: {embedded} of {total} texts embedded ({:.1}%)",
            100.0 * embedded as f64 / total as f64
        );
        for (stage, [tp, fp, tn, fn_]) in ["default stages", "all stages"].iter().zip(counts) {
            let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            println!(
                "  {stage:<16} precision {:.3}  recall {:.3}  FPR {:.4}  (tp {tp} fp {fp} tn {tn} fn {fn_})",
                ratio(tp, tp + fp),
                ratio(tp, tp + fn_),
                ratio(fp, fp + tn)
            );
        }
    }
}

/// How many prompts of each hand-written everyday set (`benign-*.jsonl` in `dir`) each decision flags.
fn everyday(model: &SemanticModel, embedder: &Embedder, default: f32, dir: &Path) -> Result<(), String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("benign-")))
        .collect();
    files.sort();
    for file in files {
        let content = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        let (mut total, mut default_flags, mut all_flags) = (0, 0, 0);
        for line in content.lines().filter(|line| !line.trim().is_empty()) {
            let value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
            let text = value["text"].as_str().unwrap_or_default();
            let score = injection_score(&normalize(text)).score;
            let embedding = embedder.embed(text).map_err(|e| e.to_string())?;
            total += 1;
            default_flags += usize::from(score >= default);
            all_flags += usize::from(model.is_injection(score, model.probability(embedding.as_slice())));
        }
        println!(
            "{}: default stages flag {default_flags} of {total}, all stages {all_flags}",
            file.display()
        );
    }
    Ok(())
}
