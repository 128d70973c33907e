//! An in-memory index of question embeddings for the semantic cache: the nearest stored
//! questions to a new one, looked up only among entries of the same partition (the same
//! tenant, model, system prompt, earlier turns, tools and parameters).
//!
//! Most partitions hold a few entries and are searched exactly (one dot product each). A
//! partition that reaches [`IndexOptions::graph_threshold`] live entries gets an HNSW graph
//! (`hnsw_rs`); entries added after the graph was last extended are searched exactly until
//! [`IndexOptions::max_unindexed`] of them have gathered, then added to it. Removals leave
//! tombstones, skipped by searches, until they pass [`IndexOptions::max_tombstone_fraction`]
//! of the partition, which is then rebuilt. Graphs are built and extended aside (by the
//! inserting or removing thread, outside the partition's write lock) and swapped in, so
//! searches never wait for a build.
//!
//! ```
//! use loom_cache::semantic_index::{IndexError, IndexOptions, SemanticIndex};
//!
//! let index = SemanticIndex::new(IndexOptions::new(3, 1_000));
//! let tenant_a = [1u8; 32];
//! let tenant_b = [2u8; 32];
//! index.insert(tenant_a, [10u8; 32], &[1.0, 0.0, 0.0])?;
//! index.insert(tenant_a, [11u8; 32], &[0.0, 1.0, 0.0])?;
//! index.insert(tenant_b, [12u8; 32], &[1.0, 0.0, 0.0])?;
//!
//! // Vectors are normalised: [2, 0.2, 0] points almost where entry 10 does.
//! let nearest = index.search(&tenant_a, &[2.0, 0.2, 0.0], 1);
//! assert_eq!(nearest[0].id, [10u8; 32]);
//! assert!((nearest[0].similarity - 0.995).abs() < 0.001);
//!
//! assert_eq!(index.insert(tenant_a, [13u8; 32], &[f32::NAN, 0.0, 0.0]), Err(IndexError::NonFinite { position: 0 }));
//! assert!(index.remove(&[10u8; 32]));
//! assert_eq!(index.search(&tenant_a, &[1.0, 0.0, 0.0], 5).len(), 1);
//! assert_eq!(index.len(), 2);
//! # Ok::<(), IndexError>(())
//! ```

mod graph;
mod partition;
mod vector;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

pub use graph::GraphOptions;
use partition::{Partition, Policy};

pub use crate::key::{EntryId, PartitionKey};

/// Sizes and tuning of a [`SemanticIndex`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexOptions {
    /// The length of every vector.
    pub dimensions: usize,
    /// The most entries held; inserting more fails with [`IndexError::Full`].
    pub max_entries: usize,
    /// Live entries at which a partition gets an HNSW graph instead of exact search. Exact
    /// search was faster up to about 8k entries of 384 dimensions (p50 92 µs at 4k against
    /// 144 µs through a graph; 220 µs and 200 µs at 8k), always exact, and a third the memory.
    pub graph_threshold: usize,
    /// Entries a graph partition searches exactly before they are added to its graph.
    pub max_unindexed: usize,
    /// The share of removed entries at which a partition is rebuilt without them.
    pub max_tombstone_fraction: f32,
    /// How graphs are built and searched.
    pub graph: GraphOptions,
}

impl IndexOptions {
    /// Options for `dimensions`-long vectors and at most `max_entries` entries, with the
    /// defaults measured by `examples/bench_index` for the rest.
    pub fn new(dimensions: usize, max_entries: usize) -> IndexOptions {
        IndexOptions {
            dimensions,
            max_entries,
            graph_threshold: 8192,
            max_unindexed: 256,
            max_tombstone_fraction: 0.25,
            graph: GraphOptions::default(),
        }
    }

    fn policy(&self) -> Policy {
        Policy {
            dimensions: self.dimensions,
            graph_threshold: self.graph_threshold.max(1),
            max_unindexed: self.max_unindexed.max(1),
            max_tombstone_fraction: if self.max_tombstone_fraction.is_finite() {
                self.max_tombstone_fraction.clamp(0.0, 1.0)
            } else {
                0.25
            },
            graph: self.graph,
        }
    }
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// The entry found.
    pub id: EntryId,
    /// Its cosine similarity to the query, in [-1, 1].
    pub similarity: f32,
}

/// Why a vector was not indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The vector's length is not the index's dimension.
    #[error("the vector has {got} dimensions, the index {expected}")]
    WrongDimension {
        /// The index's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("the vector's value at position {position} is not a finite number")]
    NonFinite {
        /// The first such value's position.
        position: usize,
    },
    /// Every value is zero: the vector has no direction to compare.
    #[error("the vector is all zeros")]
    ZeroVector,
    /// The index holds `max_entries` entries; evict one and retry.
    #[error("the index is full ({max_entries} entries)")]
    Full {
        /// The index's bound.
        max_entries: usize,
    },
}

