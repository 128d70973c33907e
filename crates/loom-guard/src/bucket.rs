//! Bucket names: `:`-separated segments whose values are escaped, so no name can collide.

use std::fmt::Write;

/// Appends `:` and `value` escaped: `%`, `:`, `*`, `{` and `}` become `%XX`, so a value
/// never splits a segment, never reads as a `match` pattern and never forms a hash tag.
pub(crate) fn push_value(name: &mut String, value: &str) {
    push_escaped(name, value, false);
}

/// Appends `:` and a `match` pattern, escaped like a value except for its `*` wildcards.
pub(crate) fn push_pattern(name: &mut String, pattern: &str) {
    push_escaped(name, pattern, true);
}

fn push_escaped(name: &mut String, value: &str, keep_stars: bool) {
    name.push(':');
    for c in value.chars() {
        match c {
            '*' if keep_stars => name.push('*'),
            '%' | ':' | '*' | '{' | '}' => {
                let _ = write!(name, "%{:02X}", c as u32);
            }
            _ => name.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_forge_segments_or_patterns() {
        let mut a = "rl".to_owned();
        push_value(&mut a, "eng:rpm");
        let mut b = "rl".to_owned();
        push_value(&mut b, "eng");
        b.push_str(":rpm");
        assert_eq!(a, "rl:eng%3Arpm");
        assert_ne!(a, b);
        let mut star = String::new();
        push_value(&mut star, "g*{x}%");
        assert_eq!(star, ":g%2A%7Bx%7D%25");
        let mut pattern = String::new();
        push_pattern(&mut pattern, "gpt-4o*");
        assert_eq!(pattern, ":gpt-4o*");
    }
}
