//! OpenAI's byte-pair encodings `o200k_base` and `cl100k_base`, exact and linear-time.
//!
//! Backed by GitHub's `bpe-openai`: the same rank files and pre-tokenization patterns as
//! `tiktoken`, with a BPE that stays linear on long pieces (1 MB of one letter counts in
//! milliseconds, where the classic merge loop is quadratic). The encoders are
//! deserialized once per process, on first use, and shared.

use std::fmt;
use std::str::FromStr;

use crate::error::TokenError;
use crate::openai::{self, Counter};

/// A built-in tiktoken encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `o200k_base`: gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1/o3/o4 and later OpenAI models.
    O200kBase,
    /// `cl100k_base`: gpt-4, gpt-3.5-turbo and the `text-embedding-3-*`/`ada-002` models.
    Cl100kBase,
}

impl Encoding {
    /// Every built-in encoding.
    pub const ALL: [Encoding; 2] = [Encoding::O200kBase, Encoding::Cl100kBase];

    /// The tiktoken name (`o200k_base`, `cl100k_base`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    /// The encoding called `name`, if it is built in.
    pub fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|encoding| encoding.name() == name)
    }

    /// Number of tokens in `text`, as tiktoken's `encode_ordinary` counts them: text that
    /// looks like a special token (`<|endoftext|>`) is ordinary text.
    pub fn count(self, text: &str) -> usize {
        self.bpe().count(text)
    }

    /// Forces the one-time load of the encoder (tens of milliseconds), e.g. at start-up.
    pub fn warm_up(self) {
        self.bpe().count("");
    }

    fn bpe(self) -> &'static Counter {
        match self {
            Encoding::O200kBase => openai::o200k_base(),
            Encoding::Cl100kBase => openai::cl100k_base(),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = TokenError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Encoding::from_name(name).ok_or_else(|| TokenError::UnknownEncoding(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for encoding in Encoding::ALL {
            assert_eq!(encoding.name().parse::<Encoding>().unwrap(), encoding);
        }
        assert!("p50k_base".parse::<Encoding>().is_err());
    }

    #[test]
    fn counts_known_strings() {
        // Published in OpenAI's cookbook "How to count tokens with tiktoken".
        assert_eq!(Encoding::Cl100kBase.count("tiktoken is great!"), 6);
        assert_eq!(Encoding::O200kBase.count("tiktoken is great!"), 6);
        assert_eq!(Encoding::O200kBase.count("2 + 2 = 4"), 7);
        assert_eq!(Encoding::O200kBase.count("お誕生日おめでとう"), 8);
        assert_eq!(Encoding::Cl100kBase.count("お誕生日おめでとう"), 9);
        assert_eq!(Encoding::O200kBase.count(""), 0);
    }
}
