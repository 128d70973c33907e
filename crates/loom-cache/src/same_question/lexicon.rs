//! The English words the guard knows: what each one means to the comparison.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A scale a comparison word points along; two questions disagree when they point opposite ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Axis {
    Size,
    Amount,
    Level,
    Speed,
    Length,
    Age,
    Weight,
    Quality,
    Strength,
    Price,
    Temperature,
    TimeOrder,
    Extreme,
    Depth,
    Width,
    Difficulty,
    Distance,
}

/// A word that gives the words after it a role, as "than" or "from ... to" do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pivot {
    Than,
    From,
    To,
    Per,
    Time,
    /// "in", "as", "for": a role only when no stronger pivot came since the last content word.
    Weak,
    /// "vs", "versus": a role only in a text that compares along a scale.
    Versus,
}

/// What a word says about dates and times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DateWord {
    /// A date by itself: weekdays, "yesterday", seasons, times of day (an id).
    Fixed(u16),
    /// A month (1-12); `ambiguous` when the word is also an everyday word ("may", "march").
    Month { month: u16, ambiguous: bool },
    /// "this", "last", "next": a date only before a period, weekday, month or season.
    Modifier(u16),
    /// "fall": a season only after "the", "this", "in" and the like.
    Fall,
}

/// What a word says about numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum NumberWord {
    /// A written number ("ten", "twice"); `filler` for "one", which is as often a pronoun.
    Value { value: f64, filler: bool },
    /// "hundred", "thousand", "dozen": multiplies the number before it.
    Multiplier(f64),
}

/// Everything the guard knows about one lower-case word.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Entry {
    /// A function word: carries no topic of its own.
    pub stop: bool,
    pub negation: bool,
    pub number: Option<NumberWord>,
    /// A unit id (index into [`UNITS`]) and whether the word is a unit only right after a number.
    pub unit: Option<(u8, bool)>,
    pub date: Option<DateWord>,
    /// A period ("week", "month", "year") that follows a date modifier: the date id's base.
    pub period: Option<u16>,
    pub scale: Option<(Axis, i8)>,
    pub pivot: Option<Pivot>,
    /// Common at the start of a sentence: not a name when capitalised there.
    pub starter: bool,
    /// A product, language or medicine users often write in lower case.
    pub name: bool,
    /// "to" right after it starts an infinitive, not a direction ("how to", "want to").
    pub leads_infinitive: bool,
    /// "each", "every", "per": the time word after it is a frequency, not a date.
    pub frequency: bool,
}

