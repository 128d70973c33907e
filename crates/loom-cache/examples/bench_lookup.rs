//! Time of an exact cache lookup as the cache layer makes it: the request's key
//! (`namespace` + `request_key`: the request serialised once and hashed once with BLAKE3)
//! and the in-memory find,
//! for three request shapes (a short chat, a 2 KB and a 20 KB multi-turn chat), against a
//! cache holding `--entries` other answers (issue 20's target: under 20 µs).
//!
//! ```text
//! cargo run --release -p loom-cache --example bench_lookup [-- --iterations 100000 --entries 100000]
//! ```
//!
//! Every lookup is a hit (the three requests' answers are stored first). Each iteration is
//! timed on its own (`Instant`, about 30 ns of it the clock's); the p50 and p99 are printed
//! per part and for the two together. Wall time on a shared machine: a busy neighbour shows
//! in the p99 first.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use loom_cache::key::{namespace, request_key};
use loom_cache::{CacheConfig, Lookup, Namespace, ResponseCache};
use loom_core::{ChatRequest, ChatResponse, Identity};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The route name the gateway gives a request without routes.
const ROUTE: &str = "ai";
/// Words of the generated turns.
const WORDS: [&str; 12] = [
    "the", "gateway", "routes", "every", "request", "through", "a", "local", "model", "today", "and",
    "answers",
];

struct Options {
    iterations: usize,
    entries: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options { iterations: 100_000, entries: 100_000 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let number = value.parse::<usize>().map_err(|err| format!("{arg} {value}: {err}"))?;
        match arg.as_str() {
            "--iterations" if number > 0 => options.iterations = number,
            "--entries" => options.entries = number,
            _ => return Err(format!("unknown or invalid option {arg} {value}")),
        }
    }
    Ok(options)
}

/// `words` words of the generated text, starting at word `from`.
fn text(from: usize, words: usize) -> String {
    (from..from + words).map(|i| WORDS[i % WORDS.len()]).collect::<Vec<_>>().join(" ")
}

/// A chat of about `bytes` of JSON: a system prompt, then user and assistant turns of 20
/// words each, ending on the first user turn at or past `bytes`.
fn multi_turn(bytes: usize) -> Value {
    let mut chat = json!({"model": "gpt-4o-mini", "max_tokens": 256, "messages": [
        {"role": "system", "content": "You are a helpful assistant. Be brief."}]});
    for turn in 0.. {
        let user = turn % 2 == 0;
        let message = json!({"role": if user { "user" } else { "assistant" }, "content": text(turn * 7, 20)});
        if let Some(Value::Array(messages)) = chat.get_mut("messages") {
            messages.push(message);
        }
        if user && chat.to_string().len() >= bytes {
            break;
        }
    }
    chat
}

fn short_chat(question: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]})
}

fn answer() -> Result<ChatResponse, serde_json::Error> {
    serde_json::from_value(json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
            "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19}
    }))
}

