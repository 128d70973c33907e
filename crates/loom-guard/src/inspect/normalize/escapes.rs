//! Escaped line breaks written out literally (`\n`, `\r`, `\t`, as in JSON or code
//! pasted into a prompt) read as the whitespace they stand for, so that
//! `\n\n[SYSTEM]` reads `[system]`. A Windows path such as `C:\new` loses its `\n` in
//! the folded text too: the folded text is only ever read by detectors.

/// `chars` with every literal `\n`, `\r` and `\t` replaced by a space.
pub(super) fn literal_breaks_as_spaces(chars: Vec<char>) -> Vec<char> {
    if !chars.contains(&'\\') {
        return chars;
    }
    let mut out = Vec::with_capacity(chars.len());
    let mut at = 0;
    while at < chars.len() {
        if chars[at] == '\\' && matches!(chars.get(at + 1), Some('n' | 'r' | 't')) {
            out.push(' ');
            at += 2;
        } else {
            out.push(chars[at]);
            at += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spaced(text: &str) -> String {
        literal_breaks_as_spaces(text.chars().collect()).into_iter().collect()
    }

    #[test]
    fn literal_breaks_become_spaces() {
        assert_eq!(
            spaced("```python\\n# System override\\r\\n\\tsafety=False"),
            "```python # System override   safety=False"
        );
    }

    #[test]
    fn other_backslashes_stay() {
        assert_eq!(spaced("a \\ b \\d+ \\\\ end\\"), "a \\ b \\d+ \\\\ end\\");
    }
}
