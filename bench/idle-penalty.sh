#!/usr/bin/env bash
# Whether a worker is slower after an idle spell than before it. A Remora with 1 worker on
# core 1 (`taskset`), Remora's defaults, in front of the bench upstream (100 B), driven
# by wrk on core 0 (50 connections): --busy s of warm-up, --busy s of load, --pause s
# idle (longer than V8's memory reducer and the worker's idle heap trim take to run a
# full collection), then --after runs of --busy s each. Once per Node binary given, and once more per binary
# with the full collections while idle turned off (`node --no-memory-reducer` and
# `worker_limits.idle_heap_trim_after_ms: 0`), which tells whether the collection is the
# cause. Prints req/s per run. Needs wrk and taskset.
#
#   bash bench/idle-penalty.sh [--node node,/path/to/node24] [--pause 36] [--busy 4] [--after 3]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=node PAUSE=36 BUSY=4 AFTER=3
while [ $# -gt 0 ]; do
  case $1 in
    --node) NODES=$2; shift 2 ;;
    --pause) PAUSE=$2; shift 2 ;;
    --busy) BUSY=$2; shift 2 ;;
    --after) AFTER=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=lib/wrk-upstream.sh
. "$ROOT/bench/lib/wrk-upstream.sh"

rps() { taskset -c 0 wrk -t1 -c50 -d"${BUSY}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {printf "%d", $2}'; }

echo "Remora 1 worker on core 1, wrk -t1 -c50 on core 0; ${BUSY} s runs, ${PAUSE} s idle; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "| node | full collections while idle | before (req/s) | after the idle spell (req/s) | after / before |"
echo "|---|---|---|---|---|"
IFS=, read -ra BINARIES <<<"$NODES"
for bin in "${BINARIES[@]}"; do
  for mode in on off; do
    limits='{}' flags=()
    if [ "$mode" = off ]; then limits='{"idle_heap_trim_after_ms":0}'; flags=(--no-memory-reducer); fi
    cat >"$WORK/$mode.json" <<JSON
{"workers":1,"admin":{"address":"127.0.0.1","port":0},"worker_limits":$limits,
 "listeners":[{"name":"bench","address":"127.0.0.1","port":0,"virtual_hosts":[{"name":"all","domains":["*"],"routes":[{"name":"all","match":{"prefix":"/"},"route":{"cluster":"upstream"}}]}]}],
 "clusters":[{"name":"upstream","endpoints":[{"address":"127.0.0.1","port":$UPORT}]}]}
JSON
    taskset -c 1 "$bin" "${flags[@]}" "$ROOT/bin/remora.js" run --config "$WORK/$mode.json" >"$WORK/remora.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    port=$(remora_port "$WORK/remora.log")
    rps "$port" >/dev/null # warm-up: the JIT's first seconds
    before=$(rps "$port")
    sleep "$PAUSE"
    after=()
    for _ in $(seq "$AFTER"); do after+=("$(rps "$port")"); done
    last=${after[$((AFTER - 1))]}
    ratio=$(awk -v a="$last" -v b="$before" 'BEGIN { printf "%.2f", a / b }')
    echo "| $("$bin" --version) | $mode | $before | ${after[*]} | $ratio (last run) |"
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
done
