//! How long `inspect::pii::find` takes per KB of text, on prose, code, logs and text dense
//! with PII, and what streamed redaction costs on top (4-byte chunks, as a model's tokens
//! arrive). Run in release mode: `cargo run --release -p loom-guard --example pii_speed`.
//!
//! Given the labelled JSONL file of scripts/pii-data.py, it also times every text in it:
//! `... --example pii_speed -- target/test-data/pii/pii-test.jsonl`.

use std::hint::black_box;
use std::time::Instant;

use loom_guard::inspect::pii::find;
use loom_guard::inspect::redact::Redactor;
use loom_guard::inspect::stream_redact::StreamRedactor;

/// Bytes of text per sample, roughly.
const SAMPLE_BYTES: usize = 8 * 1024;
/// Runs per sample; the figure is the median.
const RUNS: usize = 200;

const PROSE: &str = "The committee met on Tuesday to discuss the budget for the coming year. \
Several members raised concerns about the cost of the new building, which had grown by almost \
a third since the first estimate. After a long debate, they agreed to ask the architects for a \
cheaper design and to meet again in two weeks. Das Projekt wird im Frühjahr fortgesetzt; \
la décision finale sera prise en mai. ";

const CODE: &str = r#"fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?; // reads API_KEY and DB_PASSWORD from the environment
    let client = Client::builder().timeout(Duration::from_secs(30)).build()?;
    for (index, item) in items.iter().enumerate().take(1024) {
        let token_count = tokenizer.count(&item.text);
        println!("{index}: {token_count} tokens, version 1.4.2, id {}", item.id);
    }
    let password = std::env::var("DB_PASSWORD")?;
    Ok(())
}
"#;

const LOGS: &str = "2024-03-05T12:30:00.123Z INFO request_id=4f1c2a9e-8b7d-4c3e-9a1f-2b3c4d5e6f70 \
status=200 latency_ms=183 upstream=10.0.3.17:8080 model=gpt-4o-mini tokens=1532 build 10.0.19041.1234\n";

const DENSE: &str = "Contact jane.doe@example.com or +44 20 7946 0958; card 4111 1111 1111 1111, IBAN \
DE89 3704 0044 0532 0130 00, SSN 123-45-6789, from 192.168.0.1, key AKIAIOSFODNN7EXAMPLE, \
password=Xk9#mQ2vLp7zR4tw. ";

fn repeat_to_size(unit: &str) -> String {
    unit.repeat(SAMPLE_BYTES / unit.len() + 1)
}

/// The median of `RUNS` timings of `work`, in nanoseconds per KB of `text`.
fn median_ns_per_kb(text: &str, mut work: impl FnMut(&str)) -> f64 {
    let mut timings: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            work(black_box(text));
            started.elapsed().as_nanos() as f64
        })
        .collect();
    timings.sort_by(f64::total_cmp);
    timings[RUNS / 2] / (text.len() as f64 / 1024.0)
}

fn main() {
    for (name, unit) in [("prose", PROSE), ("code", CODE), ("logs", LOGS), ("dense PII", DENSE)] {
        let short_ns = median_ns_per_kb(unit, |text| {
            black_box(find(text));
        });
        println!(
            "{name}: one {}-byte unit alone {:.0} ns",
            unit.len(),
            short_ns * unit.len() as f64 / 1024.0
        );
        let text = repeat_to_size(unit);
        let findings = find(&text).len();
        let kinds: Vec<String> = find(unit)
            .iter()
            .map(|finding| format!("{}:{:?}", finding.kind, &unit[finding.range.clone()]))
            .collect();
        println!("{name}: one unit holds {kinds:?}");
        let find_ns = median_ns_per_kb(&text, |text| {
            black_box(find(text));
        });
        let redact_ns = median_ns_per_kb(&text, |text| {
            black_box(Redactor::new().redact_all(text));
        });
        let stream_ns = median_ns_per_kb(&text, |text| {
            let mut stream = StreamRedactor::default();
            for chunk in text.as_bytes().chunks(4) {
                // The samples are ASCII except PROSE's accents, which chunks of 4 may cut.
                if let Ok(chunk) = std::str::from_utf8(chunk) {
                    black_box(stream.push(chunk));
                }
            }
            black_box(stream.finish());
        });
        println!(
            "{name:<10} {:>6} bytes, {findings:>4} findings: find {find_ns:>7.0} ns/KB, redact {redact_ns:>7.0} ns/KB, stream (4-byte chunks) {stream_ns:>7.0} ns/KB",
            text.len()
        );
    }
    for path in std::env::args().skip(1) {
        if let Err(error) = labelled_file(&path) {
            eprintln!("{path}: {error}");
            std::process::exit(1);
        }
    }
}

/// Times `find` over every text of one labelled JSONL file.
fn labelled_file(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut texts = Vec::new();
    for line in std::fs::read_to_string(path)?.lines() {
        let record: serde_json::Value = serde_json::from_str(line)?;
        let group = record["group"].as_str().unwrap_or("").to_owned();
        texts.push((record["text"].as_str().ok_or("a line with no text")?.to_owned(), group));
    }
    let bytes: usize = texts.iter().map(|(text, _)| text.len()).sum();
    let mut per_group: std::collections::BTreeMap<&str, (usize, u128)> = std::collections::BTreeMap::new();
    let started = Instant::now();
    let mut findings = 0;
    for (text, group) in &texts {
        let text_started = Instant::now();
        findings += black_box(find(black_box(text))).len();
        let entry = per_group.entry(group.as_str()).or_default();
        entry.0 += 1;
        entry.1 += text_started.elapsed().as_nanos();
    }
    let per_kb = started.elapsed().as_nanos() as f64 / (bytes as f64 / 1024.0);
    println!("{path}: {} texts, {bytes} bytes, {findings} findings, {per_kb:.0} ns per KB", texts.len());
    for (group, (count, nanos)) in per_group {
        println!("    {group:<20} {count:>5} texts, {:>7.0} ns per text", nanos as f64 / count as f64);
    }
    Ok(())
}
