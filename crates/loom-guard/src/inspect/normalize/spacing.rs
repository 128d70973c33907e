//! Letter-spacing collapse: `i g n o r e` reads `ignore`.
//!
//! The rule: a run of at least [`MIN_SPACED_RUN`] single characters (each a letter or a
//! digit standing alone, at least two of them letters), separated by whitespace (up to
//! [`MAX_SEPARATOR_WIDTH`] characters) or by one punctuation character other than a
//! backslash, is written
//! without its separators. Where the spacing widens inside a run
//! (`i g n o r e   a l l`), the wider gap is kept as a word boundary. Two or three
//! letters alone (`a b c`, `U.S.A.`) stay as they are.

use super::class::{is_letter, is_letter_or_digit};

/// The fewest single characters a spaced-out run needs to be collapsed.
const MIN_SPACED_RUN: usize = 4;
/// The widest whitespace gap still read as letter spacing rather than a pause.
const MAX_SEPARATOR_WIDTH: usize = 4;

/// `chars` with every spaced-out run collapsed.
pub(super) fn collapse_letter_spacing(chars: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len());
    let mut at = 0;
    while at < chars.len() {
        if !is_letter_or_digit(chars[at]) {
            out.push(chars[at]);
            at += 1;
            continue;
        }
        let word = chars[at..].iter().take_while(|c| is_letter_or_digit(**c)).count();
        if word > 1 {
            // Not a single character: copied whole.
            out.extend_from_slice(&chars[at..at + word]);
            at += word;
            continue;
        }
        let run = spaced_run(chars, at);
        if run.is_collapsible() {
            emit(&run, &mut out);
        } else {
            // Every later start inside this run yields a shorter run with no more
            // letters: skipping it whole keeps the scan linear.
            out.extend_from_slice(&chars[at..run.end]);
        }
        at = run.end;
    }
    out
}

/// A spaced-out run: its characters, the width of the gap before each but the first,
/// and where it ends in the input.
struct SpacedRun {
    singles: Vec<char>,
    gaps: Vec<usize>,
    end: usize,
}

/// Whether `chars[at]` is an alphanumeric character standing alone.
fn is_single(chars: &[char], at: usize) -> bool {
    let alone_before = at == 0 || !is_letter_or_digit(chars[at - 1]);
    let alone_after = chars.get(at + 1).is_none_or(|c| !is_letter_or_digit(*c));
    is_letter_or_digit(chars[at]) && alone_before && alone_after
}

/// The gap starting at `at`, as its length and its width as spacing; `None` when no
/// separator starts there.
fn separator(chars: &[char], at: usize) -> Option<(usize, usize)> {
    let first = *chars.get(at)?;
    // A backslash starts an escape (`\n\n`), not a gap.
    if first.is_ascii_punctuation() && first != '\\' {
        return Some((1, 1));
    }
    let width = chars[at..].iter().take(MAX_SEPARATOR_WIDTH + 1).take_while(|c| c.is_whitespace()).count();
    (1..=MAX_SEPARATOR_WIDTH).contains(&width).then_some((width, width))
}

/// The spaced-out run starting at `start`, a single character.
fn spaced_run(chars: &[char], start: usize) -> SpacedRun {
    let mut run = SpacedRun { singles: vec![chars[start]], gaps: Vec::new(), end: start + 1 };
    while let Some((length, width)) = separator(chars, run.end) {
        let next = run.end + length;
        if next >= chars.len() || !is_single(chars, next) {
            break;
        }
        run.singles.push(chars[next]);
        run.gaps.push(width);
        run.end = next + 1;
    }
    run
}

impl SpacedRun {
    /// Whether the run is long enough, and holds letters enough, to be collapsed.
    fn is_collapsible(&self) -> bool {
        let letters = self.singles.iter().filter(|c| is_letter(**c)).count();
        self.singles.len() >= MIN_SPACED_RUN && letters >= 2
    }
}

/// Writes `run` without its separators, keeping a space where a gap is wider than the
/// run's usual spacing.
fn emit(run: &SpacedRun, out: &mut Vec<char>) {
    let usual = run.gaps.iter().copied().min().unwrap_or(1);
    out.push(run.singles[0]);
    for (single, gap) in run.singles[1..].iter().zip(&run.gaps) {
        if *gap > usual {
            out.push(' ');
        }
        out.push(*single);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collapse(text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        collapse_letter_spacing(&chars).into_iter().collect()
    }

    #[test]
    fn spaced_letters_are_joined() {
        assert_eq!(collapse("please i g n o r e this"), "please ignore this");
    }

    #[test]
    fn punctuation_separated_letters_are_joined() {
        assert_eq!(collapse("i.g.n.o.r.e the r-u-l-e-s"), "ignore the rules");
    }

    #[test]
    fn a_wider_gap_inside_a_run_stays_a_word_boundary() {
        assert_eq!(collapse("i g n o r e  a l l  p r e v i o u s"), "ignore all previous");
        assert_eq!(collapse("i  g  n  o  r  e"), "ignore");
    }

    #[test]
    fn spaced_leetspeak_is_joined_for_the_leet_rule() {
        assert_eq!(collapse("1 g n 0 r 3"), "1gn0r3");
    }

    #[test]
    fn short_runs_numbers_and_ordinary_text_stay() {
        for text in ["U.S.A. and a b c", "1 2 3 4 5", "3.14.15.92", "I am a cat", "x = a + b * c - d"] {
            assert_eq!(collapse(text), text);
        }
    }

    #[test]
    fn a_long_run_of_spaced_digits_stays_as_it_is() {
        let digits = "1 ".repeat(5000);
        assert_eq!(collapse(&digits), digits);
    }

    #[test]
    fn wide_gaps_end_a_run() {
        assert_eq!(collapse("a     b     c     d"), "a     b     c     d");
    }
}
