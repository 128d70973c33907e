#!/usr/bin/env bash
# Count the instructions Loom (or the bare hyper proxy, or nginx) spends per request, with callgrind:
# repeatable whatever else the machine does, unlike timings. See docs/benchmarks.md.
#
#   scripts/instructions.sh [loom|loom-guard|loom-redis|loom-checks|hyper|nginx] [whole|stream] [REQUESTS]
#
# Starts the mock upstream and the target under valgrind on loopback ports, warms up with
# 200 requests, counts REQUESTS (default 2000) sequential keep-alive requests, and prints
# instructions per request and the 25 functions with the most (inclusive) instructions.
# loom-guard is Loom with a virtual key, a request limit and a token limit in memory
# (loom-bench --guard's config); loom-redis the same on a redis-server it starts (Redis's
# own instructions are not counted); loom-checks is Loom with the default security checks
# (loom-bench --checks's config);
# KEEP_PROFILE=1 keeps the callgrind profile. Needs valgrind and the binaries of the cargo
# profile PROFILE (default production: cargo build --profile production -p loom -p loom-bench);
# BENCH_LOOM_BIN=PATH counts another Loom binary (e.g. the PGO build of scripts/pgo.sh; not
# LOOM_..., which Loom would read as a config override).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-loom}
workload=${2:-whole}
requests=${3:-2000}
bin="${CARGO_TARGET_DIR:-target}/${PROFILE:-production}"
work=$(mktemp -d /tmp/loom-instructions-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "${KEEP_PROFILE:-}" ]; then echo "profile kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock_port=$(free_port)
port=$(free_port)
"$bin/loom-bench" mock --listen "127.0.0.1:$mock_port" >/dev/null &
pids+=($!)
guard=()
case "$target" in
    loom-guard) guard=(--guard) ;;
    loom-checks) guard=(--checks) ;;
    loom-redis)
        redis_port=$(free_port)
        redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --logfile '' \
            --loglevel warning >/dev/null &
        pids+=($!)
        guard=(--guard --redis "127.0.0.1:$redis_port") ;;
esac
case "$target" in
    loom|loom-guard|loom-redis|loom-checks)
        # loom-bench's own Loom config, on one worker and without the admin server.
        "$bin/loom-bench" loom-config --listen "127.0.0.1:$port" --admin "127.0.0.1:$(free_port)" \
            --upstream "127.0.0.1:$mock_port" "${guard[@]}" >"$work/loom.yaml"
        export LOOM_SERVER__WORKERS=1 LOOM_ADMIN__ENABLED=false
        # What the binary would set by re-executing itself, which valgrind would not follow.
        export MIMALLOC_ARENA_EAGER_COMMIT=${MIMALLOC_ARENA_EAGER_COMMIT:-0}
        command=("${BENCH_LOOM_BIN:-$bin/loom}" --config "$work/loom.yaml") ;;
    hyper) command=("$bin/loom-bench" bare-proxy --listen "127.0.0.1:$port" --upstream "127.0.0.1:$mock_port") ;;
    nginx)
        # loom-bench's own nginx config, as one process (no master, so one worker).
        mkdir -p "$work/nginx"
        { echo "daemon off; master_process off;"
          "$bin/loom-bench" nginx-config --dir "$work/nginx" --listen "127.0.0.1:$port" --upstream "127.0.0.1:$mock_port"
        } >"$work/nginx/nginx.conf"
        nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
        command=("$nginx_bin" -c "$work/nginx/nginx.conf" -p "$work/nginx") ;;
    *) echo "target must be loom, loom-guard, loom-redis, hyper or nginx" >&2; exit 2 ;;
esac
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "${command[@]}" >/dev/null 2>"$work/valgrind.log" &
valgrind_pid=$!
pids+=($valgrind_pid)

drive() {
    python3 - "$port" "$1" "$workload" <<'PY'
import http.client, sys
port, count, workload = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
stream = ',"stream":true' if workload == "stream" else ""
body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]%s}' % stream
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    connection.request("POST", "/v1/chat/completions", body,
                       {"content-type": "application/json", "authorization": "Bearer sk-bench"})
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        sys.exit(f"status {response.status}: {answer[:200]!r}")
PY
}
for _ in $(seq 150); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
done
drive 200
callgrind_control -z "$valgrind_pid" >/dev/null
drive "$requests"
callgrind_control -d "$valgrind_pid" >/dev/null
profile=$(ls "$work"/callgrind.out.* | head -1)
total=$(callgrind_annotate "$profile" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$target $workload: $((total / requests)) instructions per request ($requests requests)"
callgrind_annotate --inclusive=yes "$profile" 2>/dev/null | grep -E '^ *[0-9,]+ ' | sed -n '2,26p' |
    sed -E 's#/root/.cargo/registry/src/[^/]+/##; s#/rustc/[0-9a-f]+/##' | cut -c1-160
