//! What the guard extracts from one question: the facts two questions must share.

use super::bounded::Bounded;
use super::lexicon::Axis;

/// Texts longer than this (in bytes) are never matched: the embedding has long stopped
/// reading them (all-MiniLM-L6-v2 reads 256 word pieces), so a changed tail would go unseen.
pub(super) const MAX_BYTES: usize = 1536;
/// The most words the guard reads; beyond it, no match either.
pub(super) const MAX_WORDS: usize = 160;

/// No unit: a plain number.
pub(super) const NO_UNIT: u8 = u8::MAX;

/// The role a word plays after a pivot ("than", "from", "to"...): an index into a bit mask.
pub(super) type Role = u8;
pub(super) const ROLE_NONE: Role = 0;

/// One word of the question.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Word {
    /// Hash of the lower-case stem ("ETFs" and "etf" agree), or of a canonical unit or value.
    pub stem: u64,
    pub role: Role,
    /// Not a function word.
    pub content: bool,
    /// A unit of measure: a changed role is a changed conversion.
    pub unit: bool,
    /// An ordinary content word: not a number, unit, date, scale or pivot.
    pub plain: bool,
}

/// A number with its unit ([`NO_UNIT`] for none).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Quantity {
    pub value: f64,
    pub unit: u8,
}

/// A word with a negating prefix ("unsafe"): the stem without it, and the word's own stem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Prefixed {
    pub rest: u64,
    pub whole: u64,
}

/// A comparison word's scale and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Scale {
    pub axis: Axis,
    pub sign: i8,
}

impl Default for Scale {
    fn default() -> Self {
        Scale { axis: Axis::Amount, sign: 0 }
    }
}

/// Everything the guard compares, on the stack.
#[derive(Clone, Debug, Default)]
pub(super) struct Signature {
    pub words: Bounded<Word, MAX_WORDS>,
    pub negations: u16,
    pub prefixed: Bounded<Prefixed, 8>,
    pub quantities: Bounded<Quantity, 16>,
    /// Units named without a number ("how many km").
    pub bare_units: Bounded<u8, 8>,
    /// Date ids (weekdays, months, years, times, "last week") and hashes of written-out dates.
    pub dates: Bounded<u64, 12>,
    /// Hashes of quoted strings, exactly as written.
    pub quotes: Bounded<u64, 8>,
    /// Stems of names, products and code identifiers.
    pub entities: Bounded<u64, 24>,
    pub scales: Bounded<Scale, 12>,
    /// Mostly not English: only the exact words can be compared.
    pub foreign: bool,
    /// Too long to read whole (see [`MAX_BYTES`]).
    pub too_long: bool,
}

impl Signature {
    /// Whether any list filled up: the question was not read whole.
    pub fn overflowed(&self) -> bool {
        self.too_long
            || self.words.overflowed()
            || self.prefixed.overflowed()
            || self.quantities.overflowed()
            || self.bare_units.overflowed()
            || self.dates.overflowed()
            || self.quotes.overflowed()
            || self.entities.overflowed()
            || self.scales.overflowed()
    }
}

/// FNV-1a, 64 bits: short keys, no allocation, the same on every platform.
pub(super) fn hash(bytes: &[u8]) -> u64 {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        state ^= u64::from(*byte);
        state = state.wrapping_mul(0x0100_0000_01b3);
    }
    state
}

/// A hash in a namespace of its own (units, numbers), so it never equals a word's.
pub(super) fn tagged_hash(tag: u8, bytes: &[u8]) -> u64 {
    hash(bytes) ^ (u64::from(tag) << 56) ^ 0x9e37_79b9_7f4a_7c15
}

/// The stem two spellings of a word share: lower case, without a plural "s" or "es".
pub(super) fn stem(lower: &str) -> &str {
    let bytes = lower.as_bytes();
    let len = bytes.len();
    if len > 4 && lower.ends_with("ies") {
        // "dictionaries" and "dictionary" differ in their last letters: keep both stems short.
        return lower.get(..len - 3).unwrap_or(lower);
    }
    if len > 4
        && (lower.ends_with("ches")
            || lower.ends_with("shes")
            || lower.ends_with("sses")
            || lower.ends_with("xes"))
    {
        return lower.get(..len - 2).unwrap_or(lower);
    }
    if len > 3
        && lower.ends_with('s')
        && !lower.ends_with("ss")
        && !lower.ends_with("us")
        && !lower.ends_with("is")
    {
        return lower.get(..len - 1).unwrap_or(lower);
    }
    if len > 4 && lower.ends_with('y') {
        return lower.get(..len - 1).unwrap_or(lower);
    }
    lower
}

#[cfg(test)]
mod tests {
    use super::stem;

    #[test]
    fn stems_agree_across_singular_and_plural() {
        for (a, b) in
            [("etfs", "etf"), ("dictionaries", "dictionary"), ("boxes", "box"), ("branches", "branch")]
        {
            assert_eq!(stem(a), stem(b), "{a} vs {b}");
        }
        assert_eq!(stem("class"), "class");
        assert_eq!(stem("virus"), "virus");
        assert_eq!(stem("is"), "is");
    }
}
