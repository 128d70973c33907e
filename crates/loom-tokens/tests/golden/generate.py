#!/usr/bin/env python3
"""Generate the tiktoken parity golden file for loom-tokens, offline.

Counts every corpus string with the reference Python `tiktoken` for o200k_base and
cl100k_base and writes `tiktoken.json` next to this script. Large (1 MB) inputs are not
stored: they are described by a seed, an alphabet and a byte target, and the Rust test
(`tests/parity.rs`) rebuilds them with the same SplitMix64 generator; only their byte
length and counts are stored.

No network is used: the BPE rank files are read from a local directory (by default the
`assets/` of the tiktoken-rs crate source that `cargo fetch` puts in ~/.cargo/registry;
bpe-openai and tiktoken-rs embed the same files) and checked against OpenAI's published
SHA-256 hashes.

    python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tiktoken==0.14.0
    /tmp/tokvenv/bin/python crates/loom-tokens/tests/golden/generate.py [--ranks-dir DIR]
"""

import argparse
import glob
import json
import os
import random
import sys
import unicodedata

import tiktoken
import tiktoken_ext.openai_public as openai_public

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1
ENCODINGS = ["o200k_base", "cl100k_base"]


# --------------------------------------------------------------------------------------
# Reference encoders, built from local rank files with tiktoken's own definitions
# (pattern, special tokens) of o200k_base and cl100k_base.


def reference_encodings(ranks_dir):
    real_loader = openai_public.load_tiktoken_bpe

    def local_loader(url, expected_hash=None):
        path = os.path.join(ranks_dir, os.path.basename(url))
        return real_loader(path, expected_hash=expected_hash)

    openai_public.load_tiktoken_bpe = local_loader
    try:
        encodings = {}
        for name in ENCODINGS:
            spec = openai_public.ENCODING_CONSTRUCTORS[name]()
            encodings[name] = tiktoken.Encoding(
                name=spec["name"],
                pat_str=spec["pat_str"],
                mergeable_ranks=spec["mergeable_ranks"],
                special_tokens=spec["special_tokens"],
            )
        return encodings
    finally:
        openai_public.load_tiktoken_bpe = real_loader


def count(encoding, text):
    # encode_ordinary: text that looks like a special token is ordinary text.
    return len(encoding.encode_ordinary(text))


# --------------------------------------------------------------------------------------
# SplitMix64, mirrored in tests/parity.rs.


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def generate(seed, alphabet, target_bytes):
    """Appends alphabet[next() % len] until the UTF-8 length reaches target_bytes."""
    rng = SplitMix64(seed)
    parts = []
    size = 0
    encoded = [item.encode("utf-8") for item in alphabet]
    while size < target_bytes:
        index = rng.next() % len(alphabet)
        parts.append(alphabet[index])
        size += len(encoded[index])
    return "".join(parts)


# --------------------------------------------------------------------------------------
# Corpus.