/// Canonical unit names, with the words (lower case) that mean them; `*` marks a word that
/// is a unit only right after a number ("5 m", "20 c").
pub(super) const UNITS: &[(&str, &[&str])] = &[
    ("km", &["km", "kms", "kilometer", "kilometers", "kilometre", "kilometres"]),
    ("mile", &["mi", "mile", "miles"]),
    ("m", &["*m", "meter", "meters", "metre", "metres"]),
    ("cm", &["cm", "centimeter", "centimeters", "centimetre", "centimetres"]),
    ("mm", &["mm", "millimeter", "millimeters", "millimetre", "millimetres"]),
    ("ft", &["ft", "foot", "feet"]),
    ("inch", &["inch", "inches"]),
    ("yard", &["yd", "yds", "yard", "yards"]),
    ("kg", &["kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramme", "kilogrammes"]),
    ("g", &["*g", "gram", "grams", "gramme", "grammes"]),
    ("mg", &["mg", "milligram", "milligrams"]),
    ("mcg", &["mcg", "µg", "microgram", "micrograms"]),
    ("lb", &["lb", "lbs", "pound", "pounds"]),
    ("oz", &["oz", "ounce", "ounces"]),
    ("ton", &["ton", "tons", "tonne", "tonnes"]),
    ("l", &["*l", "liter", "liters", "litre", "litres"]),
    ("ml", &["ml", "milliliter", "milliliters", "millilitre", "millilitres"]),
    ("gallon", &["gal", "gallon", "gallons"]),
    ("cup", &["cup", "cups"]),
    ("tbsp", &["tbsp", "tablespoon", "tablespoons"]),
    ("tsp", &["tsp", "teaspoon", "teaspoons"]),
    ("pint", &["pint", "pints"]),
    ("quart", &["qt", "quart", "quarts"]),
    ("celsius", &["celsius", "centigrade", "°c", "*c"]),
    ("fahrenheit", &["fahrenheit", "°f", "*f"]),
    ("kelvin", &["kelvin"]),
    ("degree", &["degree", "degrees", "°", "deg"]),
    ("ms", &["ms", "millisecond", "milliseconds"]),
    ("second", &["sec", "secs", "second", "seconds"]),
    ("minute", &["min", "mins", "minute", "minutes"]),
    ("hour", &["hr", "hrs", "hour", "hours", "*h"]),
    ("day", &["day", "days"]),
    ("week", &["week", "weeks", "wk", "wks"]),
    ("month", &["month", "months"]),
    ("year", &["year", "years", "yr", "yrs"]),
    ("decade", &["decade", "decades"]),
    ("byte", &["byte", "bytes"]),
    ("kb", &["kb", "kilobyte", "kilobytes", "kib"]),
    ("mb", &["mb", "megabyte", "megabytes", "mib"]),
    ("gb", &["gb", "gigabyte", "gigabytes", "gib"]),
    ("tb", &["tb", "terabyte", "terabytes", "tib"]),
    ("kbps", &["kbps", "kbit/s"]),
    ("mbps", &["mbps", "mbit/s"]),
    ("gbps", &["gbps", "gbit/s"]),
    ("mph", &["mph"]),
    ("kph", &["kph", "km/h", "kmh", "kmph"]),
    ("m/s", &["m/s"]),
    ("usd", &["$", "usd", "dollar", "dollars", "buck", "bucks"]),
    ("eur", &["€", "eur", "euro", "euros"]),
    ("gbp", &["£", "gbp", "sterling"]),
    ("jpy", &["¥", "jpy", "yen"]),
    ("inr", &["inr", "rupee", "rupees"]),
    ("cny", &["cny", "yuan", "rmb"]),
    ("chf", &["chf", "franc", "francs"]),
    ("cad", &["cad"]),
    ("aud", &["aud"]),
    ("btc", &["btc"]),
    ("percent", &["%", "percent", "pct"]),
    ("calorie", &["calorie", "calories", "kcal", "cal"]),
    ("joule", &["joule", "joules", "kj"]),
    ("kwh", &["kwh"]),
    ("watt", &["watt", "watts", "kw", "*w"]),
    ("psi", &["psi"]),
    ("bar", &["*bar"]),
    ("kpa", &["kpa"]),
    ("atm", &["atm"]),
    ("hz", &["hz", "hertz"]),
    ("khz", &["khz"]),
    ("mhz", &["mhz"]),
    ("ghz", &["ghz"]),
    ("volt", &["volt", "volts", "*v"]),
    ("amp", &["amp", "amps", "ampere", "amperes"]),
];

/// The unit id of `usd`, the currency a bare `$` prefix means.
pub(super) fn unit_id(canonical: &str) -> Option<u8> {
    UNITS.iter().position(|(name, _)| *name == canonical).and_then(|index| u8::try_from(index).ok())
}

