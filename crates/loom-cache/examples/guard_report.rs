fn main() {
    let data = std::fs::read_to_string("crates/loom-cache/tests/data/question-pairs.jsonl").unwrap();
    let pairs = loom_cache::eval::parse_pairs(&data).unwrap();
    for (pair, diff) in loom_cache::eval::guard_disagreements(&pairs) {
        println!("{:<11} {:?}\n   {}\n   {}", pair.kind.as_str(), diff, pair.a, pair.b);
    }
}
