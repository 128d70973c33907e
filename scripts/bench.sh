#!/usr/bin/env bash
# Build `loom` and `loom-bench` with the production profile and run the benchmark.
# Arguments go to loom-bench, e.g. `scripts/bench.sh --only stream --json` or
# `scripts/bench.sh --guard` (Loom with a key and limits, in memory and on Redis, too).
# With PGO=1 the Loom measured is the profile-guided build of scripts/pgo.sh.
# See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "bench.sh: nginx not found (apt-get install -y nginx-light); running without the nginx baseline" >&2
fi
case " $* " in
    *" --guard "*)
        if ! command -v redis-server >/dev/null 2>&1; then
            echo "bench.sh: redis-server not found (apt-get install -y redis-server); --guard measures Loom on Redis only with it" >&2
        fi ;;
esac
if [ -n "${PGO:-}" ]; then
    scripts/pgo.sh
    exec "$target/production/loom-bench" --loom-bin "$target/pgo/production/loom" "$@"
fi
cargo build --profile production -p loom -p loom-bench
exec "$target/production/loom-bench" "$@"