/// The value at `quantile` (0..=1) of sorted nanoseconds, in µs.
fn micros_at(sorted: &[u64], quantile: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * quantile).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench_lookup: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let config = CacheConfig { enabled: true, namespace: Namespace::Key, ..CacheConfig::default() };
    let cache = ResponseCache::new(&config, []);
    let policy = cache.policy(None).clone();
    let identity = Identity { key_id: Some("bench".into()), user: None, team: None };
    let response = answer()?;
    let response_json = serde_json::value::to_raw_value(&response)?;
    let keep = |chat: &mut ChatRequest| -> Result<(), String> {
        let key = request_key(namespace(config.namespace, &identity), ROUTE, chat)
            .ok_or("a request without a canonical form")?;
        if cache.keep(&key, &response, response_json.clone(), "openai", &policy) {
            Ok(())
        } else {
            Err("the answer was not stored".to_owned())
        }
    };

    let filled = Instant::now();
    for i in 0..options.entries {
        keep(&mut serde_json::from_value(short_chat(&format!("Question {i}: {}", text(i, 6))))?)?;
    }
    let stats = cache.stats();
    println!(
        "cache: {} entries, {:.1} MiB (filled in {:.1} s); {} iterations per shape",
        stats.entries,
        stats.memory_bytes as f64 / (1024.0 * 1024.0),
        filled.elapsed().as_secs_f64(),
        options.iterations
    );

    let shapes = [
        ("short chat", short_chat("Say hello.")),
        ("2 KB multi-turn chat", multi_turn(2 * 1024)),
        ("20 KB multi-turn chat", multi_turn(20 * 1024)),
    ];
    println!(
        "{:<24} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "request", "JSON", "key p50", "key p99", "find p50", "find p99", "total p50", "total p99"
    );
    let mut parts = Vec::new();
    for (label, body) in shapes {
        let json_bytes = serde_json::to_vec(&body)?.len();
        let mut chat: ChatRequest = serde_json::from_value(body)?;
        keep(&mut chat)?;
        let warm_up = (options.iterations / 10).max(1);
        let mut key_ns = Vec::with_capacity(options.iterations);
        let mut find_ns = Vec::with_capacity(options.iterations);
        let mut total_ns = Vec::with_capacity(options.iterations);
        for iteration in 0..warm_up + options.iterations {
            let started = Instant::now();
            let key = request_key(namespace(config.namespace, &identity), ROUTE, &mut chat)
                .ok_or("a request without a canonical form")?;
            let keyed = Instant::now();
            // Without a shared store the find never waits: it completes on its first poll.
            let lookup = cache.find(&key).now_or_never().ok_or("the lookup waited")?;
            let found = Instant::now();
            if !matches!(lookup, Lookup::Hit { .. }) {
                return Err(format!("{label}: a miss where a hit was stored").into());
            }
            if iteration >= warm_up {
                key_ns.push(nanos(keyed - started));
                find_ns.push(nanos(found - keyed));
                total_ns.push(nanos(found - started));
            }
        }
        for times in [&mut key_ns, &mut find_ns, &mut total_ns] {
            times.sort_unstable();
        }
        parts.push((label, chat));
        println!(
            "{label:<24} {:>6} B {:>6.2} µs {:>6.2} µs {:>6.2} µs {:>6.2} µs {:>8.2} µs {:>8.2} µs",
            json_bytes,
            micros_at(&key_ns, 0.5),
            micros_at(&key_ns, 0.99),
            micros_at(&find_ns, 0.5),
            micros_at(&find_ns, 0.99),
            micros_at(&total_ns, 0.5),
            micros_at(&total_ns, 0.99),
        );
    }
    breakdown(&parts, options.iterations)
}

/// Where the key's time goes, p50 of each step alone: the request serialised (the key
/// does it once, in three parts) and BLAKE3 over those bytes (once); SHA-256 for comparison.
fn breakdown(requests: &[(&str, ChatRequest)], iterations: usize) -> Result<(), Box<dyn std::error::Error>> {
    println!("{:<24} {:>13} {:>13} {:>13}", "key steps, p50", "to_vec", "blake3", "sha256");
    for (label, chat) in requests {
        let (mut to_vec, mut blake, mut sha) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..iterations.min(20_000) {
            let started = Instant::now();
            let bytes = serde_json::to_vec(chat)?;
            let serialized = Instant::now();
            std::hint::black_box(blake3::hash(&bytes));
            let blaked = Instant::now();
            std::hint::black_box(Sha256::digest(&bytes));
            let hashed = Instant::now();
            to_vec.push(nanos(serialized - started));
            blake.push(nanos(blaked - serialized));
            sha.push(nanos(hashed - blaked));
        }
        for times in [&mut to_vec, &mut blake, &mut sha] {
            times.sort_unstable();
        }
        println!(
            "{label:<24} {:>10.2} µs {:>10.2} µs {:>10.2} µs",
            micros_at(&to_vec, 0.5),
            micros_at(&blake, 0.5),
            micros_at(&sha, 0.5)
        );
    }
    Ok(())
}
