//! Name patterns with `*` wildcards (`gpt-4o*`, `*-mini`, `*`), for allowed models and `match`.

/// Whether `name` matches `pattern`, where `*` stands for any run of characters
/// (none included) and every other character matches itself, case-sensitively.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.as_bytes(), name.as_bytes());
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and the name position it currently swallows up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star, swallowed)) = backtrack {
            p = star + 1;
            n = swallowed + 1;
            backtrack = Some((star, swallowed + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Why a pattern is unusable, if it is: empty, or with whitespace or control characters.
pub fn problem(pattern: &str) -> Option<&'static str> {
    if pattern.is_empty() {
        Some("a pattern must not be empty (use `*` for every name)")
    } else if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("a pattern must not contain whitespace or control characters")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards_match_anywhere_and_literals_exactly() {
        assert!(matches("gpt-4o*", "gpt-4o-mini"));
        assert!(matches("gpt-4o*", "gpt-4o"));
        assert!(!matches("gpt-4o*", "gpt-4"));
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("*-mini", "gpt-4o-mini"));
        assert!(!matches("*-mini", "gpt-4o-mini-2"));
        assert!(matches("claude-*-sonnet*", "claude-3-5-sonnet-latest"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("gpt-4", "gpt-4"));
        assert!(!matches("gpt-4", "GPT-4"));
        assert!(!matches("gpt-4", "gpt-4o"));
        assert!(matches("**", "x"));
    }
}