const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "if", "then", "so", "of", "on", "at", "by", "with", "about",
    "into", "onto", "in", "to", "for", "from", "as", "is", "are", "was", "were", "be", "been", "being",
    "am", "do", "does", "did", "done", "doing", "have", "has", "had", "having", "can", "could", "will",
    "would", "shall", "should", "may", "might", "must", "i", "me", "my", "mine", "you", "your", "yours",
    "we", "us", "our", "ours", "they", "them", "their", "theirs", "he", "him", "his", "she", "her",
    "hers", "it", "its", "this", "that", "these", "those", "there", "here", "what", "which", "who",
    "whom", "whose", "why", "how", "when", "where", "whether", "some", "any", "all", "each", "every",
    "much", "many", "very", "really", "just", "also", "too", "please", "it's", "what's", "how's",
    "where's", "who's", "that's", "there's", "i'm", "i've", "i'd", "i'll", "you're", "we're", "they're",
    "let's", "one", "ones", "way", "ways", "get", "got", "getting", "make", "know", "tell", "explain",
    "can", "like", "need", "want", "use", "using", "used", "should", "e.g.", "i.e.", "etc", "ok",
    "okay", "hi", "hello", "hey", "thanks", "thank", "yes", "exactly", "actually", "usually", "right",
    "kind", "sort", "thing", "things", "something", "anything", "someone", "anyone", "up", "out",
    "off", "down", "than", "vs", "versus", "per", "via", "while", "during", "since", "until",
    "because", "whats", "hows", "im", "ive",
];

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "cannot",
    "without", "unable", "w/o", "non", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent",
    "cant", "couldnt", "shouldnt", "wouldnt", "wont", "hasnt", "havent", "hadnt", "mustnt", "neednt",
    "aint",
];

