//! Whether a stored question and a new one ask the same thing, beyond their embeddings'
//! cosine.
//!
//! A sentence embedding scores "Is Python dynamically typed?" and "Is Python not dynamically
//! typed?" at 0.974, above many true paraphrases: no threshold keeps them apart. This guard
//! reads both texts for the facts an embedding blurs and refuses a semantic hit when any
//! differs:
//!
//! | Check | Must match | Example refused |
//! |---|---|---|
//! | [`Difference::Quote`] | quoted strings, exactly (`"..."`, `'...'`, `` `...` ``, “...”) | `"permission denied"` / `"connection refused"` |
//! | [`Difference::Negation`] | the number of negations (not, no, never, n't, without, cannot, unable, ...) and negating prefixes (un-, in-, ir-, non-, dis-) | "safe" / "unsafe" |
//! | [`Difference::Number`] | numbers, in digits or words ("ten", "a dozen", "twice"), percentages, ordinals | 10 miles / 12 miles |
//! | [`Difference::Unit`] | the unit of each number, units named without one, conversion direction | 5 km / 5 miles; km to miles / miles to km |
//! | [`Difference::Date`] | years, months, days of the month, weekdays, times, "yesterday", "last week", seasons | 2024 / 2025; Monday / Tuesday |
//! | [`Difference::Entity`] | names: capitalised words, acronyms, code identifiers, known products | Jupiter / Saturn; useEffect / useState |
//! | [`Difference::Comparison`] | the direction of a comparison and which side is which | faster / slower; X than Y / Y than X |
//! | [`Difference::Substitution`] | otherwise identical wording with one ordinary word replaced | "Can dogs eat grapes?" / "Can cats eat grapes?" |
//! | [`Difference::Wording`] | in texts that are mostly not English: the same words | |
//! | [`Difference::TooLong`] | texts over 1,536 bytes or 160 words are never matched | |
//!
//! It is a pure function over two strings, allocates nothing and reads each text once
//! (a few microseconds for two short questions). English first: in other languages only
//! quotes, numbers, identifiers and the exact words are compared.

mod bounded;
mod compare;
mod lexicon;
mod scan;
mod signature;

/// Why two questions are not the same question.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Difference {
    /// One is negated where the other is not.
    Negation,
    /// Different numbers.
    Number,
    /// The same numbers in different units, or a conversion the other way round.
    Unit,
    /// A name, product or identifier in one is absent from the other.
    Entity,
    /// A quoted string differs.
    Quote,
    /// A comparison points the other way, or its sides are swapped.
    Comparison,
    /// A different date, day or time.
    Date,
    /// The same words but one ordinary word replaced by another.
    Substitution,
    /// Mostly not English, and the words differ.
    Wording,
    /// Too long to read whole.
    TooLong,
}

impl Difference {
    /// Every difference, in the order the guard checks them.
    pub const ALL: [Difference; 10] = [
        Difference::TooLong,
        Difference::Quote,
        Difference::Wording,
        Difference::Negation,
        Difference::Number,
        Difference::Unit,
        Difference::Date,
        Difference::Entity,
        Difference::Comparison,
        Difference::Substitution,
    ];

    /// A lower-case name for logs, metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Difference::Negation => "negation",
            Difference::Number => "number",
            Difference::Unit => "unit",
            Difference::Entity => "entity",
            Difference::Quote => "quote",
            Difference::Comparison => "comparison",
            Difference::Date => "date",
            Difference::Substitution => "substitution",
            Difference::Wording => "wording",
            Difference::TooLong => "too_long",
        }
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Whether a semantic hit is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Nothing the guard reads differs: the cosine decides.
    Same,
    /// The questions differ in this way: never serve one's answer to the other.
    Different(Difference),
}

impl Verdict {
    /// Whether a hit is allowed.
    pub fn is_same(self) -> bool {
        self == Verdict::Same
    }

    /// Why a hit is refused, if it is.
    pub fn difference(self) -> Option<Difference> {
        match self {
            Verdict::Same => None,
            Verdict::Different(difference) => Some(difference),
        }
    }
}

/// Whether `stored` (the question whose answer is cached) and `new` ask the same thing, as
/// far as negation, numbers, units, dates, names, quotes and comparisons go.
pub fn same_question(stored: &str, new: &str) -> Verdict {
    if stored == new {
        return Verdict::Same;
    }
    compare::compare(&scan::signature(stored), &scan::signature(new))
}

#[cfg(test)]
mod tests;
