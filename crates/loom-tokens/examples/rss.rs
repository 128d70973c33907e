//! Resident memory of exact counting: `cargo run --release -p loom-tokens --example rss`.
//!
//! Prints the process's VmRSS (and its anonymous / file-backed parts, and the peak VmHWM)
//! at start, after the first count with each encoding (`o200k_base`, then `cl100k_base`;
//! or the encodings named as arguments, in order), then after counting mixed-script text
//! on 8 threads at once (the pre-tokenizer's regex keeps a cache per concurrent user).
//! Linux only (/proc/self/status).

use loom_tokens::Encoding;

// The allocator the `loom` binary uses: what it keeps after the load is what `loom` keeps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let text = "Hello, world! Count me exactly: お誕生日おめでとう, fn main() { 42 }\n".repeat(1000);
    report("start");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let encodings: Vec<Encoding> = if args.is_empty() {
        Encoding::ALL.to_vec()
    } else {
        args.iter().filter_map(|name| Encoding::from_name(name)).collect()
    };
    for &encoding in &encodings {
        let tokens = encoding.count(&text);
        report(&format!("after {encoding} ({tokens} tokens)"));
    }
    let mixed = mixed_scripts();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..20 {
                    for &encoding in &encodings {
                        std::hint::black_box(encoding.count(&mixed));
                    }
                }
            });
        }
    });
    report("after 8 threads x 20 mixed-script counts");
}

/// Text in many scripts, digits, punctuation and whitespace runs: the regex's lazy DFA
/// builds states for what it sees.
fn mixed_scripts() -> String {
    let pieces = [
        "The quick brown fox jumps over the lazy dog. ",
        "Příliš žluťoučký kůň úpěl ďábelské ódy. ",
        "Съешь же ещё этих мягких французских булок. ",
        "いろはにほへと ちりぬるを 色は匂へど散りぬるを ",
        "我能吞下玻璃而不伤身体。 ",
        "나는 유리를 먹을 수 있어요. ",
        "أنا قادر على أكل الزجاج ١٢٣٤ ",
        "Ἐν ἀρχῇ ἦν ὁ λόγος 🎉🚀 ",
        "fn main() {\n\tlet x = 0x1F; // CamelCaseWord HTTPServer\n}\n   \r\n",
        "1234567890 3.14159 ",
    ];
    pieces.concat().repeat(200)
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
        "{label:<42} VmRSS {:>5.1} MB (anon {:>5.1}, file {:>5.1}), VmHWM {:>5.1} MB",
        mb(field("VmRSS:")),
        mb(field("RssAnon:")),
        mb(field("RssFile:")),
        mb(field("VmHWM:")),
    );
}
