#!/usr/bin/env bash
# Build the release `loom` and `loom-bench` binaries and run the benchmark.
# Arguments go to loom-bench, e.g. `scripts/bench.sh --only stream --json`.
# See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "bench.sh: nginx not found (apt-get install -y nginx-light); running without the nginx baseline" >&2
fi
cargo build --release -p loom -p loom-bench
exec "${CARGO_TARGET_DIR:-target}/release/loom-bench" "$@"
