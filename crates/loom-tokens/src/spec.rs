//! `tokenizer:` values in config: a built-in encoding name or a `tokenizer.json` path.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding::Encoding;
use crate::error::TokenError;

/// Which tokenizer to use: `o200k_base`, `cl100k_base` or `/path/to/tokenizer.json`.
///
/// A value parses as a path when it contains `/` or `\`, or ends in `.json`; any other
/// value must be a built-in encoding name, so a typo such as `o200k` is an error rather
/// than a missing file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenizerSpec {
    /// A built-in tiktoken encoding.
    Builtin(Encoding),
    /// A HuggingFace `tokenizer.json` on local disk.
    HuggingFace(PathBuf),
}

impl FromStr for TokenizerSpec {
    type Err = TokenError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if let Some(encoding) = Encoding::from_name(value) {
            return Ok(TokenizerSpec::Builtin(encoding));
        }
        if value.contains('/') || value.contains('\\') || value.ends_with(".json") {
            return Ok(TokenizerSpec::HuggingFace(PathBuf::from(value)));
        }
        Err(TokenError::UnknownEncoding(value.to_owned()))
    }
}

impl fmt::Display for TokenizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizerSpec::Builtin(encoding) => f.write_str(encoding.name()),
            TokenizerSpec::HuggingFace(path) => write!(f, "{}", path.display()),
        }
    }
}

impl From<Encoding> for TokenizerSpec {
    fn from(encoding: Encoding) -> Self {
        TokenizerSpec::Builtin(encoding)
    }
}

impl Serialize for TokenizerSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TokenizerSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_paths() {
        assert_eq!(
            "o200k_base".parse::<TokenizerSpec>().unwrap(),
            TokenizerSpec::Builtin(Encoding::O200kBase)
        );
        assert_eq!(" cl100k_base ".parse::<TokenizerSpec>().unwrap(), Encoding::Cl100kBase.into());
        assert_eq!(
            "/models/llama/tokenizer.json".parse::<TokenizerSpec>().unwrap(),
            TokenizerSpec::HuggingFace("/models/llama/tokenizer.json".into())
        );
        assert_eq!(
            "tokenizer.json".parse::<TokenizerSpec>().unwrap(),
            TokenizerSpec::HuggingFace("tokenizer.json".into())
        );
        assert_eq!("./tok".parse::<TokenizerSpec>().unwrap(), TokenizerSpec::HuggingFace("./tok".into()));
        let error = "o200k".parse::<TokenizerSpec>().unwrap_err();
        assert!(error.to_string().contains("unknown tokenizer `o200k`"), "{error}");
    }

    #[test]
    fn serde_uses_the_string_form() {
        let spec: TokenizerSpec = serde_json::from_str(r#""cl100k_base""#).unwrap();
        assert_eq!(spec, Encoding::Cl100kBase.into());
        assert_eq!(serde_json::to_string(&spec).unwrap(), r#""cl100k_base""#);
        let spec: TokenizerSpec = serde_json::from_str(r#""/m/tokenizer.json""#).unwrap();
        assert_eq!(serde_json::to_string(&spec).unwrap(), r#""/m/tokenizer.json""#);
        let error = serde_json::from_str::<TokenizerSpec>(r#""gpt2""#).unwrap_err();
        assert!(error.to_string().contains("unknown tokenizer `gpt2`"), "{error}");
    }
}
