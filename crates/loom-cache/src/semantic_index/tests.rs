use super::*;

/// A unit vector along axis `axis` with a little of axis `axis + 1`, so ranks are strict.
fn near_axis(dimensions: usize, axis: usize, lean: f32) -> Vec<f32> {
    let mut vector = vec![0.0; dimensions];
    vector[axis % dimensions] = 1.0;
    vector[(axis + 1) % dimensions] = lean;
    vector
}

fn id(n: usize) -> EntryId {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(n as u64).to_le_bytes());
    id
}

fn small_graph_options(dimensions: usize, max_entries: usize) -> IndexOptions {
    IndexOptions { graph_threshold: 32, max_unindexed: 8, ..IndexOptions::new(dimensions, max_entries) }
}

#[test]
fn results_are_ranked_by_similarity_and_cut_at_k() {
    let index = SemanticIndex::new(IndexOptions::new(4, 10));
    let key = [0u8; 32];
    index.insert(key, id(1), &[1.0, 0.0, 0.0, 0.0]).unwrap();
    index.insert(key, id(2), &[1.0, 1.0, 0.0, 0.0]).unwrap();
    index.insert(key, id(3), &[0.0, 0.0, 1.0, 0.0]).unwrap();
    let found = index.search(&key, &[1.0, 0.1, 0.0, 0.0], 2);
    assert_eq!(found.iter().map(|n| n.id).collect::<Vec<_>>(), vec![id(1), id(2)]);
    assert!(found[0].similarity > found[1].similarity);
    assert!(index.search(&key, &[1.0, 0.0, 0.0, 0.0], 0).is_empty());
    assert!(index.search(&key, &[1.0, 0.0], 3).is_empty(), "a wrong-length query finds nothing");
    assert!(index.search(&[9u8; 32], &[1.0, 0.0, 0.0, 0.0], 3).is_empty());
}

#[test]
fn replacing_an_id_moves_it_and_keeps_one_entry() {
    let index = SemanticIndex::new(IndexOptions::new(4, 10));
    let (a, b) = ([1u8; 32], [2u8; 32]);
    index.insert(a, id(1), &[1.0, 0.0, 0.0, 0.0]).unwrap();
    index.insert(a, id(1), &[0.0, 1.0, 0.0, 0.0]).unwrap();
    assert_eq!(index.len(), 1);
    let found = index.search(&a, &[0.0, 1.0, 0.0, 0.0], 5);
    assert_eq!(found.len(), 1);
    assert!((found[0].similarity - 1.0).abs() < 1e-6);
    index.insert(b, id(1), &[0.0, 1.0, 0.0, 0.0]).unwrap();
    assert_eq!(index.len(), 1);
    assert_eq!(index.partitions(), 1, "the emptied partition is dropped");
    assert!(index.search(&a, &[0.0, 1.0, 0.0, 0.0], 5).is_empty());
    assert_eq!(index.search(&b, &[0.0, 1.0, 0.0, 0.0], 5)[0].id, id(1));
}

#[test]
fn graph_partitions_answer_like_exact_search_through_removals() {
    let dimensions = 64;
    let index = SemanticIndex::new(small_graph_options(dimensions, 1_000));
    let key = [7u8; 32];
    for n in 0..200 {
        index
            .insert(key, id(n), &near_axis(dimensions, n % dimensions, 0.01 * (n / dimensions) as f32))
            .unwrap();
    }
    // Remove most of them: tombstones pass the fraction and the partition is rebuilt.
    for n in 0..150 {
        assert!(index.remove(&id(n)));
    }
    assert!(!index.remove(&id(0)));
    assert_eq!(index.len(), 50);
    for n in 150..200 {
        let query = near_axis(dimensions, n % dimensions, 0.01 * (n / dimensions) as f32);
        let found = index.search(&key, &query, 1);
        assert_eq!(found.first().map(|n| n.id), Some(id(n)), "entry {n}");
    }
    for n in 0..150 {
        let query = near_axis(dimensions, n % dimensions, 0.01 * (n / dimensions) as f32);
        assert!(index.search(&key, &query, 60).iter().all(|found| found.id != id(n)), "removed {n} found");
    }
    assert!(index.memory_bytes() > 50 * dimensions * 4);
}

#[test]
fn clear_empties_the_index() {
    let index = SemanticIndex::new(IndexOptions::new(2, 10));
    index.insert([0; 32], id(1), &[1.0, 0.0]).unwrap();
    index.clear();
    assert!(index.is_empty());
    assert!(index.search(&[0; 32], &[1.0, 0.0], 1).is_empty());
}
