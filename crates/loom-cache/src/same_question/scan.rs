//! Reads one question into its [`Signature`]: words, numbers, units, dates, names, quotes.

use super::bounded::Bounded;
use super::lexicon::{self, AUTUMN, DateWord, Entry, NumberWord, Pivot, UNITS};
use super::signature::{
    MAX_BYTES, MAX_WORDS, NO_UNIT, Prefixed, Quantity, ROLE_NONE, Role, Scale, Signature, Word, hash, stem,
    tagged_hash,
};

/// Where a token sits in the text, and whether it starts a sentence.
#[derive(Clone, Copy, Debug, Default)]
struct Token {
    start: usize,
    end: usize,
    sentence_start: bool,
}

const MAX_TOKENS: usize = MAX_WORDS + 32;

/// Date ids beyond the lexicon's small ones.
const DAY_OF_MONTH: u64 = 1_000;
const YEAR: u64 = 10_000;
const DECADE: u64 = 20_000;
const TIME_OF_DAY: u64 = 100_000;
const MODIFIED: u64 = 200_000;

/// Hash tags: numbers and units hash apart from words.
const TAG_NUMBER: u8 = 1;
const TAG_UNIT: u8 = 2;
const TAG_DATE: u8 = 3;

/// Reads `text`.
pub(super) fn signature(text: &str) -> Signature {
    let mut signature = Signature::default();
    if text.len() > MAX_BYTES {
        signature.too_long = true;
        return signature;
    }
    let mut buffer = [0u8; MAX_BYTES];
    let Some(slot) = buffer.get_mut(..text.len()) else {
        signature.too_long = true;
        return signature;
    };
    slot.copy_from_slice(text.as_bytes());
    slot.make_ascii_lowercase();
    // Lower-casing ASCII bytes keeps UTF-8 valid; the fallback is never taken.
    let Ok(lower) = std::str::from_utf8(slot) else {
        signature.too_long = true;
        return signature;
    };
    quotes(text, &mut signature.quotes);
    let mut tokens: Bounded<Token, MAX_TOKENS> = Bounded::default();
    tokenize(text, &mut tokens);
    if tokens.overflowed() {
        signature.too_long = true;
        return signature;
    }
    let mut scanner = Scanner {
        text,
        lower,
        tokens: tokens.as_slice(),
        signature,
        role: ROLE_NONE,
        pivot_since_content: false,
        capitals_name: capitals_name_things(text, tokens.as_slice()),
    };
    scanner.run();
    scanner.finish()
}

