//! Escaped line breaks written out literally (`\n`, `\r`, `\t`, as in JSON or code
//! pasted into a prompt) read as the whitespace they stand for, so that
//! `\n\n[SYSTEM]` reads `[system]`. In a text that also holds other backslash commands
//! (LaTeX's `\frac` or `\nabla`, a regex's `\d`, a Windows path's `\Users`), only an
//! escape followed by something other than a letter counts: `\nabla` stays.

/// `chars` with the literal `\n`, `\r` and `\t` escapes replaced by a space.
pub(super) fn literal_breaks_as_spaces(chars: Vec<char>) -> Vec<char> {
    if !chars.contains(&'\\') {
        return chars;
    }
    let is_break = |c: Option<&char>| matches!(c, Some('n' | 'r' | 't'));
    let other_commands = chars
        .windows(2)
        .any(|pair| pair[0] == '\\' && pair[1].is_ascii_alphabetic() && !is_break(Some(&pair[1])));
    let mut out = Vec::with_capacity(chars.len());
    let mut at = 0;
    while at < chars.len() {
        let escape = chars[at] == '\\' && is_break(chars.get(at + 1));
        if escape && !(other_commands && chars.get(at + 2).is_some_and(char::is_ascii_alphabetic)) {
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

    #[test]
    fn latex_commands_stay_but_breaks_beside_them_go() {
        assert_eq!(
            spaced("$\\nabla f \\times \\rightarrow g$\\n\\frac{1}{2}"),
            "$\\nabla f \\times \\rightarrow g$ \\frac{1}{2}"
        );
    }
}
