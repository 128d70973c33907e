//! The `o200k_base` and `cl100k_base` encoders: loaded once per process, on first use, and
//! shared by every caller.
//!
//! The tables come from build.rs: `bpe`'s byte-pair encoding with only what counting (the
//! backtracking encoder) reads. They are embedded in the executable; once deserialized, the
//! embedded copy's pages are handed back to the kernel so that they stop counting in the
//! process's resident memory (docs/tokens.md, "Memory").

use std::sync::LazyLock;

use bpe::byte_pair_encoding::BytePairEncoding;
use bpe_openai::Tokenizer;

static O200K_BASE_TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.counting.bpe"));
static CL100K_BASE_TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.counting.bpe"));

// tiktoken's pre-tokenization patterns as `bpe-openai` 0.3.2 writes them for its automaton:
// the negative look-ahead `\s+(?!\S)` becomes the look-ahead pattern `\s+\s`, whose last
// character the splitter gives back.
const CL100K_BASE_PATTERN: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+$";
const O200K_BASE_PATTERN: &str = concat!(
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|\\p{N}{1,3}",
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*",
    "|\\s*[\\r\\n]+",
    "|\\s+$",
);
const LOOKAHEAD_PATTERN: &str = "\\s+\\s";
const WHITESPACE_PATTERN: &str = "\\s+";

static O200K_BASE: LazyLock<Counter> = LazyLock::new(|| Counter::load(O200K_BASE_TABLE, O200K_BASE_PATTERN));
static CL100K_BASE: LazyLock<Counter> =
    LazyLock::new(|| Counter::load(CL100K_BASE_TABLE, CL100K_BASE_PATTERN));

/// The shared `o200k_base` counter.
pub(crate) fn o200k_base() -> &'static Counter {
    &O200K_BASE
}

/// The shared `cl100k_base` counter.
pub(crate) fn cl100k_base() -> &'static Counter {
    &CL100K_BASE
}

/// A tiktoken-exact counter. Private so that nothing calls what needs the tables build.rs
/// left out (decoding, and every encoder but the backtracking one).
pub(crate) struct Counter(Tokenizer);

impl Counter {
    /// Tokens in `text`, as tiktoken's `encode_ordinary` produces them.
    pub(crate) fn count(&self, text: &str) -> usize {
        self.0.count(text)
    }

    /// The token ids of `text`, as tiktoken's `encode_ordinary` produces them.
    #[cfg(test)]
    pub(crate) fn encode(&self, text: &str) -> Vec<u32> {
        self.0.encode(text)
    }

    fn load(table: &'static [u8], pattern: &str) -> Counter {
        // Both cannot fail: build.rs wrote the table with the pinned `bpe`, and the patterns
        // are constants (the unit tests load both).
        // Borrowed, not streamed: a reader would buffer each automaton before daachorse
        // copies it, and an allocator such as mimalloc keeps such scratch memory resident.
        let bpe: BytePairEncoding = rmp_serde::from_slice(table).expect("build.rs wrote a valid table");
        release_pages(table);
        let patterns = [(pattern, false), (LOOKAHEAD_PATTERN, true), (WHITESPACE_PATTERN, false)];
        Counter(Tokenizer::new_lookahead(bpe, &patterns, false).expect("valid pre-tokenization patterns"))
    }
}

/// Drops this process's resident copies of the whole pages of a loaded `table`; returns how
/// many bytes that released.
#[cfg(target_os = "linux")]
fn release_pages(table: &'static [u8]) -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let Ok(page) = usize::try_from(page) else { return 0 };
    if page == 0 {
        return 0;
    }
    let base = table.as_ptr() as usize;
    let start = base.next_multiple_of(page);
    let end = (base + table.len()) / page * page;
    if end <= start {
        return 0;
    }
    // SAFETY: [start, end) lies inside `table`, which is read once, by its LazyLock's load,
    // before this call. The tables are in the executable's read-only segment, a private file
    // mapping: MADV_DONTNEED only unmaps the resident pages, and a later read would fault
    // the same bytes in from the file again.
    let status = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    if status == 0 { end - start } else { 0 }
}

#[cfg(not(target_os = "linux"))]
fn release_pages(_table: &'static [u8]) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts that exercise every pre-tokenization branch, contractions, digits, CJK,
    /// whitespace runs, long words and this crate's own source.
    fn samples() -> Vec<String> {
        let mut samples: Vec<String> = [
            "",
            "tiktoken is great!",
            "Hello,   world!\n\n\tI'm here; they'LL see 1234567 dogs' toys.",
            "お誕生日おめでとう 🎉 Привет мир ١٢٣ café naïve",
            "<|endoftext|> fn main() { println!(\"{}\", 0x1F); }   \r\n  trailing   ",
            "HTTPServerError camelCaseWord URLs/path/to/file.rs?x=1&y=2",
        ]
        .map(String::from)
        .to_vec();
        samples.push("a".repeat(5000));
        samples.push("Supercalifragilisticexpialidocious".repeat(100));
        samples.push(include_str!("chat.rs").to_owned());
        samples.push(include_str!("../../../docs/tokens.md").to_owned());
        samples
    }

    #[test]
    fn o200k_ids_equal_tiktoken_rs() {
        let reference = tiktoken_rs::o200k_base().unwrap();
        for text in samples() {
            assert_eq!(o200k_base().encode(&text), reference.encode_ordinary(&text), "{text:?}");
            assert_eq!(o200k_base().count(&text), reference.encode_ordinary(&text).len());
        }
    }

    #[test]
    fn cl100k_ids_equal_tiktoken_rs() {
        let reference = tiktoken_rs::cl100k_base().unwrap();
        for text in samples() {
            assert_eq!(cl100k_base().encode(&text), reference.encode_ordinary(&text), "{text:?}");
            assert_eq!(cl100k_base().count(&text), reference.encode_ordinary(&text).len());
        }
    }

    #[test]
    fn tables_are_counting_only() {
        // The two unused automata and the hash map are gone: about half of bpe-openai's
        // 31 MB (o200k) and 14 MB (cl100k) serialized encoders.
        assert!(O200K_BASE_TABLE.len() < 16 << 20, "{}", O200K_BASE_TABLE.len());
        assert!(CL100K_BASE_TABLE.len() < 8 << 20, "{}", CL100K_BASE_TABLE.len());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn released_pages_read_back_unchanged() {
        let copy = CL100K_BASE_TABLE.to_vec();
        let released = release_pages(CL100K_BASE_TABLE);
        assert!(released > CL100K_BASE_TABLE.len() - (1 << 20), "released {released} bytes");
        assert!(CL100K_BASE_TABLE == copy.as_slice());
    }
}
