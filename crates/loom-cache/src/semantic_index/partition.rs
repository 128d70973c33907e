//! One partition's entries: searched exactly while small, through an HNSW graph when large,
//! with removals as tombstones and graph maintenance done aside, then swapped in.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

use super::graph::{Graph, GraphOptions};
use super::vector::dot;
use super::{EntryId, Neighbour};

/// When a partition gets a graph and when it is maintained.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) dimensions: usize,
    pub(crate) graph_threshold: usize,
    pub(crate) max_unindexed: usize,
    pub(crate) max_tombstone_fraction: f32,
    pub(crate) graph: GraphOptions,
}

/// A partition, shared by the index and any thread maintaining it.
#[derive(Default)]
pub(crate) struct Partition {
    layout: RwLock<Layout>,
    /// Set while one thread builds aside, so no two builds of one partition overlap.
    maintaining: AtomicBool,
}

/// Where each entry lives. Slot `s` holds `ids[s]` and `vectors[s * dimensions..]`; slots
/// below `covered` are in `graph`, the rest (the tail) are searched exactly.
#[derive(Default)]
struct Layout {
    ids: Vec<EntryId>,
    vectors: Vec<f32>,
    live: Vec<bool>,
    slot_of: HashMap<EntryId, usize>,
    graph: Option<Arc<Graph>>,
    covered: usize,
    /// Changes whenever slots are renumbered, so work built on old numbers is dropped.
    generation: u64,
}

/// Work to do aside, from a snapshot taken under the read lock.
enum Work {
    /// Renumber the live entries and build a new graph over them (too many tombstones).
    Compact { generation: u64, entries: Vec<(usize, EntryId, Vec<f32>)>, end: usize },
    /// Add the tail `(slot, vector)`s to the graph (a new one when there is none).
    Extend { generation: u64, graph: Option<Arc<Graph>>, tail: Vec<(usize, Vec<f32>)>, end: usize },
}

/// Clears `maintaining` however the build ends.
struct MaintenanceGuard<'a>(&'a AtomicBool);

impl Drop for MaintenanceGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Partition {
    /// Adds `id` with a unit `vector`, replacing an entry with the same id.
    pub(crate) fn insert(&self, id: EntryId, vector: &[f32]) {
        let mut layout = self.layout.write();
        if let Some(old) = layout.slot_of.remove(&id) {
            layout.live[old] = false;
        }
        let slot = layout.ids.len();
        layout.ids.push(id);
        layout.vectors.extend_from_slice(vector);
        layout.live.push(true);
        layout.slot_of.insert(id, slot);
    }

    /// Removes `id`; false when it is not here.
    pub(crate) fn remove(&self, id: &EntryId) -> bool {
        let mut layout = self.layout.write();
        match layout.slot_of.remove(id) {
            Some(slot) => {
                layout.live[slot] = false;
                true
            }
            None => false,
        }
    }

    /// Nodes in the partition's graph (removed entries included until a rebuild).
    pub(crate) fn graph_nodes(&self) -> usize {
        self.layout.read().graph.as_ref().map_or(0, |graph| graph.nodes())
    }

    /// Entries not removed.
    pub(crate) fn live_count(&self) -> usize {
        self.layout.read().slot_of.len()
    }

    /// The `k` entries most similar to the unit vector `query`, most similar first.
    pub(crate) fn search(&self, query: &[f32], k: usize, dimensions: usize) -> Vec<Neighbour> {
        if k == 0 || dimensions == 0 {
            return Vec::new();
        }
        let layout = self.layout.read();
        let similarity = |slot: usize| -> Option<f32> {
            let vector = layout.vectors.get(slot * dimensions..(slot + 1) * dimensions)?;
            Some(dot(query, vector).clamp(-1.0, 1.0))
        };
        let mut found: Vec<(usize, f32)> = Vec::new();
        if let Some(graph) = &layout.graph {
            let covered = layout.covered;
            let live = &layout.live;
            let keep = |slot: usize| slot < covered && live.get(slot).copied().unwrap_or(false);
            for slot in graph.search(query, k, &keep) {
                if let Some(score) = similarity(slot) {
                    found.push((slot, score));
                }
            }
        }
        for slot in layout.covered..layout.ids.len() {
            if layout.live[slot]
                && let Some(score) = similarity(slot)
            {
                found.push((slot, score));
            }
        }
        let by_similarity = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if found.len() > k {
            found.select_nth_unstable_by(k - 1, by_similarity);
            found.truncate(k);
        }
        found.sort_unstable_by(by_similarity);
        found.into_iter().map(|(slot, similarity)| Neighbour { id: layout.ids[slot], similarity }).collect()
    }

