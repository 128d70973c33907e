//! Builds the counting-only byte-pair encoders for `o200k_base` and `cl100k_base`.
//!
//! `bpe`'s `BytePairEncoding` carries three Aho-Corasick automata over all tokens; counting
//! (the backtracking encoder) reads one of them. `bpe-openai` ships all three (31 MB of heap
//! for o200k), so this script builds the encoding from OpenAI's rank files (data/, the files
//! tiktoken downloads) and serializes it in `bpe`'s own format with what counting and
//! encoding never read left empty: the two other automata, the token bytes (decoding) and
//! the bytes-to-token hash map (construction and the heap-based encoder).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use aneubeck_daachorse::DoubleArrayAhoCorasick;
use bpe::byte_pair_encoding::{BytePairEncoding, read_tiktoken};
use serde::de::{IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The hash factor `bpe-openai` uses: collision-free for both token sets.
const HASH_FACTOR: u64 = 17_846_336_922_010_275_747;

fn main() {
    for name in ["o200k_base", "cl100k_base"] {
        build(name);
    }
    println!("cargo::rerun-if-changed=build.rs");
}

fn build(name: &str) {
    let source = format!("data/{name}.tiktoken.gz");
    println!("cargo::rerun-if-changed={source}");
    let mut ranks = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&source).expect("rank file"))
        .read_to_string(&mut ranks)
        .expect("gzip rank file");
    let tokens = read_tiktoken(&ranks).expect("base64 tokens");
    let full = BytePairEncoding::from_dictionary(tokens, Some(HASH_FACTOR));

    let serialized = rmp_serde::to_vec(&full).expect("serialize bpe");
    let full: Full = rmp_serde::from_slice(&serialized).expect("bpe's serialized layout");
    let unused = Bytes(DoubleArrayAhoCorasick::<u32>::new([[0u8]]).expect("one-byte automaton").serialize());
    let counting = Counting {
        all_tokens: Vec::new(),
        token_starts: full.token_starts,
        bytes_hash_to_token: BTreeMap::new(),
        split_table: full.split_table,
        pair_lookup: full.pair_lookup,
        longest_searcher: full.longest_searcher,
        overlapping_searcher: &unused,
        overlapping_searcher_rev: &unused,
        next_prefix_match: full.next_prefix_match,
        hash_factor: full.hash_factor,
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join(format!("{name}.counting.bpe"));
    std::fs::write(out, rmp_serde::to_vec(&counting).expect("serialize counting bpe"))
        .expect("write counting bpe");
}

/// `BytePairEncoding`'s fields, in its serialized order (msgpack array).
#[derive(Deserialize)]
struct Full {
    _all_tokens: IgnoredAny,
    token_starts: Vec<u32>,
    _bytes_hash_to_token: IgnoredAny,
    split_table: Vec<(u32, u32)>,
    pair_lookup: BTreeMap<(u32, u32), u32>,
    longest_searcher: Bytes,
    _overlapping_searcher: IgnoredAny,
    _overlapping_searcher_rev: IgnoredAny,
    next_prefix_match: Vec<u32>,
    hash_factor: u64,
}

/// The same layout, with what counting never reads left empty.
#[derive(Serialize)]
struct Counting<'a> {
    all_tokens: Vec<u8>,
    token_starts: Vec<u32>,
    bytes_hash_to_token: BTreeMap<u32, u32>,
    split_table: Vec<(u32, u32)>,
    pair_lookup: BTreeMap<(u32, u32), u32>,
    longest_searcher: Bytes,
    overlapping_searcher: &'a Bytes,
    overlapping_searcher_rev: &'a Bytes,
    next_prefix_match: Vec<u32>,
    hash_factor: u64,
}

/// A serialized automaton: msgpack binary.
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = Bytes;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("bytes")
            }
            fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(bytes.to_vec()))
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}
