//! Resident memory of exact counting: `cargo run --release -p loom-tokens --example rss`.
//!
//! Prints the process's VmRSS (and its anonymous / file-backed parts) at start, after the
//! first count with `o200k_base`, then after `cl100k_base` too. Linux only (/proc/self/status).

use loom_tokens::Encoding;

fn main() {
    let text = "Hello, world! Count me exactly: お誕生日おめでとう, fn main() { 42 }\n".repeat(1000);
    report("start");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let order: Vec<Encoding> = if args.is_empty() {
        Encoding::ALL.to_vec()
    } else {
        args.iter().filter_map(|name| Encoding::from_name(name)).collect()
    };
    for encoding in order {
        let tokens = encoding.count(&text);
        report(&format!("after {encoding} ({tokens} tokens)"));
    }
}

fn report(label: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|rest| rest.trim().trim_end_matches(" kB").trim().parse::<u64>().unwrap_or(0))
            .unwrap_or(0)
    };
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "{label:<40} VmRSS {:>6.1} MB (anon {:>6.1}, file {:>6.1}), VmHWM {:>6.1} MB",
        mb(field("VmRSS:")),
        mb(field("RssAnon:")),
        mb(field("RssFile:")),
        mb(field("VmHWM:")),
    );
}
