//! Measures the semantic index: `cargo run --release -p loom-cache --example bench_index`.
//!
//! One partition of 100k clustered 384-dimension unit vectors (the HNSW path), then 100k in
//! 10k partitions of 10 (the exact path): build time, search latency over 10k queries
//! (p50/p99/max, embedding excluded), recall@1 against brute force and `memory_bytes`.
//! `BENCH_INDEX_ENTRIES` changes the 100k; `BENCH_INDEX_M`, `BENCH_INDEX_EF_CONSTRUCTION` and
//! `BENCH_INDEX_EF_SEARCH` the graph options, `BENCH_INDEX_GRAPH_THRESHOLD` where graphs start; `BENCH_INDEX_PHASE=one` or `many` runs one part.

mod clustered;

use std::time::{Duration, Instant};

use clustered::ClusteredVectors;
use loom_cache::semantic_index::{EntryId, IndexOptions, PartitionKey, SemanticIndex};

const DIMENSIONS: usize = 384;
const QUERIES: usize = 10_000;
/// Queries whose recall is checked by brute force (the rest only measure latency).
const RECALL_QUERIES: usize = 500;

fn main() {
    let entries = setting("BENCH_INDEX_ENTRIES", 100_000);
    let mut options = IndexOptions::new(DIMENSIONS, entries);
    options.graph.links_per_node = setting("BENCH_INDEX_M", options.graph.links_per_node);
    options.graph.ef_construction = setting("BENCH_INDEX_EF_CONSTRUCTION", options.graph.ef_construction);
    options.graph.ef_search = setting("BENCH_INDEX_EF_SEARCH", options.graph.ef_search);
    options.graph_threshold = setting("BENCH_INDEX_GRAPH_THRESHOLD", options.graph_threshold);
    println!(
        "{entries} entries of {DIMENSIONS} dimensions, {QUERIES} queries, graphs from {} entries, {:?}",
        options.graph_threshold, options.graph
    );
    // One phase per process measures resident memory cleanly (a freed index stays mapped).
    let phase = std::env::var("BENCH_INDEX_PHASE").unwrap_or_default();
    if phase != "many" {
        one_partition(entries, options);
    }
    if phase != "one" {
        many_partitions(entries, 10, options);
    }
}

/// The number in the environment variable `name`, or `default`.
fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn entry_id(n: usize) -> EntryId {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(n as u64).to_le_bytes());
    id
}

fn partition_key(n: usize) -> PartitionKey {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&(n as u64).to_le_bytes());
    key
}

fn one_partition(entries: usize, options: IndexOptions) {
    // 1 topic per 1,000 entries, 10 subtopics each: about 100 entries per subtopic.
    let mut generator = ClusteredVectors::new(42, DIMENSIONS, (entries / 1_000).max(1), 10);
    let vectors: Vec<Vec<f32>> = (0..entries).map(|_| generator.next_vector()).collect();
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| generator.next_vector()).collect();
    let index = SemanticIndex::new(options);
    let key = partition_key(0);
    let resident_before = resident_bytes();
    let started = Instant::now();
    for (n, vector) in vectors.iter().enumerate() {
        if let Err(error) = index.insert(key, entry_id(n), vector) {
            eprintln!("insert {n}: {error}");
            return;
        }
    }
    let build = started.elapsed();
    let resident_growth = resident_bytes().saturating_sub(resident_before);
    let latencies = search_latencies(&index, &queries, |_| key);
    let recall = recall_at_1(&index, key, &vectors, &queries[..RECALL_QUERIES]);
    let paraphrases: Vec<Vec<f32>> = (0..RECALL_QUERIES)
        .map(|_| {
            let stored = (generator.next_u64() % entries as u64) as usize;
            generator.paraphrase_of(&vectors[stored])
        })
        .collect();
    let paraphrase_recall = recall_at_1(&index, key, &vectors, &paraphrases);
    println!(
        "one partition: build {:.1} s ({} in the graph), search {}, recall@1 {recall:.3} on new questions and \
         {paraphrase_recall:.3} on paraphrases of stored ones ({RECALL_QUERIES} each), memory_bytes {} MB \
         (resident memory grew {} MB)",
        build.as_secs_f64(),
        index.graph_nodes(),
        summary(latencies),
        index.memory_bytes() / 1_000_000,
        resident_growth / 1_000_000
    );
}

fn many_partitions(entries: usize, per_partition: usize, options: IndexOptions) {
    let partitions = (entries / per_partition).max(1);
    let mut generator = ClusteredVectors::new(43, DIMENSIONS, (entries / 1_000).max(1), 10);
    let index = SemanticIndex::new(options);
    let resident_before = resident_bytes();
    let started = Instant::now();
    for n in 0..entries {
        if let Err(error) = index.insert(partition_key(n % partitions), entry_id(n), &generator.next_vector())
        {
            eprintln!("insert {n}: {error}");
            return;
        }
    }
    let build = started.elapsed();
    let resident_growth = resident_bytes().saturating_sub(resident_before);
    let queries: Vec<(usize, Vec<f32>)> = (0..QUERIES)
        .map(|_| ((generator.next_u64() % partitions as u64) as usize, generator.next_vector()))
        .collect();
    let vectors: Vec<Vec<f32>> = queries.iter().map(|(_, vector)| vector.clone()).collect();
    let latencies = search_latencies(&index, &vectors, |i| partition_key(queries[i].0));
    println!(
        "{partitions} partitions of {per_partition}: build {:.1} s, search {}, exact (recall 1), memory_bytes {} MB (resident memory grew {} MB)",
        build.as_secs_f64(),
        summary(latencies),
        index.memory_bytes() / 1_000_000,
        resident_growth / 1_000_000
    );
}

/// The share of `queries` whose first result is the exact nearest entry (or as similar).
fn recall_at_1(index: &SemanticIndex, key: PartitionKey, vectors: &[Vec<f32>], queries: &[Vec<f32>]) -> f64 {
    let hits = queries
        .iter()
        .filter(|query| {
            let exact = vectors
                .iter()
                .enumerate()
                .map(|(n, vector)| (n, dot(query, vector)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let found = index.search(&key, query, 1);
            match (exact, found.first()) {
                (Some((n, best)), Some(first)) => {
                    first.id == entry_id(n) || (first.similarity - best).abs() < 1e-6
                }
                _ => false,
            }
        })
        .count();
    hits as f64 / queries.len().max(1) as f64
}

/// The latency of each query's search for its 5 nearest entries.
fn search_latencies(
    index: &SemanticIndex,
    queries: &[Vec<f32>],
    partition: impl Fn(usize) -> PartitionKey,
) -> Vec<Duration> {
    queries
        .iter()
        .enumerate()
        .map(|(i, query)| {
            let key = partition(i);
            let started = Instant::now();
            let found = index.search(&key, query, 5);
            let elapsed = started.elapsed();
            std::hint::black_box(found);
            elapsed
        })
        .collect()
}

fn summary(mut latencies: Vec<Duration>) -> String {
    latencies.sort_unstable();
    let at = |share: f64| latencies[((latencies.len() - 1) as f64 * share) as usize];
    format!("p50 {:?} p99 {:?} max {:?}", at(0.5), at(0.99), at(1.0))
}

/// The process's resident memory (Linux; 0 elsewhere), to check `memory_bytes` against.
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|pages| pages.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