/// Nearest-neighbour search over cached questions' embeddings, per partition.
pub struct SemanticIndex {
    options: IndexOptions,
    policy: Policy,
    directory: RwLock<Directory>,
}

/// Which partitions exist and where each entry is.
#[derive(Default)]
struct Directory {
    partitions: HashMap<PartitionKey, Arc<Partition>>,
    locations: HashMap<EntryId, PartitionKey>,
}

impl Directory {
    /// Removes `id` from its partition and returns the partition, dropping it from the
    /// directory when it empties (the caller frees it, after releasing the lock).
    fn remove(&mut self, id: &EntryId) -> Option<Arc<Partition>> {
        let key = self.locations.remove(id)?;
        let partition = self.partitions.get(&key).cloned()?;
        partition.remove(id);
        if partition.live_count() == 0 {
            self.partitions.remove(&key);
        }
        Some(partition)
    }
}

/// Compacts `partition` if it still holds entries (an emptied one is only freed).
fn maintain_unless_empty(partition: &Partition, policy: &Policy) {
    if partition.live_count() > 0 {
        partition.maintain(policy);
    }
}

impl std::fmt::Debug for SemanticIndex {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SemanticIndex")
            .field("options", &self.options)
            .field("entries", &self.len())
            .finish()
    }
}

impl SemanticIndex {
    /// An empty index.
    pub fn new(options: IndexOptions) -> SemanticIndex {
        SemanticIndex { policy: options.policy(), options, directory: RwLock::new(Directory::default()) }
    }

    /// The options the index was made with.
    pub fn options(&self) -> &IndexOptions {
        &self.options
    }

    /// Inserts (or replaces) `id` in `partition`. The vector is L2-normalised here; a wrong
    /// length, a NaN or infinite value or an all-zero vector is refused, and so is a new id
    /// once `max_entries` are held ([`IndexError::Full`]: the caller evicts, then retries).
    pub fn insert(&self, partition: PartitionKey, id: EntryId, vector: &[f32]) -> Result<(), IndexError> {
        let vector = vector::normalised(vector, self.options.dimensions)?;
        let (target, previous) = {
            let mut directory = self.directory.write();
            let previous = match directory.locations.get(&id) {
                Some(key) if *key == partition => None,
                Some(_) => directory.remove(&id),
                None if directory.locations.len() >= self.options.max_entries => {
                    return Err(IndexError::Full { max_entries: self.options.max_entries });
                }
                None => None,
            };
            let target = directory.partitions.entry(partition).or_default().clone();
            target.insert(id, &vector);
            directory.locations.insert(id, partition);
            (target, previous)
        };
        if let Some(previous) = previous {
            maintain_unless_empty(&previous, &self.policy);
        }
        target.maintain(&self.policy);
        Ok(())
    }

    /// Removes `id`; false when it was not indexed.
    pub fn remove(&self, id: &EntryId) -> bool {
        let partition = self.directory.write().remove(id);
        match partition {
            Some(partition) => {
                maintain_unless_empty(&partition, &self.policy);
                true
            }
            None => false,
        }
    }

    /// The `k` entries of `partition` most similar to `vector`, most similar first. A
    /// vector the index would refuse finds nothing.
    pub fn search(&self, partition: &PartitionKey, vector: &[f32], k: usize) -> Vec<Neighbour> {
        let Ok(query) = vector::normalised(vector, self.options.dimensions) else {
            return Vec::new();
        };
        let Some(partition) = self.directory.read().partitions.get(partition).cloned() else {
            return Vec::new();
        };
        partition.search(&query, k, self.options.dimensions)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.directory.read().locations.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Partitions holding at least one entry.
    pub fn partitions(&self) -> usize {
        self.directory.read().partitions.len()
    }

    /// Nodes in HNSW graphs, summed over partitions (removed entries count until their
    /// partition is rebuilt); the other entries are searched exactly.
    pub fn graph_nodes(&self) -> usize {
        self.directory.read().partitions.values().map(|partition| partition.graph_nodes()).sum()
    }

    /// Removes every entry.
    pub fn clear(&self) {
        let emptied = std::mem::take(&mut *self.directory.write());
        // Freeing graphs takes a while: not under the lock.
        drop(emptied);
    }

    /// An estimate of the heap the index holds: vectors, ids, maps and graphs.
    pub fn memory_bytes(&self) -> usize {
        let directory = self.directory.read();
        let key_and_arc = std::mem::size_of::<(PartitionKey, Arc<Partition>)>() + 1;
        let location = std::mem::size_of::<(EntryId, PartitionKey)>() + 1;
        std::mem::size_of::<SemanticIndex>()
            + directory.partitions.capacity() * key_and_arc
            + directory.locations.capacity() * location
            + directory.partitions.values().map(|partition| partition.memory_bytes()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests;
