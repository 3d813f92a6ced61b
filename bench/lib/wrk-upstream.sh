# Sourced by the shell benchmarks that drive Remora with wrk (idle-trim-cost.sh,
# idle-penalty.sh): checks for wrk, makes $WORK (removed on exit, with every pid in PIDS
# stopped), and starts the bench upstream (100 B) on core 0, its port in $UPORT; defines
# remora_port. Needs $ROOT.

command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

taskset -c 0 node "$ROOT/dist/bench/upstream-uws.js" 100 0 >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q '[0-9]' "$WORK/upstream.log" 2>/dev/null && break; sleep 0.1; done
UPORT=$(grep -o '[0-9]\+' "$WORK/upstream.log" | head -1)

# The port of listener "bench" of the Remora whose output goes to log file $1, once it
# has logged "remora ready" (10 s at most).
remora_port() {
  for _ in $(seq 100); do grep -q '"remora ready"' "$1" 2>/dev/null && break; sleep 0.1; done
  grep -o '"listeners":{"bench":[0-9]*' "$1" | grep -o '[0-9]*$'
}