HANDWRITTEN = [
    "",
    " ",
    "a",
    "Hello, world!",
    "hello world",
    "Hello World HELLO WORLD hElLo WoRlD",
    "The quick brown fox jumps over the lazy dog.",
    "tiktoken is great!",
    "antidisestablishmentarianism",
    "2 + 2 = 4",
    "お誕生日おめでとう",
    # special-token lookalikes: ordinary text
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "text before <|endoftext|> and after",
    "<|fim_prefix|>def f():<|fim_suffix|>    return 1<|fim_middle|>",
    "<|endofprompt|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "<|start|>assistant<|message|>hi<|end|>",
    "<|reserved_200000|> <|channel|>final<|message|>",
    "<s>[INST] hi [/INST]</s>",
    "[CLS] hello [SEP] [PAD] [MASK] [UNK]",
    "<|endoftext",
    "endoftext|>",
    "<||>",
    # contractions, case-insensitive in cl100k
    "I'm you're he's we've they'll I'd can't won't",
    "I'M YOU'RE HE'S WE'VE THEY'LL I'D CAN'T WON'T",
    "It's It'S IT's it’s it‘s",
    "'s 't 're 've 'm 'll 'd",
    "''''''''",
    "rock'n'roll o'clock don''t",
    # whitespace
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\n\n\n",
    "a\n\n\nb",
    "a  b   c    d",
    "trailing spaces   ",
    "   leading spaces",
    "\t\tindented\n\t\t\tmore",
    "line1\r\nline2\r\n\r\nline4",
    "mixed \t \n \r\n \u00a0 \u3000 \u2003 \u200b end",
    " " * 100,
    " " * 1000 + "x",
    "\n" * 200,
    "\t" * 300 + "y",
    " \n" * 100,
    "x" + " " * 57 + "y" + "\t" * 13 + "z",
    "\u00a0\u00a0\u00a0nbsp",
    "\u2028line separator\u2029paragraph separator",
    "\u000b\u000c vertical tab and form feed",
    # digits
    "0",
    "12",
    "123",
    "1234",
    "12345678901234567890",
    "3.14159265358979323846264338327950288419716939937510",
    "1,000,000 and 1.000.000 and 1 000 000",
    "0x1F600 0b1010 0o777 1e-10 6.02e23",
    "9" * 1000,
    "٠١٢٣٤٥٦٧٨٩ ۰۱۲۳۴۵۶۷۸۹ ०१२३४५६७८९",
    "０１２３４５６７８９ full-width digits",
    "½ ¾ ⅓ ² ³ ¹ ⁴ ₂ Ⅳ ⅻ ① ⑩",
    "2024-11-25T12:34:56.789Z",
    "+1 (555) 123-4567",
    # CJK and other scripts
    "中文字符测试,包括标点符号。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 텍스트입니다. 안녕하세요!",
    "\u1100\u1161\u11a8 decomposed hangul jamo",
    "Русский текст с кириллицей, ЗАГЛАВНЫЕ буквы.",
    "Ελληνικά κείμενα με τόνους: άέήίόύώ",
    "العربية نص مع تشكيل: مَرْحَبًا بِالْعَالَمِ",
    "עברית: שָׁלוֹם עוֹלָם",
    "हिन्दी पाठ: नमस्ते दुनिया",
    "ภาษาไทย: สวัสดีชาวโลก",
    "ქართული ენა",
    "Հայերեն լեզու",
    "ಕನ್ನಡ தமிழ் తెలుగు മലയാളം বাংলা ਪੰਜਾਬੀ ગુજરાતી",
    "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ mongolian",
    "ትግርኛ አማርኛ",
    "ꦧꦱꦗꦮ javanese",
    "𝕄𝕒𝕥𝕙 𝔽𝕣𝕒𝕜𝕥𝕦𝕣 𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐",
    "𓀀𓀁𓀂 egyptian hieroglyphs 𒀀𒀁 cuneiform",
    "Zürich, Köln, São Paulo, Kraków, Ærøskøbing, İstanbul, ß ẞ",
    "Mixed: English 中文 русский العربية 日本語 한국어 ελληνικά",
    "CamelCaseWordsAndHTTPServerURLParser",
    "snake_case_identifier_with_numbers_123",
    "ALLCAPSWORD lowercaseword Titlecase ǅǈǋ",
    # combining marks
    "e\u0301 vs \u00e9",
    "a\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333",
    "n\u0303o\u0308\u0327",
    "\u0301\u0301\u0301 leading combining marks",
    "क्षत्रिय",
    # emoji
    "😀",
    "😀😃😄😁😆😅😂🤣",
    "👍👍🏻👍🏼👍🏽👍🏾👍🏿",
    "👨\u200d👩\u200d👧\u200d👦 family",
    "👩\u200d💻👨\u200d🔬🧑\u200d🚀👩\u200d❤️\u200d💋\u200d👨",
    "🏳️\u200d🌈 🏳️\u200d⚧️ 🏴\u200d☠️",
    "🇺🇸🇬🇧🇫🇷🇩🇪🇯🇵🇨🇳🇧🇷🇮🇳",
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f scotland-ish tag sequence",
    "❤️ ❤ ♥️ ☺️ ✔️ ✈️",
    "1️⃣ 2️⃣ #️⃣ *️⃣",
    "🫠🫨🫩🪿🪼 newer emoji",
    "text😀text😀😀text",
    "emoji at end 🎉",
    "🎉 emoji at start",
    # code
    'fn main() {\n    println!("Hello, world!");\n}\n',
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(1, 2)}`);\n",
    '#include <stdio.h>\nint main(void) {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
    'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n',
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
    '<!DOCTYPE html>\n<html lang="en">\n  <body><div class="x">&nbsp;&amp;&lt;</div></body>\n</html>',
    '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.7}',
    "key: value\nlist:\n  - a\n  - b\nnested:\n  deep: true\n",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\"; done | sort -u > out.log 2>&1\n",
    "public static void main(String[] args) throws IOException {}",
    "impl<'a, T: Clone + Send + 'static> Iterator for Foo<'a, T> where T: Debug {}",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # comment\n",
    "if (a && b || !c) { x += 1; y -= 2; z *= 3; w /= 4; } else if (a != b) {}",
    "a->b; c::d; e=>f; g|>h; i<=j; k>=l; m===n; o!==p; q??r; s?.t",
    "/* block comment */ // line comment\n-- sql comment\n# shell comment",
    "https://example.com/path/to/page?query=value&other=123#fragment",
    "user.name+tag@example.co.uk",
    "C:\\Windows\\System32\\drivers\\etc\\hosts",
    "/usr/local/bin/python3.11 --version",
    "$ pip install --upgrade tiktoken==0.14.0",
    "\\begin{equation} E = mc^2 \\end{equation}",
    "∀x∈ℝ: x² ≥ 0 ∧ ∃y: y·y = x → √x ∈ ℝ⁺ ∪ {0}",
    "SGVsbG8sIFdvcmxkIQ==",
    "dGhpcyBpcyBhIGxvbmdlciBiYXNlNjQgc3RyaW5nIHdpdGhvdXQgcGFkZGluZw",
    "0123456789abcdef0123456789abcdef",
    "d41d8cd98f00b204e9800998ecf8427e",
    "550e8400-e29b-41d4-a716-446655440000",
    "!!!???...,,,;;;:::",
    "-----BEGIN CERTIFICATE-----",
    "==================================================",
    "__init__ __main__ __dunder__",
    "<<<<<<< HEAD\n=======\n>>>>>>> branch",
    "a/b/c/d/e/f",
    "path/to/file.rs:123:45",
    # control characters and odd code points
    "\x00",
    "null\x00byte",
    "\x01\x02\x03\x1b[31mred\x1b[0m",
    "\x7f delete",
    "\ufeffBOM at start",
    "zero\u200bwidth\u200cnon\u200djoiner",
    "\u2060word joiner\u2061",
    "\ue000\uf8ff private use",
    "\U000f0000\U0010fffd supplementary private use",
    "\ufffd replacement char",
    "\ufffe\uffff noncharacters",
    "\U0001d11e musical symbol",
    "\u0378\u0379 unassigned greek",
    "\U000e0001 language tag",
    "\ufe0f\ufe0e variation selectors alone",
    "\u202eright-to-left override\u202c",
    "soft\u00adhyphen",
]

# Fragments for random compositions (stored in the golden file: the 1 MB mixed input is
# drawn from them by both generators).
FRAGMENTS = [
    "the", " the", "The", " THE", "and", " of", " to", " in", " is", " it", " that",
    " was", " for", " on", " are", " with", " as", " I", " his", " they", " be",
    "Hello", " world", ",", ".", "!", "?", ";", ":", "'", '"', "(", ")", "[", "]", "{", "}",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "’s",
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\u00a0", "\u3000",
    "0", "1", "12", "123", "1234", "99999", "3.14", "1,000", "-42", "٣", "४", "０",
    "中", "文", "日本", "語", "한국", "어", "привет", "мир", "γεια", "σου", "مرحبا",
    "שלום", "नमस्ते", "สวัสดี", "ქართ", "Zürich", "naïve", "café", "façade", "İ", "ß",
    "e\u0301", "o\u0308", "\u0301", "\u0327", "\u0651", "\u093f", "\u0e31",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", "🇯🇵", "❤️", "1️⃣", "\u200d", "\ufe0f",
    "<|endoftext|>", "<|fim_prefix|>", "<|endofprompt|>", "<|im_start|>", "<|", "|>",
    "fn", " main", "()", " {", "}", "def", " __init__", "(self", "):", "return",
    " =>", "->", "::", "&&", "||", "!=", "==", "+=", "<=", ">=", "/*", "*/", "//", "#",
    "SELECT", " FROM", " WHERE", "println!", "console.log", "import", " numpy", " as",
    " np", "https://", "example.com", "/path", "?q=", "&x=", "@", "user", "\\", "/",
    "CamelCase", "HTTPServer", "snake_case", "ALLCAPS", "x86_64", "UTF-8", "JSON",
    "SGVsbG8", "==", "+/", "0x1F", "deadbeef", "—", "–", "…", "“", "”", "«", "»", "€",
    "£", "¥", "₿", "°", "±", "×", "÷", "∑", "∫", "√", "∞", "≠", "≈", "→", "⇒", "♠",
    "\x00", "\x1b", "\x7f", "\ufeff", "\u200b", "\ue000", "\U0001d538", "\U00013000",
]

SEPARATORS = ["", "", "", " ", " ", " ", "  ", "\n", "\t", "\r\n", "   ", "\n\n", ", ", ". "]

# Code point ranges for random strings: many scripts, marks, emoji, spaces, controls.
RANGES = [
    (0x20, 0x7E), (0x00, 0x1F), (0xA0, 0xFF), (0x100, 0x24F), (0x250, 0x2FF),
    (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x530, 0x58F), (0x590, 0x5FF),
    (0x600, 0x6FF), (0x900, 0x97F), (0x980, 0x9FF), (0xE00, 0xE7F), (0x10A0, 0x10FF),
    (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF),
    (0x2100, 0x214F), (0x2190, 0x21FF), (0x2200, 0x22FF), (0x2500, 0x257F),
    (0x2600, 0x26FF), (0x2700, 0x27BF), (0x3000, 0x303F), (0x3040, 0x309F),
    (0x30A0, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xE0FF),
    (0xFB00, 0xFB4F), (0xFE00, 0xFE0F), (0xFF00, 0xFFEF), (0x1D400, 0x1D7FF),
    (0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF),
    (0x1FA70, 0x1FAFF), (0x20000, 0x2A6DF), (0xE0000, 0xE007F),
]


def random_codepoints(rng, n):
    out = []
    for _ in range(n):
        lo, hi = rng.choice(RANGES)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def composition(rng, max_fragments):
    k = rng.randint(1, max_fragments)
    out = []
    for _ in range(k):
        out.append(rng.choice(FRAGMENTS))
        out.append(rng.choice(SEPARATORS))
    return "".join(out)


def ascii_words(rng, n):
    words = []
    for _ in range(n):
        length = rng.randint(1, 14)
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(length))
        words.append(word)
    return rng.choice([" ", "  ", "\n", "", "_", "-"]).join(words)


def corpus():
    rng = random.Random(20261125)
    texts = list(HANDWRITTEN)
    texts += FRAGMENTS
    # NFC / NFD / NFKC forms of the non-ASCII handwritten strings
    for text in HANDWRITTEN:
        if any(ord(c) > 127 for c in text):
            for form in ("NFD", "NFKC"):
                normalized = unicodedata.normalize(form, text)
                if normalized != text:
                    texts.append(normalized)
    for _ in range(1050):
        texts.append(composition(rng, 40))
    for _ in range(100):
        texts.append(composition(rng, 300))
    for _ in range(400):
        texts.append(random_codepoints(rng, rng.randint(1, 120)))
    for _ in range(150):
        texts.append(ascii_words(rng, rng.randint(1, 60)))
    for _ in range(50):
        # one long "word" without spaces, a few KB: the per-piece BPE worst case
        alphabet = rng.choice(["ab", "abc", "xyz0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"])
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(100, 3000))))
    for _ in range(50):
        unit = rng.choice(["a", "ab", " ", "\n", "1", "中", "😀", "e\u0301", ".", "-=", "👨\u200d👩\u200d👧"])
        texts.append(unit * rng.randint(2, 1000))
    seen = set()
    unique = []
    for text in texts:
        if text not in seen:
            seen.add(text)
            unique.append(text)
    return unique


BASE64 = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
LETTERS = list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
MB = 1_000_000

GENERATED = [
    # name, seed, alphabet, target bytes
    ("base64_1mb", 1, BASE64, MB),
    ("letters_one_word_1mb", 2, LETTERS, MB),
    ("lowercase_one_word_1mb", 3, list("abcdefghijklmnopqrstuvwxyz"), MB),
    ("repeat_a_1mb", 4, ["a"], MB),
    ("repeat_cjk_1mb", 5, ["的"], MB),
    ("repeat_emoji_zwj_1mb", 6, ["👨\u200d👩\u200d👧\u200d👦"], MB),
    # Python tiktoken itself fails on ~1 MB of pure spaces (its fancy-regex backtracking
    # overflows), so the reference run uses 600 KB here; tests/parity.rs also counts 1 MB.
    ("spaces_600kb", 7, [" "], 600_000),
    ("whitespace_mix_1mb", 8, [" ", "\t", "\n", "\r\n", "\u00a0"], MB),
    ("digits_1mb", 9, list("0123456789"), MB),
    ("fragments_1mb", 10, FRAGMENTS + SEPARATORS, MB),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/tiktoken-rs-*/assets")))
    parser.add_argument("--ranks-dir", default=default[-1] if default else None)
    parser.add_argument("--out", default=os.path.join(HERE, "tiktoken.json"))
    args = parser.parse_args()
    if not args.ranks_dir:
        sys.exit("no --ranks-dir and no tiktoken-rs source in ~/.cargo/registry (run `cargo fetch`)")
    encodings = reference_encodings(args.ranks_dir)

    cases = []
    for text in corpus():
        counts = {name: count(enc, text) for name, enc in encodings.items()}
        cases.append({"text": text, **counts})

    generated = []
    for name, seed, alphabet, target in GENERATED:
        text = generate(seed, alphabet, target)
        entry = {"name": name, "seed": seed, "alphabet": alphabet, "target_bytes": target,
                 "bytes": len(text.encode("utf-8"))}
        for enc_name, enc in encodings.items():
            entry[enc_name] = count(enc, text)
        generated.append(entry)
        print(f"{name}: {entry}"[:160], file=sys.stderr)

    golden = {
        "about": "Token counts from Python tiktoken (encode_ordinary); regenerate with generate.py",
        "tiktoken_version": tiktoken.__version__,
        "encodings": ENCODINGS,
        "cases": cases,
        "generated": generated,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"{len(cases)} cases, {len(generated)} generated inputs -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
