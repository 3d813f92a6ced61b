#!/usr/bin/env bash
# What a worker's idle heap trim (worker_limits.idle_heap_trim_after_ms) costs the next
# burst. Two Remoras with 1 worker each, both on core 1 (`taskset`), in front of the bench
# upstream (100 B): one with the default trim (30 s) and one with it off (0). Each cycle
# drives both in turn with wrk on core 0 (50 connections) for --busy s, leaves both idle
# for --pause s (longer than the trim's quiet time, so the first one trims), then drives
# each for 2 s. Per run: the worker's CPU per request, the whole process's user + system
# time from /proc over the run divided by wrk's request count. Prints one line per run
# and the median per column; the "after pause" column is what the trim costs. Needs wrk
# and taskset.
#
#   bash bench/idle-trim-cost.sh [--cycles 3] [--pause 36] [--busy 4]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CYCLES=3 PAUSE=36 BUSY=4
while [ $# -gt 0 ]; do
  case $1 in
    --cycles) CYCLES=$2; shift 2 ;;
    --pause) PAUSE=$2; shift 2 ;;
    --busy) BUSY=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=lib/wrk-upstream.sh
. "$ROOT/bench/lib/wrk-upstream.sh"
declare -A PID PORT
for kind in trim off; do
  limits='{}'
  [ "$kind" = off ] && limits='{"idle_heap_trim_after_ms":0}'
  cat >"$WORK/$kind.json" <<JSON
{"workers":1,"admin":{"address":"127.0.0.1","port":0},"worker_limits":$limits,
 "listeners":[{"name":"bench","address":"127.0.0.1","port":0,"virtual_hosts":[{"name":"all","domains":["*"],"routes":[{"name":"all","match":{"prefix":"/"},"route":{"cluster":"upstream"}}]}]}],
 "clusters":[{"name":"upstream","endpoints":[{"address":"127.0.0.1","port":$UPORT}]}]}
JSON
  REMORA_LOG_LEVEL=debug taskset -c 1 node --max-semi-space-size=4 "$ROOT/bin/remora.js" run --config "$WORK/$kind.json" >"$WORK/$kind.log" 2>&1 &
  PID[$kind]=$!
  PIDS+=($!)
done
for kind in trim off; do
  PORT[$kind]=$(remora_port "$WORK/$kind.log")
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# µs of process CPU per request over `secs` s of wrk against `kind`.
run() {
  local kind=$1 secs=$2 c0 n c1
  c0=$(cpu_ticks "${PID[$kind]}")
  n=$(taskset -c 0 wrk -t1 -c50 -d"${secs}s" "http://127.0.0.1:${PORT[$kind]}/" | awk '/requests in/ {print $1}')
  c1=$(cpu_ticks "${PID[$kind]}")
  awk -v t=$((c1 - c0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }'
}

for kind in trim off; do run "$kind" 3 >/dev/null; done # warm-up
echo "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null): µs of CPU per request, 1 worker, wrk 50 connections; busy ${BUSY} s, pause ${PAUSE} s, then 2 s"
printf '%-6s %-12s %-12s %-16s %-16s\n' cycle "trim busy" "off busy" "trim after pause" "off after pause"
: >"$WORK/rows"
for k in $(seq "$CYCLES"); do
  tb=$(run trim "$BUSY"); ob=$(run off "$BUSY")
  sleep "$PAUSE"
  ta=$(run trim 2); oa=$(run off 2)
  printf '%-6s %-12s %-12s %-16s %-16s\n' "$k" "$tb" "$ob" "$ta" "$oa"
  echo "$tb $ob $ta $oa" >>"$WORK/rows"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
printf '%-6s %-12s %-12s %-16s %-16s\n' median "$(cut -d' ' -f1 "$WORK/rows" | median)" "$(cut -d' ' -f2 "$WORK/rows" | median)" "$(cut -d' ' -f3 "$WORK/rows" | median)" "$(cut -d' ' -f4 "$WORK/rows" | median)"
echo "collections once idle: trim $(grep -c 'collected once idle' "$WORK/trim.log" || true), off $(grep -c 'collected once idle' "$WORK/off.log" || true)"