/// Hashes of quoted strings: "...", “...”, `...`, '...' (not apostrophes), ‘...’.
fn quotes(text: &str, out: &mut Bounded<u64, 8>) {
    let mut chars = text.char_indices().peekable();
    let mut previous: Option<char> = None;
    while let Some((index, c)) = chars.next() {
        let closing: Option<char> = match c {
            '"' => Some('"'),
            '“' => Some('”'),
            '`' => Some('`'),
            '‘' => Some('’'),
            '\'' if previous.is_none_or(|p| p.is_whitespace() || p == '(') => Some('\''),
            _ => None,
        };
        previous = Some(c);
        let Some(closing) = closing else { continue };
        let start = index + c.len_utf8();
        let mut end = None;
        while let Some((inner, d)) = chars.next() {
            if d == closing {
                let next = chars.peek().map(|(_, n)| *n);
                // A closing single quote is one only before a non-letter ("it's" is no end).
                let single = matches!(closing, '\'' | '’');
                if !single || next.is_none_or(|n| !n.is_alphanumeric()) {
                    end = Some(inner);
                    previous = Some(d);
                    break;
                }
            }
        }
        if let Some(end) = end
            && let Some(quoted) = text.get(start..end)
        {
            let quoted = quoted.trim();
            if !quoted.is_empty() {
                out.insert(hash(quoted.as_bytes()));
            }
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `text` into tokens: words, numbers with their signs and suffixes, identifiers.
fn tokenize(text: &str, out: &mut Bounded<Token, MAX_TOKENS>) {
    let char_at = |i: usize| text.get(i..).and_then(|rest| rest.chars().next());
    let char_before = |i: usize| text.get(..i).and_then(|head| head.chars().next_back());
    let mut sentence_start = true;
    let mut i = 0;
    while let Some(c) = char_at(i) {
        let next = char_at(i + c.len_utf8());
        let previous = char_before(i);
        let after_space = previous.is_none_or(|p| p.is_whitespace() || matches!(p, '(' | '"' | '`'));
        let starts = is_word_char(c)
            || (matches!(c, '$' | '£' | '€' | '¥') && next.is_some_and(|n| n.is_ascii_digit()))
            || (c == '-' && after_space && next.is_some_and(|n| n.is_alphanumeric() || n == '-'))
            || (c == '°' && next.is_some_and(char::is_alphabetic))
            || (c == '.' && after_space && next.is_some_and(|n| n.is_ascii_digit()));
        if !starts {
            if matches!(c, '.' | '?' | '!' | ':' | ';' | '\n' | '"' | '“' | '`') {
                sentence_start = true;
            }
            i += c.len_utf8();
            continue;
        }
        let start = i;
        let mut previous = c;
        i += c.len_utf8();
        while let Some(c) = char_at(i) {
            let next = char_at(i + c.len_utf8());
            let next_is_word = next.is_some_and(is_word_char);
            let keep = is_word_char(c)
                || (matches!(c, '.' | '-' | '/' | '&' | '@') && next_is_word)
                || (matches!(c, '\'' | '’')
                    && previous.is_alphabetic()
                    && next.is_some_and(char::is_alphabetic))
                || (c == ',' && previous.is_ascii_digit() && next.is_some_and(|n| n.is_ascii_digit()))
                || (c == ':' && previous.is_ascii_digit() && next.is_some_and(|n| n.is_ascii_digit()))
                || (c == ':' && next == Some(':'))
                || (c == ':' && previous == ':' && next_is_word)
                || (matches!(c, '+' | '#') && i - start == 1 && matches!(previous, 'c' | 'C' | 'f' | 'F'))
                || (c == '+' && previous == '+')
                || (matches!(c, '%' | '°') && previous.is_ascii_digit())
                || (previous == '°' && c.is_alphabetic());
            if !keep {
                break;
            }
            previous = c;
            i += c.len_utf8();
        }
        push_token(text, start, i, sentence_start, out);
        sentence_start = false;
    }
}

/// Pushes a token, split at its hyphens when they join plain words ("thread-safe") or a
/// number and a word ("15-year"); identifiers ("gpt-4", "utf-8") stay whole.
fn push_token(
    text: &str,
    start: usize,
    end: usize,
    sentence_start: bool,
    out: &mut Bounded<Token, MAX_TOKENS>,
) {
    let Some(token) = text.get(start..end) else { return };
    let splittable = !token.starts_with('-')
        && token.contains('-')
        && token.split('-').enumerate().all(|(index, part)| {
            !part.is_empty()
                && (part.chars().all(char::is_alphabetic)
                    || (index == 0 && part.chars().all(|c| c.is_ascii_digit() || c == '.')))
        });
    if !splittable {
        out.push(Token { start, end, sentence_start });
        return;
    }
    let mut part_start = start;
    for (index, part) in token.split('-').enumerate() {
        out.push(Token {
            start: part_start,
            end: part_start + part.len(),
            sentence_start: sentence_start && index == 0,
        });
        part_start += part.len() + 1;
    }
}

/// Whether capital letters mark names here: not in Title Case or ALL CAPS text.
fn capitals_name_things(text: &str, tokens: &[Token]) -> bool {
    let mut words = 0usize;
    let mut capitalised = 0usize;
    for token in tokens.iter().filter(|token| !token.sentence_start) {
        let Some(word) = text.get(token.start..token.end) else { continue };
        if !word.chars().all(char::is_alphabetic) {
            continue;
        }
        words += 1;
        if word.chars().next().is_some_and(char::is_uppercase) {
            capitalised += 1;
        }
    }
    words < 3 || capitalised * 2 <= words
}

struct Scanner<'t> {
    text: &'t str,
    lower: &'t str,
    tokens: &'t [Token],
    signature: Signature,
    /// The role of the words that follow the latest pivot.
    role: Role,
    /// A pivot came since the last content word: a weak pivot does not override it.
    pivot_since_content: bool,
    capitals_name: bool,
}

/// A token's text in both cases.
#[derive(Clone, Copy)]
struct Text<'t> {
    original: &'t str,
    lower: &'t str,
}

impl<'t> Scanner<'t> {
    fn token_text(&self, index: usize) -> Option<Text<'t>> {
        let token = self.tokens.get(index)?;
        Some(Text {
            original: self.text.get(token.start..token.end)?,
            lower: self.lower.get(token.start..token.end)?,
        })
    }

    fn lower(&self, index: usize) -> &'t str {
        self.token_text(index).map_or("", |text| text.lower)
    }

    fn entry(&self, index: usize) -> Option<&'static Entry> {
        lexicon::lookup(self.lower(index))
    }

    fn run(&mut self) {
        let mut index = 0;
        while index < self.tokens.len() {
            index += self.token(index).max(1);
        }
    }

    fn finish(mut self) -> Signature {
        let mut english_words = 0usize;
        let mut plain_words = 0usize;
        let mut foreign_words = 0usize;
        for index in 0..self.tokens.len() {
            let word = self.lower(index);
            if !word.chars().any(char::is_alphabetic) {
                continue;
            }
            plain_words += 1;
            if word.chars().any(|c| c.is_alphabetic() && !c.is_ascii()) {
                foreign_words += 1;
            }
            if lexicon::lookup(strip_possessive(word)).is_some() || word.ends_with("n't") {
                english_words += 1;
            }
        }
        // Mostly words the lexicon does not know, or letters beyond ASCII: another language.
        self.signature.foreign = (plain_words >= 3 && english_words == 0) || foreign_words * 3 > plain_words;
        // "vs" orders its sides only in a text that compares along a scale.
        if self.signature.scales.is_empty() {
            for word in self.signature.words.as_mut_slice() {
                if word.role == role_of(Pivot::Versus) {
                    word.role = ROLE_NONE;
                }
            }
        }
        self.signature
    }

    /// Reads the token at `index` (and any it owns after it); returns how many it read.
    fn token(&mut self, index: usize) -> usize {
        let Some(text) = self.token_text(index) else { return 1 };
        let lower = text.lower;
        // "don't", "isn't": a negation and a function word.
        if let Some(base) = lower.strip_suffix("n't").or_else(|| lower.strip_suffix("n’t")) {
            self.signature.negations += 1;
            self.push_word(base, false, false);
            return 1;
        }
        let lower = strip_possessive(lower);
        let entry = lexicon::lookup(lower);
        if starts_number(lower) {
            return self.number(index);
        }
        if let Some(entry) = entry
            && let Some(read) = self.known_word(index, text, lower, entry)
        {
            return read;
        }
        self.content_word(index, text, lower, entry);
        1
    }

    /// A word the lexicon knows; `None` when it is an ordinary content word after all.
    fn known_word(
        &mut self,
        index: usize,
        text: Text<'t>,
        lower: &'t str,
        entry: &'static Entry,
    ) -> Option<usize> {
        if entry.negation {
            self.signature.negations += 1;
            self.push_word(lower, false, false);
            return Some(1);
        }
        if let Some(NumberWord::Value { .. } | NumberWord::Multiplier(_)) = entry.number {
            // "a dozen", "twenty five": a number unless it is the pronoun "one".
            if let Some(read) = self.written_number(index) {
                return Some(read);
            }
        }
        if let Some(read) = self.date_word(index, text, entry) {
            return Some(read);
        }
        if let Some((unit, after_number_only)) = entry.unit
            && !after_number_only
        {
            self.signature.bare_units.insert(unit);
            self.push_unit(unit);
            return Some(1);
        }
        if let Some(pivot) = entry.pivot {
            self.pivot(index, pivot);
        }
        if let Some((axis, sign)) = entry.scale {
            self.scale(index, axis, sign);
        }
        if entry.stop {
            self.push_word(lower, false, false);
            return Some(1);
        }
        if entry.pivot.is_some() || entry.scale.is_some() {
            self.push_word(lower, true, false);
            return Some(1);
        }
        None
    }

    /// An ordinary word: maybe a name, maybe negated by a prefix ("unsafe").
    fn content_word(&mut self, index: usize, text: Text<'t>, lower: &'t str, entry: Option<&'static Entry>) {
        let sentence_start = self.tokens.get(index).is_some_and(|token| token.sentence_start);
        let original = strip_possessive(text.original);
        if is_entity(original, lower, entry, sentence_start, self.capitals_name) {
            self.signature.entities.insert(hash(stem(lower).as_bytes()));
        } else if let Some(rest) = negating_prefix(lower) {
            let rest = stem(rest);
            if lexicon::lookup(rest).is_none_or(|entry| !entry.stop) {
                self.signature
                    .prefixed
                    .insert(Prefixed { rest: hash(rest.as_bytes()), whole: hash(stem(lower).as_bytes()) });
            }
        }
        self.push_plain_word(lower);
    }

    fn push_word(&mut self, lower: &str, content: bool, unit: bool) {
        let stem = hash(stem(lower).as_bytes());
        self.push(Word { stem, role: self.role, content, unit, plain: false });
    }

    fn push_plain_word(&mut self, lower: &str) {
        let stem = hash(stem(lower).as_bytes());
        self.push(Word { stem, role: self.role, content: true, unit: false, plain: true });
    }

    fn push_unit(&mut self, unit: u8) {
        let name = UNITS.get(usize::from(unit)).map_or("", |(name, _)| name);
        self.push(Word {
            stem: tagged_hash(TAG_UNIT, name.as_bytes()),
            role: self.role,
            content: true,
            unit: true,
            plain: false,
        });
    }

    fn push(&mut self, word: Word) {
        if word.content {
            self.pivot_since_content = false;
        }
        self.signature.words.push(word);
    }

    fn pivot(&mut self, index: usize, pivot: Pivot) {
        let previous = index.checked_sub(1).map_or("", |previous| self.lower(previous));
        if pivot == Pivot::To {
            // "how to", "want to": an infinitive; "compared to": already a comparison.
            let leads = lexicon::lookup(previous).is_some_and(|entry| entry.leads_infinitive);
            if leads || previous == "compared" {
                return;
            }
        }
        if pivot == Pivot::Weak && self.pivot_since_content {
            return;
        }
        self.role = role_of(pivot);
        self.pivot_since_content = true;
    }

    fn scale(&mut self, index: usize, axis: lexicon::Axis, sign: i8) {
        // "more expensive", "less costly": the adjective's scale, in the direction of more/less.
        let previous = index.checked_sub(1).map_or("", |previous| self.lower(previous));
        let modifier = match previous {
            "more" | "most" => 1,
            "less" | "least" => -1,
            _ => 0,
        };
        if modifier != 0
            && axis != lexicon::Axis::Amount
            && let Some(last) = self.signature.scales.last_mut()
            && last.axis == lexicon::Axis::Amount
        {
            *last = Scale { axis, sign: sign * modifier };
            return;
        }
        self.signature.scales.insert(Scale { axis, sign });
    }

    /// Dates and times said in words; `None` when the word is not one here.
    fn date_word(&mut self, index: usize, text: Text<'t>, entry: &'static Entry) -> Option<usize> {
        let previous = index.checked_sub(1).map_or("", |previous| self.lower(previous));
        let next = self.lower(index + 1);
        let frequency = lexicon::lookup(previous).is_some_and(|entry| entry.frequency);
        match entry.date? {
            DateWord::Fixed(id) => {
                if frequency {
                    return None;
                }
                self.push_date(u64::from(id));
                Some(1)
            }
            DateWord::Month { month, ambiguous } => {
                if ambiguous {
                    let sentence_start = self.tokens.get(index).is_some_and(|token| token.sentence_start);
                    let capital = text.original.chars().next().is_some_and(char::is_uppercase);
                    let beside_number = starts_number(next) || starts_number(previous);
                    let after_preposition =
                        matches!(previous, "in" | "of" | "early" | "late" | "mid" | "since" | "until");
                    let is_month = beside_number || after_preposition || (capital && !sentence_start);
                    if !is_month {
                        return None;
                    }
                }
                self.push_date(11 + u64::from(month));
                Some(1)
            }
            DateWord::Modifier(modifier) => {
                let next_entry = self.entry(index + 1)?;
                let period = match (next_entry.period, next_entry.date) {
                    (Some(period), _) => u64::from(period),
                    (None, Some(DateWord::Fixed(id) | DateWord::Month { month: id, .. })) => {
                        100 + u64::from(id)
                    }
                    (None, Some(DateWord::Fall)) => 100 + u64::from(AUTUMN),
                    _ => return None,
                };
                self.push_date(MODIFIED + u64::from(modifier) * 1_000 + period);
                Some(2)
            }
            DateWord::Fall => {
                if matches!(previous, "the" | "this" | "in" | "last" | "next" | "early" | "late") {
                    self.push_date(u64::from(AUTUMN));
                    Some(1)
                } else {
                    None
                }
            }
        }
    }

    fn push_date(&mut self, id: u64) {
        self.signature.dates.insert(id);
        self.push(Word {
            stem: tagged_hash(TAG_DATE, &id.to_le_bytes()),
            role: self.role,
            content: true,
            unit: false,
            plain: false,
        });
    }

    /// "twenty five", "a dozen", "two thousand", "twice"; `None` for a lone "one".
    fn written_number(&mut self, index: usize) -> Option<usize> {
        let mut total = 0.0;
        let mut current = 0.0;
        let mut read = 0;
        let mut only_fillers = true;
        let mut seen_any = false;
        loop {
            let word = self.lower(index + read);
            match lexicon::lookup(word).and_then(|entry| entry.number) {
                Some(NumberWord::Value { value, filler }) => {
                    only_fillers &= filler;
                    current += value;
                }
                Some(NumberWord::Multiplier(factor)) => {
                    only_fillers = false;
                    let base = if current == 0.0 { 1.0 } else { current };
                    if factor >= 1_000.0 {
                        total += base * factor;
                        current = 0.0;
                    } else {
                        current = base * factor;
                    }
                }
                None if word == "and" && seen_any && self.is_number_word(index + read + 1) => {}
                None => break,
            }
            seen_any = true;
            read += 1;
        }
        if read == 0 || only_fillers {
            return None;
        }
        let value = total + current;
        Some(read + self.quantity(index, index + read, value, NO_UNIT))
    }

    fn is_number_word(&self, index: usize) -> bool {
        self.entry(index).is_some_and(|entry| entry.number.is_some())
    }

    /// A token starting with a digit (or a sign or currency before one).
    fn number(&mut self, index: usize) -> usize {
        let lower = strip_possessive(self.lower(index));
        let Some(parsed) = parse_number(lower) else {
            // "0x80070005", "3d": an identifier.
            self.signature.entities.insert(hash(stem(lower).as_bytes()));
            self.push_plain_word(lower);
            return 1;
        };
        match parsed {
            Parsed::Date => {
                self.push_date(tagged_hash(TAG_DATE, lower.as_bytes()));
                1
            }
            Parsed::Time(minutes) => {
                self.push_date(TIME_OF_DAY + u64::from(minutes));
                1
            }
            Parsed::Decade(year) => {
                self.push_date(DECADE + u64::from(year));
                1
            }
            Parsed::Pair(first, second) => {
                self.push_quantity(first, NO_UNIT);
                self.push_quantity(second, NO_UNIT);
                1
            }
            Parsed::Value { value, unit, ordinal } => {
                if unit == NO_UNIT && self.day_of_month(index, value, ordinal) {
                    return 1;
                }
                // "5 thousand", "1.5 million".
                let mut value = value;
                let mut read = 1;
                while let Some(NumberWord::Multiplier(factor)) =
                    self.entry(index + read).and_then(|entry| entry.number)
                {
                    value *= factor;
                    read += 1;
                }
                if unit != NO_UNIT {
                    self.push_quantity(value, unit);
                    return read;
                }
                read + self.quantity(index, index + read, value, unit)
            }
        }
    }

    /// A number beside a month is a day of it ("March 15", "21st of June").
    fn day_of_month(&mut self, index: usize, value: f64, ordinal: bool) -> bool {
        let is_month = |entry: Option<&'static Entry>| {
            matches!(entry.and_then(|entry| entry.date), Some(DateWord::Month { .. }))
        };
        let previous = index.checked_sub(1).and_then(|previous| self.entry(previous));
        let beside = is_month(previous)
            || is_month(self.entry(index + 1))
            || (ordinal && self.lower(index + 1) == "of" && is_month(self.entry(index + 2)));
        if !(beside && value.fract() == 0.0 && (1.0..=31.0).contains(&value)) {
            return false;
        }
        self.push_date(DAY_OF_MONTH + value as u64);
        true
    }

    /// The unit after a number at `next`, if any; records the quantity; returns the tokens read.
    fn quantity(&mut self, number: usize, next: usize, value: f64, unit: u8) -> usize {
        let mut read = 0;
        let mut unit = unit;
        let word = self.lower(next);
        if matches!(word, "am" | "pm" | "a.m." | "p.m.")
            && value.fract() == 0.0
            && (1.0..=12.0).contains(&value)
        {
            let hour = value as u16 % 12 + if word.starts_with('p') { 12 } else { 0 };
            self.push_date(TIME_OF_DAY + u64::from(hour * 60));
            return 1;
        }
        if let Some((found, _)) = self.entry(next).and_then(|entry| entry.unit) {
            unit = found;
            read = 1;
            // "100 degrees Fahrenheit", "20 °C".
            if UNITS.get(usize::from(found)).is_some_and(|(name, _)| *name == "degree")
                && let Some((scale, _)) = self.entry(next + 1).and_then(|entry| entry.unit)
                && UNITS
                    .get(usize::from(scale))
                    .is_some_and(|(name, _)| matches!(*name, "celsius" | "fahrenheit" | "kelvin"))
            {
                unit = scale;
                read = 2;
            }
        } else if word == "per" && self.lower(next + 1) == "cent" {
            unit = lexicon::unit_id("percent").unwrap_or(NO_UNIT);
            read = 2;
        }
        let plain_year = unit == NO_UNIT && value.fract() == 0.0 && (1800.0..=2100.0).contains(&value);
        let currency_before =
            number.checked_sub(1).is_some_and(|previous| matches!(self.lower(previous), "$" | "€" | "£"));
        if plain_year && !currency_before {
            self.push_date(YEAR + value as u64);
            return read;
        }
        self.push_quantity(value, unit);
        read
    }

    fn push_quantity(&mut self, value: f64, unit: u8) {
        self.signature.quantities.insert(Quantity { value, unit });
        self.push(Word {
            stem: tagged_hash(TAG_NUMBER, &value.to_bits().to_le_bytes()),
            role: self.role,
            content: true,
            unit: false,
            plain: false,
        });
        if unit != NO_UNIT {
            self.push_unit(unit);
        }
    }
}

