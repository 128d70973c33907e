#!/usr/bin/env bash
# Build `loom` with profile-guided optimisation (PGO). An instrumented build of the
# production profile serves loom-bench's workloads (OpenAI chat through the mock upstream,
# whole, streamed, and streamed with usage), then the production profile is built again
# with the branch and call counts it recorded, so LLVM lays out and inlines the hot path
# for what a gateway does most. See docs/benchmarks.md.
#
#   scripts/pgo.sh     # the binary is then target/pgo/production/loom
#
# Needs the llvm-tools rustup component (added if missing, for llvm-profdata). Two
# builds from scratch: about 25 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
data="$target/pgo-data"
profdata="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
[ -x "$profdata" ] || rustup component add llvm-tools
cargo build --profile production -p loom -p loom-bench
RUSTFLAGS="-Cprofile-generate=$data" CARGO_TARGET_DIR="$target/pgo-gen" cargo build --profile production -p loom
# Only the training runs' profiles count (instrumented build scripts may have written some).
rm -rf "$data" && mkdir -p "$data"
for workload in whole stream stream-usage; do
    "$target/production/loom-bench" --loom-bin "$target/pgo-gen/production/loom" --only "$workload" \
        --skip-nginx --skip-hyper --rate 0 --duration 5 >/dev/null
done
"$profdata" merge -o "$data/loom.profdata" "$data"/*.profraw
RUSTFLAGS="-Cprofile-use=$data/loom.profdata" CARGO_TARGET_DIR="$target/pgo" cargo build --profile production -p loom
echo "pgo.sh: built $target/pgo/production/loom"