    /// Compacts or extends the graph when the policy asks for it, unless another thread is
    /// already doing so. Runs on the caller's thread; holds the write lock only to swap.
    pub(crate) fn maintain(&self, policy: &Policy) {
        if self.maintaining.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return;
        }
        let _guard = MaintenanceGuard(&self.maintaining);
        // Extending may leave enough tail for another round, or tombstones for a compaction.
        for _ in 0..4 {
            let Some(work) = self.plan(policy) else { return };
            self.run(work, policy);
        }
    }

    fn plan(&self, policy: &Policy) -> Option<Work> {
        let layout = self.layout.read();
        let slots = layout.ids.len();
        let live = layout.slot_of.len();
        let tombstones = slots - live;
        let dimensions = policy.dimensions;
        let vector_of = |slot: usize| layout.vectors[slot * dimensions..(slot + 1) * dimensions].to_vec();
        // Small partitions compact cheaply, so any excess of tombstones does; a graph is rebuilt
        // only once a few dozen have gathered.
        let minimum = if layout.graph.is_some() { 64 } else { 0 };
        if tombstones > minimum && tombstones as f32 > slots as f32 * policy.max_tombstone_fraction {
            let entries = (0..slots)
                .filter(|&slot| layout.live[slot])
                .map(|slot| (slot, layout.ids[slot], vector_of(slot)))
                .collect();
            return Some(Work::Compact { generation: layout.generation, entries, end: slots });
        }
        let wants_graph = match layout.graph {
            None => live >= policy.graph_threshold,
            Some(_) => slots - layout.covered >= policy.max_unindexed,
        };
        if !wants_graph {
            return None;
        }
        let tail = (layout.covered..slots)
            .filter(|&slot| layout.live[slot])
            .map(|slot| (slot, vector_of(slot)))
            .collect();
        Some(Work::Extend { generation: layout.generation, graph: layout.graph.clone(), tail, end: slots })
    }

    fn run(&self, work: Work, policy: &Policy) {
        match work {
            Work::Extend { generation, graph, tail, end } => {
                let graph = graph.unwrap_or_else(|| {
                    Arc::new(Graph::new(policy.graph, policy.dimensions, end.max(policy.graph_threshold) * 2))
                });
                let nodes: Vec<(usize, &[f32])> =
                    tail.iter().map(|(slot, vector)| (*slot, vector.as_slice())).collect();
                graph.insert(&nodes);
                let mut layout = self.layout.write();
                if layout.generation == generation {
                    layout.graph = Some(graph);
                    layout.covered = end;
                }
            }
            Work::Compact { generation, entries, end } => {
                let graph = (entries.len() >= policy.graph_threshold).then(|| {
                    let graph = Graph::new(policy.graph, policy.dimensions, entries.len() * 2);
                    let nodes: Vec<(usize, &[f32])> = entries
                        .iter()
                        .enumerate()
                        .map(|(slot, (_, _, vector))| (slot, vector.as_slice()))
                        .collect();
                    graph.insert(&nodes);
                    Arc::new(graph)
                });
                let mut layout = self.layout.write();
                if layout.generation == generation {
                    let renumbered = renumber(&layout, entries, end, graph, policy.dimensions);
                    let old = std::mem::replace(&mut *layout, renumbered);
                    // Freeing a large graph takes a while: not under the lock.
                    drop(layout);
                    drop(old);
                }
            }
        }
    }

    /// An estimate of the heap this partition holds.
    pub(crate) fn memory_bytes(&self) -> usize {
        let layout = self.layout.read();
        let map_slot = std::mem::size_of::<(EntryId, usize)>() + 1;
        std::mem::size_of::<Partition>()
            + layout.ids.capacity() * std::mem::size_of::<EntryId>()
            + layout.vectors.capacity() * std::mem::size_of::<f32>()
            + layout.live.capacity()
            + layout.slot_of.capacity() * map_slot
            + layout.graph.as_ref().map_or(0, |graph| graph.memory_bytes())
    }
}

/// The layout after a compaction: the snapshot's entries at new slots `0..` (those removed
/// meanwhile stay tombstones), then what was added after the snapshot as the tail.
fn renumber(
    old: &Layout,
    entries: Vec<(usize, EntryId, Vec<f32>)>,
    end: usize,
    graph: Option<Arc<Graph>>,
    dimensions: usize,
) -> Layout {
    let later = (end..old.ids.len()).filter(|&slot| old.live[slot]);
    let capacity = entries.len() + later.clone().count();
    let mut layout = Layout {
        ids: Vec::with_capacity(capacity),
        vectors: Vec::with_capacity(capacity * dimensions),
        live: Vec::with_capacity(capacity),
        slot_of: HashMap::with_capacity(capacity),
        covered: if graph.is_some() { entries.len() } else { 0 },
        graph,
        generation: old.generation.wrapping_add(1),
    };
    let push = |layout: &mut Layout, id: EntryId, vector: &[f32], live: bool| {
        let slot = layout.ids.len();
        layout.ids.push(id);
        layout.vectors.extend_from_slice(vector);
        layout.live.push(live);
        if live {
            layout.slot_of.insert(id, slot);
        }
    };
    for (old_slot, id, vector) in entries {
        // Still live, and not replaced by a later insert of the same id.
        let live = old.slot_of.get(&id) == Some(&old_slot);
        push(&mut layout, id, &vector, live);
    }
    for slot in later {
        push(&mut layout, old.ids[slot], &old.vectors[slot * dimensions..(slot + 1) * dimensions], true);
    }
    layout
}
