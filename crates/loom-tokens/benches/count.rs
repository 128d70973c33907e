//! Token-counting throughput: loom-tokens (bpe-openai) vs tiktoken-rs on the same inputs.
//!
//! `cargo bench -p loom-tokens --bench count` prints a Markdown table of tokens/s. Times
//! are the thread's CPU time (Linux; wall time elsewhere), the best of 7 runs alternating
//! between the two, so that other work on a shared machine distorts them as little as
//! possible. tiktoken-rs has no count-only call:
//! its `encode_ordinary(text).len()` is what a tiktoken-rs user would write.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use loom_tokens::Encoding;
use tiktoken_rs::CoreBPE;

fn main() {
    let docs = prose();
    let inputs = [
        Input::new("chat messages (1,000 x ~150 B)", chat_messages(&docs)),
        Input::new("prose 100 KB", vec![cut(&docs, 100_000)]),
        Input::new("code 1 MB", vec![code(1_000_000)]),
        Input::new("1 MB base64-like letters, mixed case", vec![one_word(1_000_000)]),
        Input::new("1 MB one lowercase word", vec![one_word(1_000_000).to_ascii_lowercase()]),
        Input::new("1 MB one repeated char", vec!["a".repeat(1_000_000)]),
    ];

    println!("| encoder | first use (load) |");
    println!("|---|---|");
    for encoding in Encoding::ALL {
        let load = cpu_time(|| encoding.warm_up());
        println!("| loom-tokens {encoding} | {} |", ms(load));
    }
    let o200k = tiktoken(Encoding::O200kBase);
    let cl100k = tiktoken(Encoding::Cl100kBase);
    println!();

    println!("| input | encoding | tokens | loom-tokens | tiktoken-rs | speed-up |");
    println!("|---|---|---:|---:|---:|---:|");
    for input in &inputs {
        for (encoding, reference) in [(Encoding::O200kBase, &o200k), (Encoding::Cl100kBase, &cl100k)] {
            let tokens: usize = input.texts.iter().map(|text| encoding.count(text)).sum();
            let reference_tokens: usize =
                input.texts.iter().map(|text| reference.encode_ordinary(text).len()).sum();
            assert_eq!(tokens, reference_tokens, "{} {encoding}: counts differ", input.name);
            let (ours, theirs) = best_times(
                || input.texts.iter().map(|text| encoding.count(black_box(text))).sum(),
                || input.texts.iter().map(|text| reference.encode_ordinary(black_box(text)).len()).sum(),
            );
            println!(
                "| {} | {encoding} | {tokens} | {} | {} | {:.1}x |",
                input.name,
                rate(tokens, ours),
                rate(tokens, theirs),
                theirs.as_secs_f64() / ours.as_secs_f64()
            );
        }
    }
}

struct Input {
    name: &'static str,
    texts: Vec<String>,
}

impl Input {
    fn new(name: &'static str, texts: Vec<String>) -> Self {
        Input { name, texts }
    }
}

fn tiktoken(encoding: Encoding) -> CoreBPE {
    let started = cpu_now();
    let bpe = match encoding {
        Encoding::O200kBase => tiktoken_rs::o200k_base(),
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base(),
    }
    .expect("tiktoken-rs encoder");
    println!("| tiktoken-rs {encoding} | {} |", ms(cpu_now().saturating_sub(started)));
    bpe
}

/// The workspace's Markdown docs: real English prose with some code and tables.
fn prose() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut paths: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    paths.sort();
    paths.insert(0, root.join("README.md"));
    paths.iter().map(|path| std::fs::read_to_string(path).expect("read doc")).collect::<Vec<_>>().join("\n\n")
}

/// Repeats `text` to at least `bytes`, then cuts at a char boundary.
fn cut(text: &str, bytes: usize) -> String {
    let mut out = text.repeat(bytes / text.len() + 1);
    let mut end = bytes;
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

/// Paragraph-sized pieces of the docs, like chat messages.
fn chat_messages(docs: &str) -> Vec<String> {
    let mut messages = Vec::new();
    let mut current = String::new();
    for line in docs.lines().cycle() {
        current.push_str(line);
        current.push('\n');
        if current.len() >= 100 {
            messages.push(std::mem::take(&mut current));
            if messages.len() == 1000 {
                return messages;
            }
        }
    }
    messages
}

/// This crate's Rust sources, repeated to `bytes`.
fn code(bytes: usize) -> String {
    let sources = [
        include_str!("../src/chat.rs"),
        include_str!("../src/encoding.rs"),
        include_str!("../src/image.rs"),
        include_str!("../src/registry.rs"),
        include_str!("../src/spec.rs"),
        include_str!("../tests/parity.rs"),
    ];
    cut(&sources.concat(), bytes)
}

/// Pseudo-random ASCII letters without a space (`o200k_base` still splits at case changes).
fn one_word(bytes: usize) -> String {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
            char::from(letters[(state % 52) as usize])
        })
        .collect()
}

/// Best CPU time of 7 alternating runs of `a` and `b`.
fn best_times(mut a: impl FnMut() -> usize, mut b: impl FnMut() -> usize) -> (Duration, Duration) {
    let (mut best_a, mut best_b) = (Duration::MAX, Duration::MAX);
    for _ in 0..7 {
        best_a = best_a.min(cpu_time(|| black_box(a())));
        best_b = best_b.min(cpu_time(|| black_box(b())));
    }
    (best_a, best_b)
}

fn cpu_time<T>(f: impl FnOnce() -> T) -> Duration {
    let started = cpu_now();
    black_box(f());
    cpu_now().saturating_sub(started)
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn cpu_now() -> Duration {
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanos: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec { seconds: 0, nanos: 0 };
    // SAFETY: clock_gettime writes one timespec (two longs on 64-bit Linux) to a valid pointer.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime");
    Duration::new(time.seconds as u64, time.nanos as u32)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn cpu_now() -> Duration {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

fn rate(tokens: usize, time: Duration) -> String {
    let per_second = tokens as f64 / time.as_secs_f64();
    if per_second >= 1e6 {
        format!("{:.1} M tok/s", per_second / 1e6)
    } else {
        format!("{:.0} k tok/s", per_second / 1e3)
    }
}

fn ms(time: Duration) -> String {
    format!("{:.0} ms", time.as_secs_f64() * 1e3)
}
