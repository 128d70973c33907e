//! Latency of the local MiniLM embedder through a one-thread [`EmbedPool`], by input length,
//! and its CPU cost (process CPU time per job, so other load on the machine does not count);
//! `jobs/s/core` is embeddings per second per core (issue 20).
//!
//! ```text
//! CANDLE_NUM_THREADS=1 cargo run --release -p loom-tokens --features embed --example embed_speed -- target/test-data/minilm
//! ```
//!
//! The model directory is the first argument, else `TEST_MINILM_DIR`. Inputs are counted in
//! word pieces without `[CLS]`/`[SEP]`. 512 word pieces are measured both ways: truncated
//! to the first window (`embed`, 254 word pieces) and as all its windows (`embed_windows`:
//! 254 + 254 + 4 word pieces, one job, the windows one after the other).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loom_tokens::embed::{EmbedPool, Embedder, PoolOptions};

// The allocator the `loom` binary uses: a forward pass allocates every intermediate tensor.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Words the tokenizer keeps whole: `n` of them are `n` word pieces.
const WORDS: [&str; 10] =
    ["the", "gateway", "routes", "every", "request", "through", "a", "local", "model", "today"];

fn text_of(word_pieces: usize) -> String {
    (0..word_pieces).map(|i| WORDS[i % WORDS.len()]).collect::<Vec<_>>().join(" ")
}

/// User + system CPU time of this process so far (`/proc/self/stat`, 100 ticks a second).
fn process_cpu_seconds() -> Result<f64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').ok_or("malformed /proc/self/stat")?.1.split_whitespace().collect();
    let ticks = |index: usize| -> Result<f64, Box<dyn std::error::Error>> {
        Ok(fields.get(index).ok_or("short /proc/self/stat")?.parse::<f64>()?)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("TEST_MINILM_DIR"))
        .map(PathBuf::from)
        .ok_or("usage: embed_speed MODEL_DIR (or set TEST_MINILM_DIR)")?;
    let started = Instant::now();
    let embedder = Arc::new(Embedder::load(&dir)?);
    println!("loaded {} in {} ms", dir.display(), started.elapsed().as_millis());
    println!(
        "CANDLE_NUM_THREADS={} RAYON_NUM_THREADS={} cores={}",
        std::env::var("CANDLE_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    let reference = |a: &str, b: &str| -> Result<f32, Box<dyn std::error::Error>> {
        Ok(embedder.embed(a)?.cosine(&embedder.embed(b)?))
    };
    println!(
        "cosine negation {:.4}, numbers {:.4}",
        reference("Is Python dynamically typed?", "Is Python not dynamically typed?")?,
        reference("Convert 10 miles to km", "Convert 12 miles to km")?,
    );

    let pool = EmbedPool::new(Arc::clone(&embedder), PoolOptions { threads: 1, queue_capacity: 1 })?;
    println!(
        "{:<30} {:>6} {:>9} {:>9} {:>11} {:>12}",
        "input", "runs", "p50 ms", "p99 ms", "cpu ms/job", "jobs/s/core"
    );
    for (label, word_pieces, windows, runs) in [
        ("8 word pieces", 8, None, 300),
        ("16 word pieces", 16, None, 300),
        ("32 word pieces", 32, None, 200),
        ("64 word pieces", 64, None, 150),
        ("128 word pieces", 128, None, 100),
        ("254 (one full window)", 254, None, 60),
        ("512 truncated (1 window)", 512, None, 60),
        ("512 as 3 windows (254+254+4)", 512, Some(3), 40),
    ] {
        let text = text_of(word_pieces);
        assert_eq!(embedder.token_count(&text)?, word_pieces);
        let mut times = Vec::with_capacity(runs);
        let mut cpu_started = None;
        for run in 0..runs + 3 {
            if run == 3 {
                cpu_started = Some(process_cpu_seconds()?);
            }
            let started = Instant::now();
            match windows {
                None => drop(pool.try_embed(text.clone())?.await?),
                Some(windows) => drop(pool.try_embed_windows(text.clone(), windows)?.await?),
            }
            times.push(started.elapsed());
        }
        let mut times = times.split_off(3); // warm-up
        times.sort();
        // CPU time, not wall time: other processes on the machine do not count against it.
        let cpu_per_job = (process_cpu_seconds()? - cpu_started.unwrap_or_default()) / runs as f64;
        println!(
            "{label:<30} {runs:>6} {:>9.2} {:>9.2} {:>11.2} {:>12.1}",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            cpu_per_job * 1000.0,
            1.0 / cpu_per_job
        );
    }
    Ok(())
}