fn role_of(pivot: Pivot) -> Role {
    match pivot {
        Pivot::Than => 1,
        Pivot::From => 2,
        Pivot::To => 3,
        Pivot::Per => 4,
        Pivot::Time => 5,
        Pivot::Weak => 6,
        Pivot::Versus => 7,
    }
}

fn strip_possessive(word: &str) -> &str {
    word.strip_suffix("'s").or_else(|| word.strip_suffix("’s")).unwrap_or(word)
}

fn starts_number(word: &str) -> bool {
    let mut chars = word.chars();
    match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('$' | '£' | '€' | '¥' | '-' | '.') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// What a token that starts with a digit says.
#[derive(Debug, PartialEq)]
enum Parsed {
    Value {
        value: f64,
        unit: u8,
        ordinal: bool,
    },
    /// "3/4", "5-10": two numbers.
    Pair(f64, f64),
    Time(u16),
    Decade(u16),
    /// "2024-05-01", "05/01/2024".
    Date,
}

/// Parses "10", "-3.5", "$5", "10,000", "5km", "15%", "3rd", "9pm", "10:30", "1990s", "5k".
fn parse_number(token: &str) -> Option<Parsed> {
    let (currency, rest) = match token.chars().next() {
        Some(c @ ('$' | '£' | '€' | '¥')) => (Some(c), token.get(c.len_utf8()..).unwrap_or("")),
        _ => (None, token),
    };
    let (negative, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let digits_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ',')).unwrap_or(rest.len());
    let (digits, suffix) = rest.split_at(digits_end);
    let digits = digits.trim_end_matches('.');
    let suffix = rest.get(digits.len()..).unwrap_or(suffix);
    let value = parse_digits(digits)?;
    let value = if negative { -value } else { value };
    let unit_of = |name: &str| lexicon::unit_id(name).unwrap_or(NO_UNIT);
    let currency_unit = match currency {
        Some('$') => unit_of("usd"),
        Some('£') => unit_of("gbp"),
        Some('€') => unit_of("eur"),
        Some('¥') => unit_of("jpy"),
        _ => NO_UNIT,
    };
    if suffix.is_empty() {
        return Some(Parsed::Value { value, unit: currency_unit, ordinal: false });
    }
    if currency.is_some() {
        let factor = match suffix {
            "k" => 1e3,
            "m" | "mn" => 1e6,
            "b" | "bn" => 1e9,
            _ => return None,
        };
        return Some(Parsed::Value { value: value * factor, unit: currency_unit, ordinal: false });
    }
    if let Some(rest) = suffix.strip_prefix(['/', '-']) {
        // "3/4", "5-10", and dates written with a four-digit year.
        let mut parts = rest.split(['/', '-']);
        let second = parts.next().and_then(parse_digits)?;
        if parts.next().is_some() || digits.len() == 4 || rest.len() == 4 {
            return Some(Parsed::Date);
        }
        return Some(Parsed::Pair(value, second));
    }
    if let Some(minutes) = suffix.strip_prefix(':') {
        let (minutes, meridiem) =
            minutes.split_at(minutes.find(|c: char| !c.is_ascii_digit()).unwrap_or(minutes.len()));
        let minutes: u16 = minutes.parse().ok()?;
        let hour = value as u16 % 24;
        let hour = match meridiem {
            "pm" => hour % 12 + 12,
            "am" => hour % 12,
            "" => hour,
            _ => return None,
        };
        return Some(Parsed::Time(hour * 60 + minutes));
    }
    match suffix {
        "st" | "nd" | "rd" | "th" => return Some(Parsed::Value { value, unit: NO_UNIT, ordinal: true }),
        "am" | "pm" if value.fract() == 0.0 && (1.0..=12.0).contains(&value) => {
            let hour = value as u16 % 12 + if suffix == "pm" { 12 } else { 0 };
            return Some(Parsed::Time(hour * 60));
        }
        "s" if value.fract() == 0.0 && (1000.0..=2100.0).contains(&value) => {
            return Some(Parsed::Decade(value as u16));
        }
        "k" => return Some(Parsed::Value { value: value * 1e3, unit: NO_UNIT, ordinal: false }),
        "x" => return Some(Parsed::Value { value, unit: NO_UNIT, ordinal: false }),
        _ => {}
    }
    let entry = lexicon::lookup(suffix)?;
    let (unit, _) = entry.unit?;
    Some(Parsed::Value { value, unit, ordinal: false })
}

