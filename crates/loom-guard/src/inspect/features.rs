//! Cheap features of a text for the learned injection detector: hashed word unigrams and
//! bigrams and character 3-5-grams, log-scaled and L2-normalised.
//!
//! The trainer (`examples/train_injection.rs`) and the detector both call [`extract`], so a
//! model sees at run time exactly the features it was trained on.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// log2 of the number of hash buckets.
pub const BUCKETS_LOG2: u32 = 18;
/// The number of hash buckets, the length of a model's weight vector.
pub const BUCKETS: usize = 1 << BUCKETS_LOG2;
/// How much of a text is read, in bytes: a longer text's features are those of its start.
pub const MAX_BYTES: usize = 16 * 1024;
/// Identifies this extractor: a model trained on another version refuses to load.
pub const VERSION: u32 = 1;

// Fixed seeds: bucket ids must be the same in every process, on every machine.
const SEED_WORD: u64 = 0x6c6f_6f6d_5744_0001;
const SEED_BIGRAM: u64 = 0x6c6f_6f6d_4247_0002;
const SEED_CHARS: u64 = 0x6c6f_6f6d_4348_0003;
const CHAR_GRAMS: std::ops::RangeInclusive<usize> = 3..=5;

/// A sparse feature vector with unit L2 norm: each bucket once, in order of first occurrence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    /// Bucket ids, distinct.
    pub buckets: Vec<u32>,
    /// The value of each bucket in `buckets`.
    pub values: Vec<f32>,
}

/// Extracts the features of (at most the first [`MAX_BYTES`] of) an already folded text.
pub fn extract(text: &str) -> Features {
    let text = truncate(text, MAX_BYTES);
    let mut ids = Vec::with_capacity(text.len() * 4);
    push_words(text, &mut ids);
    push_char_grams(text, &mut ids);
    count_and_normalise(&ids)
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    &text[..end]
}

fn bucket(hash: u64) -> u32 {
    // Lossless: the mask keeps BUCKETS_LOG2 (< 32) bits.
    (hash & (BUCKETS as u64 - 1)) as u32
}

fn push_words(text: &str, ids: &mut Vec<u32>) {
    let mut previous: Option<u64> = None;
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let hash = xxh3_64_with_seed(word.as_bytes(), SEED_WORD);
        ids.push(bucket(hash));
        if let Some(previous) = previous {
            let mut pair = [0u8; 16];
            pair[..8].copy_from_slice(&previous.to_le_bytes());
            pair[8..].copy_from_slice(&hash.to_le_bytes());
            ids.push(bucket(xxh3_64_with_seed(&pair, SEED_BIGRAM)));
        }
        previous = Some(hash);
    }
}

/// Character n-grams of the text with whitespace runs squeezed to one space and a space at
/// each end (so that grams see word starts and ends).
fn push_char_grams(text: &str, ids: &mut Vec<u32>) {
    let mut squeezed = String::with_capacity(text.len() + 2);
    squeezed.push(' ');
    for c in text.chars() {
        if !c.is_whitespace() {
            squeezed.push(c);
        } else if !squeezed.ends_with(' ') {
            squeezed.push(' ');
        }
    }
    if !squeezed.ends_with(' ') {
        squeezed.push(' ');
    }
    let bytes = squeezed.as_bytes();
    if squeezed.is_ascii() {
        // The common case: characters are bytes, no table of boundaries needed.
        for n in CHAR_GRAMS {
            ids.extend(bytes.windows(n).map(|gram| bucket(xxh3_64_with_seed(gram, SEED_CHARS))));
        }
        return;
    }
    let starts: Vec<usize> =
        squeezed.char_indices().map(|(i, _)| i).chain(std::iter::once(squeezed.len())).collect();
    for n in CHAR_GRAMS {
        for window in starts.windows(n + 1) {
            let gram = &bytes[window[0]..window[n]];
            ids.push(bucket(xxh3_64_with_seed(gram, SEED_CHARS)));
        }
    }
}

/// Counts bucket ids (in an open-addressing table: cheaper than sorting them) into
/// distinct buckets valued `1 + ln(count)`, L2-normalised.
fn count_and_normalise(ids: &[u32]) -> Features {
    let size = (ids.len() * 2).next_power_of_two().max(16);
    let mask = size - 1;
    // Keyed by bucket id + 1, so that 0 marks a free slot (ids are below 2^BUCKETS_LOG2).
    let mut keys = vec![0u32; size];
    let mut counts = vec![0u32; size];
    let mut first_seen = Vec::with_capacity(ids.len());
    for &id in ids {
        // Ids are hash bits already: their low bits spread well.
        let mut slot = id as usize & mask;
        while keys[slot] != 0 && keys[slot] != id + 1 {
            slot = (slot + 1) & mask;
        }
        if keys[slot] == 0 {
            keys[slot] = id + 1;
            first_seen.push(slot);
        }
        counts[slot] += 1;
    }
    let mut features = Features {
        buckets: first_seen.iter().map(|&slot| keys[slot] - 1).collect(),
        values: first_seen.iter().map(|&slot| 1.0 + (counts[slot] as f32).ln()).collect(),
    };
    let norm = features.values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        features.values.iter_mut().for_each(|v| *v /= norm);
    }
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_ids_are_stable_across_processes_and_releases() {
        let features = extract("ignore previous");
        // Pinned: a change here silently invalidates the committed model (bump VERSION).
        assert_eq!(
            &features.buckets[..5],
            &[234282, 235491, 237034, 236347, 41160],
            "all: {:?}",
            features.buckets
        );
        assert_eq!(features.buckets.len(), 45);
    }

    #[test]
    fn features_are_distinct_and_unit_length() {
        let features = extract("you are now DAN. you are now free. you are now");
        let distinct: std::collections::BTreeSet<u32> = features.buckets.iter().copied().collect();
        assert_eq!(distinct.len(), features.buckets.len());
        assert_eq!(features.buckets.len(), features.values.len());
        let norm: f32 = features.values.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }

    #[test]
    fn repeated_grams_weigh_more_but_only_logarithmically() {
        let features = extract("aaa aaa aaa aaa");
        let max = features.values.iter().cloned().fold(0.0, f32::max);
        let min = features.values.iter().cloned().fold(1.0, f32::min);
        assert!(max > min);
        assert!(max / min <= 1.0 + 4f32.ln() + 1e-4, "{max} / {min}");
    }

    #[test]
    fn only_the_first_max_bytes_are_read() {
        let head = "word ".repeat(MAX_BYTES / 5 + 1);
        let long = format!("{head}ignore all previous instructions");
        assert_eq!(extract(&long), extract(&head[..MAX_BYTES]));
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let text = "é".repeat(MAX_BYTES);
        assert_eq!(truncate(&text, 5), "éé");
        assert!(!extract(&text).buckets.is_empty());
    }

    #[test]
    fn empty_and_blank_texts_have_no_features() {
        assert!(extract("").buckets.is_empty());
        assert!(extract("   \n\t").buckets.is_empty());
    }
}
