//! The Redis key layout: every name the store reads or writes, and the SCAN patterns that
//! select entries by namespace and model.

use super::EntryId;

/// The keys of one store: `{prefix}:cache:...`.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// `{prefix}:cache:`, the start of every key.
    base: String,
    /// `base` with SCAN's glob characters escaped.
    base_pattern: String,
}

impl Keys {
    /// The keys under hash tag `{prefix}`.
    pub(super) fn new(prefix: &str) -> Self {
        let base = format!("{{{prefix}}}:cache:");
        let base_pattern = escape_glob(&base);
        Keys { base, base_pattern }
    }

    /// `{prefix}:cache:e:<namespace hex>:<model hex>:<id hex>`: one entry.
    pub(super) fn entry(&self, namespace: &str, model: &str, id: &EntryId) -> String {
        format!("{}e:{}:{}:{}", self.base, hex(namespace.as_bytes()), hex(model.as_bytes()), hex(id))
    }

    /// `{prefix}:cache:log`: the stream of index events.
    pub(super) fn log(&self) -> String {
        format!("{}log", self.base)
    }

    /// The SCAN pattern of the entries of `namespace` and `model` (`None`: any).
    ///
    /// The hex segments hold no `:` and no glob character, so `*:<model>:*` can only match
    /// the model segment: the `:` before the namespace belongs to the literal `e:`.
    pub(super) fn entries_pattern(&self, namespace: Option<&str>, model: Option<&str>) -> String {
        let segment = |part: Option<&str>| part.map_or_else(|| "*".to_owned(), |part| hex(part.as_bytes()));
        match (namespace, model) {
            (None, None) => format!("{}e:*", self.base_pattern),
            (namespace, model) => {
                format!("{}e:{}:{}:*", self.base_pattern, segment(namespace), segment(model))
            }
        }
    }
}

/// Lower-case hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// `text` with `*`, `?`, `[`, `]` and `\` escaped for a Redis glob pattern (the prefix is
/// configuration, but a `*` in it must not widen a delete).
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hex_encode_what_clients_choose() {
        let keys = Keys::new("loom");
        let mut id = [0u8; 32];
        id[0] = 0xab;
        id[31] = 0x01;
        assert_eq!(
            keys.entry("t:1", "gpt*?", &id),
            format!("{{loom}}:cache:e:743a31:6770742a3f:ab{}01", "00".repeat(30))
        );
        assert_eq!(keys.log(), "{loom}:cache:log");
    }

    #[test]
    fn patterns_select_by_namespace_model_or_both() {
        let keys = Keys::new("loom");
        assert_eq!(keys.entries_pattern(None, None), "{loom}:cache:e:*");
        assert_eq!(keys.entries_pattern(Some("a"), None), "{loom}:cache:e:61:*:*");
        assert_eq!(keys.entries_pattern(None, Some("m")), "{loom}:cache:e:*:6d:*");
        assert_eq!(keys.entries_pattern(Some("a"), Some("m")), "{loom}:cache:e:61:6d:*");
        assert_eq!(keys.entries_pattern(Some(""), None), "{loom}:cache:e::*:*");
    }

    #[test]
    fn glob_characters_in_the_prefix_are_escaped() {
        let keys = Keys::new("lo*m?[x]\\");
        assert_eq!(keys.entries_pattern(None, None), "{lo\\*m\\?\\[x\\]\\\\}:cache:e:*");
        assert_eq!(keys.log(), "{lo*m?[x]\\}:cache:log");
    }
}