/// "10,000" and "3.5"; commas only as thousands separators.
fn parse_digits(digits: &str) -> Option<f64> {
    if digits.is_empty() {
        return None;
    }
    let mut plain: Bounded<u8, 32> = Bounded::default();
    for byte in digits.bytes().filter(|byte| *byte != b',') {
        plain.push(byte);
    }
    if plain.overflowed() {
        return None;
    }
    std::str::from_utf8(plain.as_slice()).ok()?.parse().ok()
}

/// Whether a word names something: a product, a code identifier, or a capitalised name.
fn is_entity(
    original: &str,
    lower: &str,
    entry: Option<&Entry>,
    sentence_start: bool,
    capitals_name: bool,
) -> bool {
    if entry.is_some_and(|entry| entry.name) {
        return true;
    }
    let has_digit = original.chars().any(|c| c.is_ascii_digit());
    let has_letter = original.chars().any(char::is_alphabetic);
    if has_digit && has_letter {
        return true;
    }
    if original.starts_with('-')
        || original.contains('_')
        || original.contains("::")
        || original.contains(['#', '+', '@'])
        || (original.contains(['.', '/']) && has_letter && entry.is_none())
    {
        return true;
    }
    let mut chars = original.chars();
    let first = chars.next();
    let rest_has_upper = chars.clone().any(char::is_uppercase);
    let rest_has_lower = chars.any(char::is_lowercase);
    // camelCase, iPhone, PostgreSQL, NumPy.
    if first.is_some_and(char::is_lowercase) && rest_has_upper {
        return true;
    }
    if !capitals_name || first.is_none_or(|c| !c.is_uppercase()) {
        return false;
    }
    if rest_has_upper && rest_has_lower {
        return true;
    }
    // An acronym: "US", "TCP", "BMI".
    if !rest_has_lower && original.chars().count() >= 2 {
        return !matches!(lower, "ok" | "am" | "pm")
            && entry.is_none_or(|entry| entry.unit.is_none() && entry.date.is_none());
    }
    match entry {
        None => true,
        // A capitalised everyday word is a name only mid-sentence ("Apple stock", not "Apple pie?").
        Some(entry) => {
            !sentence_start
                && !(entry.stop
                    || entry.starter
                    || entry.negation
                    || entry.unit.is_some()
                    || entry.date.is_some()
                    || entry.number.is_some()
                    || entry.pivot.is_some()
                    || entry.scale.is_some())
        }
    }
}

