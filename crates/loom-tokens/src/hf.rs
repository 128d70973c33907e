//! HuggingFace `tokenizer.json` files (local models), through the `tokenizers` crate.

use std::fmt;
use std::path::{Path, PathBuf};

use loom_core::file::{MAX_TOKENIZER_BYTES, read_config_file};

use crate::encoding::Encoding;
use crate::error::TokenError;

/// A tokenizer loaded from a HuggingFace `tokenizer.json`, set up for counting.
///
/// Padding and truncation configured in the file are switched off (a file that pads to
/// 128 would otherwise count every short text as 128), and the special tokens the
/// post-processor adds (`[CLS]`/`[SEP]`, `<s>`) are not counted: a count is the number
/// of tokens of the text itself, like tiktoken's.
pub struct HfTokenizer {
    path: PathBuf,
    inner: tokenizers::Tokenizer,
}

impl HfTokenizer {
    /// Loads `path`, a regular file of at most [`MAX_TOKENIZER_BYTES`] (never downloads anything).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TokenError> {
        let path = path.as_ref();
        let error = |message: String| TokenError::LoadTokenizer { path: path.to_owned(), message };
        let bytes = read_config_file(path, MAX_TOKENIZER_BYTES).map_err(|e| error(e.to_string()))?;
        let mut inner = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| error(e.to_string()))?;
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| error(e.to_string()))?;
        Ok(HfTokenizer { path: path.to_owned(), inner })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of tokens in `text`, or the tokenizer's own error.
    pub fn try_count(&self, text: &str) -> Result<usize, TokenError> {
        self.inner.encode_fast(text, false).map(|encoding| encoding.len()).map_err(|e| {
            TokenError::LoadTokenizer { path: self.path.clone(), message: format!("cannot encode: {e}") }
        })
    }

    /// Number of tokens in `text`. Should the tokenizer fail on the input (a model
    /// without an unknown token meeting an unknown character), the `o200k_base` count
    /// stands in.
    pub fn count(&self, text: &str) -> usize {
        self.try_count(text).unwrap_or_else(|_| Encoding::O200kBase.count(text))
    }
}

impl fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HfTokenizer").field("path", &self.path).finish_non_exhaustive()
    }
}
