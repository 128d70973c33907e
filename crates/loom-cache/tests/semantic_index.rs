//! The semantic index against exact search: recall of the HNSW path on clustered vectors,
//! partition isolation, removal and rebuilds, bounds, refusals and concurrent use.

#[allow(dead_code)] // The benchmark uses all of it; these tests a part.
#[path = "../examples/bench_index/clustered.rs"]
mod clustered;

use std::sync::Arc;

use clustered::ClusteredVectors;
use loom_cache::semantic_index::{EntryId, IndexError, IndexOptions, PartitionKey, SemanticIndex};

fn id(n: usize) -> EntryId {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(n as u64).to_le_bytes());
    id
}

fn key(n: u8) -> PartitionKey {
    [n; 32]
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The index of the entry most similar to `query` among the live `entries`, by brute force.
fn exact_nearest(entries: &[(usize, Vec<f32>)], query: &[f32]) -> Option<(usize, f32)> {
    entries.iter().map(|(n, vector)| (*n, dot(query, vector))).max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Share of `queries` whose first result is the exact nearest entry (or one as similar).
fn recall_at_1(
    index: &SemanticIndex,
    partition: &PartitionKey,
    entries: &[(usize, Vec<f32>)],
    queries: &[Vec<f32>],
) -> f32 {
    let hits = queries
        .iter()
        .filter(|query| {
            let Some((nearest, best)) = exact_nearest(entries, query) else { return false };
            let found = index.search(partition, query, 1);
            found.first().is_some_and(|n| n.id == id(nearest) || (n.similarity - best).abs() < 1e-6)
        })
        .count();
    hits as f32 / queries.len() as f32
}

#[test]
fn the_graph_path_finds_the_exact_nearest_entry_for_at_least_95_percent_of_queries() {
    // 4,000 entries of 384 dimensions (debug builds are slow; the benchmark measures 100k).
    let dimensions = 384;
    let options =
        IndexOptions { graph_threshold: 1024, max_unindexed: 256, ..IndexOptions::new(dimensions, 10_000) };
    let index = SemanticIndex::new(options);
    let mut vectors = ClusteredVectors::new(20, dimensions, 20, 10);
    let entries: Vec<(usize, Vec<f32>)> = (0..4_000).map(|n| (n, vectors.next_vector())).collect();
    for (n, vector) in &entries {
        index.insert(key(1), id(*n), vector).unwrap();
    }
    assert_eq!(index.len(), 4_000);
    assert!(
        index.graph_nodes() >= 3_744,
        "at most max_unindexed entries outside the graph: {}",
        index.graph_nodes()
    );
    let queries: Vec<Vec<f32>> = (0..300).map(|_| vectors.next_vector()).collect();
    let recall = recall_at_1(&index, &key(1), &entries, &queries);
    assert!(recall >= 0.95, "recall@1 {recall}");
    // A stored vector finds itself first, with similarity 1.
    for (n, vector) in entries.iter().step_by(97) {
        let found = index.search(&key(1), vector, 3);
        assert_eq!(found[0].id, id(*n));
        assert!((found[0].similarity - 1.0).abs() < 1e-5);
        assert!(found[0].similarity >= found[1].similarity && found[1].similarity >= found[2].similarity);
    }
}

#[test]
fn a_search_sees_only_its_own_partition() {
    let dimensions = 32;
    // Partition 1 is large enough for a graph, partition 2 is searched exactly.
    let index = SemanticIndex::new(IndexOptions {
        graph_threshold: 64,
        max_unindexed: 16,
        ..IndexOptions::new(dimensions, 1_000)
    });
    let mut vectors = ClusteredVectors::new(3, dimensions, 4, 4);
    let shared = vectors.next_vector();
    for n in 0..200 {
        index.insert(key(1), id(n), &vectors.next_vector()).unwrap();
    }
    index.insert(key(2), id(1_000), &shared).unwrap();
    index.insert(key(2), id(1_001), &vectors.next_vector()).unwrap();
    assert!(index.graph_nodes() > 0);
    let in_one = index.search(&key(1), &shared, 200);
    assert_eq!(in_one.len(), 200);
    assert!(in_one.iter().all(|n| n.id != id(1_000) && n.id != id(1_001)));
    let in_two = index.search(&key(2), &shared, 10);
    assert_eq!(in_two.iter().map(|n| n.id).collect::<Vec<_>>()[0], id(1_000));
    assert_eq!(in_two.len(), 2);
    assert!(index.search(&key(3), &shared, 10).is_empty());
}

#[test]
fn removals_replacements_and_rebuilds_keep_results_exact_enough() {
    let dimensions = 64;
    let index = SemanticIndex::new(IndexOptions {
        graph_threshold: 256,
        max_unindexed: 64,
        ..IndexOptions::new(dimensions, 10_000)
    });
    let mut vectors = ClusteredVectors::new(5, dimensions, 8, 8);
    let mut entries: Vec<(usize, Vec<f32>)> = (0..2_000).map(|n| (n, vectors.next_vector())).collect();
    for (n, vector) in &entries {
        index.insert(key(1), id(*n), vector).unwrap();
    }
    let memory_full = index.memory_bytes();
    // Remove 60% (well past the tombstone fraction: the graph is rebuilt) and move 100
    // entries to new vectors.
    for n in 0..1_200 {
        assert!(index.remove(&id(n)));
    }
    entries.retain(|(n, _)| *n >= 1_200);
    for (n, vector) in entries.iter_mut().take(100) {
        *vector = vectors.next_vector();
        index.insert(key(1), id(*n), vector).unwrap();
    }
    assert_eq!(index.len(), 800);
    assert!(index.graph_nodes() < 1_200, "rebuilt without the removed entries: {}", index.graph_nodes());
    assert!(index.memory_bytes() < memory_full, "{} >= {memory_full}", index.memory_bytes());
    let queries: Vec<Vec<f32>> = (0..200).map(|_| vectors.next_vector()).collect();
    let recall = recall_at_1(&index, &key(1), &entries, &queries);
    assert!(recall >= 0.95, "recall@1 {recall}");
    for query in &queries {
        for found in index.search(&key(1), query, 20) {
            let n = u64::from_le_bytes(found.id[..8].try_into().unwrap()) as usize;
            assert!(n >= 1_200, "removed entry {n} returned");
            let stored = &entries.iter().find(|(m, _)| *m == n).unwrap().1;
            assert!((found.similarity - dot(query, stored)).abs() < 1e-5, "stale vector for {n}");
        }
    }
    // Removing everything drops the partition.
    for (n, _) in &entries {
        assert!(index.remove(&id(*n)));
    }
    assert!(index.is_empty());
    assert_eq!(index.partitions(), 0);
    assert!(index.search(&key(1), &queries[0], 5).is_empty());
}

#[test]
fn the_index_refuses_new_entries_beyond_max_entries_and_bad_vectors() {
    let index = SemanticIndex::new(IndexOptions::new(3, 2));
    index.insert(key(1), id(1), &[1.0, 0.0, 0.0]).unwrap();
    index.insert(key(2), id(2), &[0.0, 1.0, 0.0]).unwrap();
    assert_eq!(index.insert(key(1), id(3), &[0.0, 0.0, 1.0]), Err(IndexError::Full { max_entries: 2 }));
    // Replacing a held entry is not growth.
    index.insert(key(1), id(2), &[0.0, 0.0, 1.0]).unwrap();
    assert_eq!(index.len(), 2);
    assert!(index.remove(&id(1)));
    index.insert(key(1), id(3), &[0.0, 0.0, 1.0]).unwrap();

    assert_eq!(
        index.insert(key(1), id(4), &[1.0, 0.0]),
        Err(IndexError::WrongDimension { expected: 3, got: 2 })
    );
    assert_eq!(
        index.insert(key(1), id(4), &[1.0, f32::NAN, 0.0]),
        Err(IndexError::NonFinite { position: 1 })
    );
    assert_eq!(
        index.insert(key(1), id(4), &[0.0, 0.0, f32::NEG_INFINITY]),
        Err(IndexError::NonFinite { position: 2 })
    );
    assert_eq!(index.insert(key(1), id(4), &[0.0, 0.0, 0.0]), Err(IndexError::ZeroVector));
    assert_eq!(
        IndexError::WrongDimension { expected: 3, got: 2 }.to_string(),
        "the vector has 2 dimensions, the index 3"
    );
    assert_eq!(index.len(), 2);
    assert!(index.search(&key(1), &[f32::NAN, 0.0, 0.0], 3).is_empty());
    assert!(index.search(&key(1), &[], 3).is_empty());
}

#[test]
fn concurrent_inserts_removals_and_searches_stay_consistent() {
    let dimensions = 32;
    let index = Arc::new(SemanticIndex::new(IndexOptions {
        graph_threshold: 128,
        max_unindexed: 32,
        ..IndexOptions::new(dimensions, 100_000)
    }));
    let threads: Vec<_> = (0..4u8)
        .map(|thread| {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                let mut vectors = ClusteredVectors::new(u64::from(thread), dimensions, 4, 4);
                for n in 0..1_500 {
                    let entry = usize::from(thread) * 10_000 + n;
                    // Two partitions shared by all threads, one per thread.
                    let partition = key(if n % 3 == 0 { 100 + thread } else { (n % 2) as u8 });
                    let vector = vectors.next_vector();
                    index.insert(partition, id(entry), &vector).unwrap();
                    let found = index.search(&partition, &vector, 5);
                    assert!(!found.is_empty());
                    if n % 4 == 0 {
                        assert!(index.remove(&id(entry)));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // 1,500 per thread, a quarter removed (n = 0, 4, ...: 375).
    assert_eq!(index.len(), 4 * (1_500 - 375));
    assert!(index.graph_nodes() > 0);
    // Every remaining entry is still found by its own vector.
    let mut vectors = ClusteredVectors::new(0, dimensions, 4, 4);
    for n in 0..1_500usize {
        let vector = vectors.next_vector();
        let partition = key(if n % 3 == 0 { 100 } else { (n % 2) as u8 });
        let found = index.search(&partition, &vector, 1);
        if n % 4 == 0 {
            assert!(found.first().is_none_or(|f| f.id != id(n)));
        } else {
            assert_eq!(found.first().map(|f| f.id), Some(id(n)), "entry {n}");
        }
    }
}