const WRITTEN_NUMBERS: &[(&str, f64)] = &[
    ("zero", 0.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("thirteen", 13.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("sixteen", 16.0),
    ("seventeen", 17.0),
    ("eighteen", 18.0),
    ("nineteen", 19.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("seventy", 70.0),
    ("eighty", 80.0),
    ("ninety", 90.0),
    ("twice", 2.0),
    ("thrice", 3.0),
    ("half", 0.5),
    ("quarter", 0.25),
    ("third", 3.0),
    ("fourth", 4.0),
    ("fifth", 5.0),
    ("sixth", 6.0),
    ("seventh", 7.0),
    ("eighth", 8.0),
    ("ninth", 9.0),
    ("tenth", 10.0),
];

const MULTIPLIERS: &[(&str, f64)] = &[
    ("dozen", 12.0),
    ("hundred", 100.0),
    ("thousand", 1e3),
    ("million", 1e6),
    ("billion", 1e9),
    ("trillion", 1e12),
];

/// Date ids: weekdays 1-7, months 11-22, moments 30-49, seasons 50-53; modifiers x100 + period.
const WEEKDAYS: &[&str] = &["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const MONTHS: &[(&str, u16)] = &[
    ("january", 1),
    ("jan", 1),
    ("february", 2),
    ("feb", 2),
    ("april", 4),
    ("apr", 4),
    ("june", 6),
    ("jun", 6),
    ("july", 7),
    ("jul", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sep", 9),
    ("sept", 9),
    ("october", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("december", 12),
    ("dec", 12),
];
const MOMENTS: &[(&str, u16)] = &[
    ("yesterday", 30),
    ("today", 31),
    ("tomorrow", 32),
    ("tonight", 33),
    ("morning", 34),
    ("afternoon", 35),
    ("evening", 36),
    ("night", 37),
    ("noon", 38),
    ("midday", 38),
    ("midnight", 39),
    ("weekend", 40),
    ("weekends", 40),
    ("weekday", 41),
    ("weekdays", 41),
    ("overnight", 42),
    ("spring", 50),
    ("summer", 51),
    ("autumn", 52),
    ("winter", 53),
];
/// The date id of autumn, which "fall" means after "the", "this", "in" and the like.
pub(super) const AUTUMN: u16 = 52;
const MODIFIERS: &[(&str, u16)] =
    &[("this", 1), ("last", 2), ("past", 2), ("previous", 2), ("next", 3), ("coming", 3)];
const PERIODS: &[(&str, u16)] = &[
    ("day", 1),
    ("week", 2),
    ("weeks", 2),
    ("month", 3),
    ("months", 3),
    ("year", 4),
    ("years", 4),
    ("quarter", 5),
    ("decade", 6),
    ("century", 7),
    ("semester", 8),
];

const SCALES: &[(&str, Axis, i8)] = &[
    ("big", Axis::Size, 1),
    ("bigger", Axis::Size, 1),
    ("biggest", Axis::Size, 1),
    ("large", Axis::Size, 1),
    ("larger", Axis::Size, 1),
    ("largest", Axis::Size, 1),

    ("huge", Axis::Size, 1),
    ("small", Axis::Size, -1),
    ("smaller", Axis::Size, -1),
    ("smallest", Axis::Size, -1),
    ("tiny", Axis::Size, -1),

    // "greater than" and "less than" compare amounts.
    ("greater", Axis::Amount, 1),
    ("greatest", Axis::Amount, 1),
    ("lesser", Axis::Amount, -1),
    ("more", Axis::Amount, 1),
    ("most", Axis::Amount, 1),
    ("less", Axis::Amount, -1),
    ("least", Axis::Amount, -1),
    ("fewer", Axis::Amount, -1),
    ("fewest", Axis::Amount, -1),
    ("high", Axis::Level, 1),
    ("higher", Axis::Level, 1),
    ("highest", Axis::Level, 1),
    ("tall", Axis::Level, 1),
    ("taller", Axis::Level, 1),
    ("tallest", Axis::Level, 1),
    ("above", Axis::Level, 1),
    ("raise", Axis::Level, 1),
    ("raises", Axis::Level, 1),
    ("raised", Axis::Level, 1),
    ("raising", Axis::Level, 1),
    ("increase", Axis::Level, 1),
    ("increases", Axis::Level, 1),
    ("increased", Axis::Level, 1),
    ("increasing", Axis::Level, 1),
    ("rise", Axis::Level, 1),
    ("rises", Axis::Level, 1),
    ("rising", Axis::Level, 1),
    ("boost", Axis::Level, 1),
    ("low", Axis::Level, -1),
    ("lower", Axis::Level, -1),
    ("lowest", Axis::Level, -1),
    ("below", Axis::Level, -1),
    ("decrease", Axis::Level, -1),
    ("decreases", Axis::Level, -1),
    ("decreased", Axis::Level, -1),
    ("decreasing", Axis::Level, -1),
    ("reduce", Axis::Level, -1),
    ("reduces", Axis::Level, -1),
    ("reduced", Axis::Level, -1),
    ("reducing", Axis::Level, -1),
    ("drop", Axis::Level, -1),
    ("falling", Axis::Level, -1),
    ("fast", Axis::Speed, 1),
    ("faster", Axis::Speed, 1),
    ("fastest", Axis::Speed, 1),
    ("quick", Axis::Speed, 1),
    ("quicker", Axis::Speed, 1),
    ("quickest", Axis::Speed, 1),
    ("slow", Axis::Speed, -1),
    ("slower", Axis::Speed, -1),
    ("slowest", Axis::Speed, -1),
    ("long", Axis::Length, 1),
    ("longer", Axis::Length, 1),
    ("longest", Axis::Length, 1),
    ("short", Axis::Length, -1),
    ("shorter", Axis::Length, -1),
    ("shortest", Axis::Length, -1),
    ("old", Axis::Age, 1),
    ("older", Axis::Age, 1),
    ("oldest", Axis::Age, 1),
    ("elder", Axis::Age, 1),
    ("young", Axis::Age, -1),
    ("younger", Axis::Age, -1),
    ("youngest", Axis::Age, -1),
    ("new", Axis::Age, -1),
    ("newer", Axis::Age, -1),
    ("newest", Axis::Age, -1),
    ("latest", Axis::Age, -1),
    ("heavy", Axis::Weight, 1),
    ("heavier", Axis::Weight, 1),
    ("heaviest", Axis::Weight, 1),
    ("lighter", Axis::Weight, -1),
    ("lightest", Axis::Weight, -1),
    ("good", Axis::Quality, 1),
    ("better", Axis::Quality, 1),
    ("best", Axis::Quality, 1),
    ("bad", Axis::Quality, -1),
    ("worse", Axis::Quality, -1),
    ("worst", Axis::Quality, -1),
    ("strong", Axis::Strength, 1),
    ("stronger", Axis::Strength, 1),
    ("strongest", Axis::Strength, 1),
    ("weak", Axis::Strength, -1),
    ("weaker", Axis::Strength, -1),
    ("weakest", Axis::Strength, -1),
    ("expensive", Axis::Price, 1),
    ("pricey", Axis::Price, 1),
    ("pricier", Axis::Price, 1),
    ("costly", Axis::Price, 1),
    ("costlier", Axis::Price, 1),
    ("cheap", Axis::Price, -1),
    ("cheaper", Axis::Price, -1),
    ("cheapest", Axis::Price, -1),
    ("affordable", Axis::Price, -1),
    ("hot", Axis::Temperature, 1),
    ("hotter", Axis::Temperature, 1),
    ("hottest", Axis::Temperature, 1),
    ("warm", Axis::Temperature, 1),
    ("warmer", Axis::Temperature, 1),
    ("warmest", Axis::Temperature, 1),
    ("cold", Axis::Temperature, -1),
    ("colder", Axis::Temperature, -1),
    ("coldest", Axis::Temperature, -1),
    ("cooler", Axis::Temperature, -1),
    ("coolest", Axis::Temperature, -1),
    ("before", Axis::TimeOrder, 1),
    ("earlier", Axis::TimeOrder, 1),
    ("earliest", Axis::TimeOrder, 1),
    ("prior", Axis::TimeOrder, 1),
    ("early", Axis::TimeOrder, 1),
    ("after", Axis::TimeOrder, -1),
    ("later", Axis::TimeOrder, -1),
    ("late", Axis::TimeOrder, -1),
    ("max", Axis::Extreme, 1),
    ("maximum", Axis::Extreme, 1),
    ("min", Axis::Extreme, -1),
    ("minimum", Axis::Extreme, -1),
    ("deep", Axis::Depth, 1),
    ("deeper", Axis::Depth, 1),
    ("deepest", Axis::Depth, 1),
    ("shallow", Axis::Depth, -1),
    ("shallower", Axis::Depth, -1),
    ("wide", Axis::Width, 1),
    ("wider", Axis::Width, 1),
    ("widest", Axis::Width, 1),
    ("narrow", Axis::Width, -1),
    ("narrower", Axis::Width, -1),
    ("hard", Axis::Difficulty, 1),
    ("harder", Axis::Difficulty, 1),
    ("hardest", Axis::Difficulty, 1),
    ("difficult", Axis::Difficulty, 1),
    ("easy", Axis::Difficulty, -1),
    ("easier", Axis::Difficulty, -1),
    ("easiest", Axis::Difficulty, -1),
    ("simpler", Axis::Difficulty, -1),
    ("simplest", Axis::Difficulty, -1),
    ("far", Axis::Distance, 1),
    ("farther", Axis::Distance, 1),
    ("farthest", Axis::Distance, 1),
    ("further", Axis::Distance, 1),
    ("furthest", Axis::Distance, 1),
    ("near", Axis::Distance, -1),
    ("nearer", Axis::Distance, -1),
    ("nearest", Axis::Distance, -1),
    ("closer", Axis::Distance, -1),
    ("closest", Axis::Distance, -1),
];

const PIVOTS: &[(&str, Pivot)] = &[
    ("than", Pivot::Than),
    ("compared", Pivot::Than),
    ("over", Pivot::Than),
    ("instead", Pivot::Than),
    ("rather", Pivot::Than),
    ("against", Pivot::Than),
    ("vs", Pivot::Versus),
    ("vs.", Pivot::Versus),
    ("versus", Pivot::Versus),
    ("from", Pivot::From),
    ("to", Pivot::To),
    ("into", Pivot::To),
    ("per", Pivot::Per),
    ("before", Pivot::Time),
    ("after", Pivot::Time),
    ("in", Pivot::Weak),
    ("as", Pivot::Weak),
];

/// Words that start a sentence without being names: imperatives and greetings.
const STARTERS: &[&str] = &[
    "convert", "calculate", "find", "explain", "tell", "give", "show", "list", "write", "describe",
    "compare", "translate", "solve", "make", "help", "define", "name", "recommend", "suggest",
    "create", "summarize", "summarise", "check", "fix", "differentiate", "simplify", "estimate",
    "evaluate", "is", "are", "can", "could", "should", "would", "will", "does", "do", "did", "how",
    "what", "why", "when", "where", "which", "who", "whose", "any", "my", "our", "your", "in", "on",
    "at", "for", "if", "as", "after", "before", "since", "while", "so", "and", "but", "also", "as",
    "again", "then", "now", "hi", "hello", "hey", "thanks", "okay", "ok", "yes", "no", "not",
    "please", "quick", "question", "urgent", "best", "cheapest", "fastest", "easiest", "good",
    "looking", "trying", "planning", "need", "want", "wondering", "curious", "anyone", "someone",
    "there", "here", "i", "we", "you", "they", "he", "she", "it", "this", "that", "these", "those",
    "the", "a", "an", "some", "each", "every", "all", "am", "was", "were", "has", "have", "had",
    "may", "might", "must", "shall", "let", "lets", "let's", "say", "suppose", "assume", "given",
    "imagine", "consider", "use", "add", "remove", "delete", "cancel", "reset", "change", "update",
    "set", "get", "put", "keep", "stop", "start", "turn", "open", "close", "run", "install",
    "build", "deploy", "send", "book", "pay", "buy", "sell", "cook", "bake", "boil", "roast",
    "eat", "drink", "take", "go", "bring", "pack", "visit", "travel", "fly", "walk", "running",
    "cooking", "baking", "travelling", "traveling", "flying", "paying", "investing", "saving",
    "buying", "selling", "working", "learning", "writing", "reading", "doing", "having", "getting",
    "making", "using", "being", "going", "taking", "looking", "asking", "translate", "type",
    "enter", "click", "select", "choose", "pick", "try", "avoid", "prevent", "treat", "cure",
    "learn", "study", "read", "watch", "listen", "play", "call", "email", "contact", "reach",
    "ask", "answer", "apply", "file", "claim", "request", "return", "refund", "track", "ship",
    "order", "sign", "log", "login", "logout", "register", "subscribe", "unsubscribe", "upgrade",
    "downgrade", "switch", "transfer", "move", "copy", "paste", "print", "save", "load", "read",
    "parse", "sort", "filter", "merge", "split", "join", "reverse", "count", "sum", "multiply",
    "divide", "subtract", "round", "graph", "plot", "draw", "prove", "derive", "integrate",
    "average", "mean", "median", "percentage", "total",
];

/// Products, languages and common medicines users often type in lower case.
const NAMES: &[&str] = &[
    "python", "java", "javascript", "typescript", "rust", "ruby", "php", "perl", "kotlin", "scala",
    "haskell", "golang", "c++", "c#", "f#", "html", "css", "sql", "bash", "zsh", "powershell",
    "linux", "ubuntu", "debian", "macos", "ios", "android", "docker", "kubernetes", "k8s", "git",
    "github", "gitlab", "npm", "yarn", "pip", "conda", "numpy", "pandas", "scipy", "pytorch",
    "tensorflow", "react", "vue", "angular", "svelte", "django", "flask", "rails", "node", "nodejs",
    "deno", "postgres", "postgresql", "mysql", "sqlite", "mongodb", "redis", "kafka", "nginx",
    "aws", "azure", "gcp", "excel", "vscode", "vim", "emacs", "chrome", "firefox", "safari", "slack",
    "gmail", "outlook", "netflix", "spotify", "paypal", "venmo", "google", "iphone", "ipad",
    "whatsapp", "instagram", "facebook", "tiktok", "youtube", "uber", "airbnb", "bitcoin",
    "ethereum", "ibuprofen", "acetaminophen", "paracetamol", "aspirin", "naproxen", "amoxicillin",
    "metformin",
];

/// Words after which "to" starts an infinitive ("how to", "want to", "the best way to").
const INFINITIVE_LEADS: &[&str] = &[
    "how", "want", "wants", "wanted", "need", "needs", "needed", "have", "has", "had", "going", "way",
    "ways", "able", "like", "try", "trying", "tried", "best", "easiest", "better", "possible", "ok",
    "okay", "safe", "hard", "easy", "where", "what", "when", "whether", "which", "who", "used",
    "supposed", "plan", "planning", "order", "learn", "start", "begin", "time", "good", "worth",
    "allowed", "required", "necessary", "important", "enough", "due", "about", "wish", "steps",
    "process", "formula", "place", "ready", "meant", "expected", "likely", "decided", "decide",
    "it", "is",
];

const FREQUENCY_WORDS: &[&str] = &["each", "every", "per", "a", "an", "nightly", "daily"];

/// The lexicon, built once.
pub(super) fn lookup(word: &str) -> Option<&'static Entry> {
    static LEXICON: OnceLock<HashMap<&'static str, Entry>> = OnceLock::new();
    LEXICON.get_or_init(build).get(word)
}

fn build() -> HashMap<&'static str, Entry> {
    let mut map: HashMap<&'static str, Entry> = HashMap::with_capacity(1024);
    let mut set = |word: &'static str, update: &dyn Fn(&mut Entry)| update(map.entry(word).or_default());
    for word in STOPWORDS {
        set(word, &|entry| entry.stop = true);
    }
    for word in NEGATIONS {
        set(word, &|entry| entry.negation = true);
    }
    for &(word, value) in WRITTEN_NUMBERS {
        set(word, &|entry| entry.number = Some(NumberWord::Value { value, filler: false }));
    }
    set("one", &|entry| entry.number = Some(NumberWord::Value { value: 1.0, filler: true }));
    for &(word, factor) in MULTIPLIERS {
        set(word, &|entry| entry.number = Some(NumberWord::Multiplier(factor)));
    }
    for (index, (_, words)) in UNITS.iter().enumerate() {
        let Ok(id) = u8::try_from(index) else { continue };
        for word in words.iter() {
            match word.strip_prefix('*') {
                Some(word) => set(word, &|entry| entry.unit = Some((id, true))),
                None => set(word, &|entry| entry.unit = Some((id, false))),
            }
        }
    }
    for (index, word) in WEEKDAYS.iter().enumerate() {
        let id = index as u16 + 1;
        set(word, &|entry| entry.date = Some(DateWord::Fixed(id)));
        // "mondays", "on Fridays": the same day.
        if let Some(plural) = PLURAL_WEEKDAYS.get(index) {
            set(plural, &|entry| entry.date = Some(DateWord::Fixed(id)));
        }
    }
    for &(word, month) in MONTHS {
        set(word, &|entry| entry.date = Some(DateWord::Month { month, ambiguous: false }));
    }
    set("may", &|entry| entry.date = Some(DateWord::Month { month: 5, ambiguous: true }));
    set("march", &|entry| entry.date = Some(DateWord::Month { month: 3, ambiguous: true }));
    for &(word, id) in MOMENTS {
        set(word, &|entry| entry.date = Some(DateWord::Fixed(id)));
    }
    set("fall", &|entry| entry.date = Some(DateWord::Fall));
    for &(word, id) in MODIFIERS {
        set(word, &|entry| entry.date = Some(DateWord::Modifier(id)));
    }
    for &(word, id) in PERIODS {
        set(word, &|entry| entry.period = Some(id));
    }
    for &(word, axis, sign) in SCALES {
        set(word, &|entry| entry.scale = Some((axis, sign)));
    }
    for &(word, pivot) in PIVOTS {
        set(word, &|entry| entry.pivot = Some(pivot));
    }
    for word in STARTERS {
        set(word, &|entry| entry.starter = true);
    }
    for word in NAMES {
        set(word, &|entry| entry.name = true);
    }
    for word in INFINITIVE_LEADS {
        set(word, &|entry| entry.leads_infinitive = true);
    }
    for word in FREQUENCY_WORDS {
        set(word, &|entry| entry.frequency = true);
    }
    map
}

const PLURAL_WEEKDAYS: &[&str] =
    &["mondays", "tuesdays", "wednesdays", "thursdays", "fridays", "saturdays", "sundays"];
