//! JSON parsing shared by the stages that read client and upstream bodies.

use serde::Deserialize;

/// Parses JSON, checking UTF-8 once for the whole input rather than string by string.
pub fn from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        // serde_json reports where the bad byte is.
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Like [`from_bytes`], for a value that must be a JSON object (`what` names it in the
/// error): serde would also read a struct from an array.
pub fn object_from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> serde_json::Result<T> {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(serde::de::Error::custom(format!("{what} must be a JSON object")));
    }
    from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_invalid_utf8() {
        assert_eq!(from_bytes::<Vec<String>>(br#"["a\nb"]"#).unwrap(), vec!["a\nb".to_owned()]);
        assert!(from_bytes::<String>(b"\"\xff\"").is_err());
        let error = object_from_bytes::<serde_json::Value>(b" [1]", "a chunk").unwrap_err();
        assert_eq!(error.to_string(), "a chunk must be a JSON object");
        assert!(object_from_bytes::<serde_json::Value>(b" {}", "a chunk").is_ok());
    }
}