/// The word after a negating prefix: "unsafe" -> "safe", "irrational" -> "rational".
fn negating_prefix(lower: &str) -> Option<&str> {
    const PREFIXES: &[&str] = &["non", "un", "dis", "in", "im", "il", "ir"];
    PREFIXES.iter().find_map(|prefix| {
        let rest = lower.strip_prefix(prefix)?;
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        (rest.len() >= 4 && rest.chars().all(char::is_alphabetic)).then_some(rest)
    })
}

#[cfg(test)]
mod tests {
    use super::{Parsed, parse_number};
    use crate::same_question::lexicon::unit_id;
    use crate::same_question::signature::NO_UNIT;

    #[test]
    fn numbers_parse_with_their_units_and_forms() {
        let value = |value: f64, unit: &str| Parsed::Value {
            value,
            unit: unit_id(unit).unwrap_or(NO_UNIT),
            ordinal: false,
        };
        assert_eq!(parse_number("10"), Some(value(10.0, "none")));
        assert_eq!(parse_number("10,000"), Some(value(10_000.0, "none")));
        assert_eq!(parse_number("$5"), Some(value(5.0, "usd")));
        assert_eq!(parse_number("$5k"), Some(value(5_000.0, "usd")));
        assert_eq!(parse_number("5km"), Some(value(5.0, "km")));
        assert_eq!(parse_number("15%"), Some(value(15.0, "percent")));
        assert_eq!(parse_number("100°f"), Some(value(100.0, "fahrenheit")));
        assert_eq!(parse_number("-3.5"), Some(value(-3.5, "none")));
        assert_eq!(parse_number("3rd"), Some(Parsed::Value { value: 3.0, unit: NO_UNIT, ordinal: true }));
        assert_eq!(parse_number("9pm"), Some(Parsed::Time(21 * 60)));
        assert_eq!(parse_number("10:30"), Some(Parsed::Time(630)));
        assert_eq!(parse_number("1990s"), Some(Parsed::Decade(1990)));
        assert_eq!(parse_number("3/4"), Some(Parsed::Pair(3.0, 4.0)));
        assert_eq!(parse_number("2024-05-01"), Some(Parsed::Date));
        assert_eq!(parse_number("0x80070005"), None);
    }
}
