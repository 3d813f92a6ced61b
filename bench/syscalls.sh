#!/usr/bin/env bash
# System calls per request of a Remora build: the bench upstream (100 B responses) and
# Remora (1 worker, stats off, one route) on 127.0.0.1, autocannon sends N requests
# (10 connections, keep-alive) while strace counts the Remora process's calls, every
# thread. Unlike req/s on a shared host, these counts do not wander: a change that
# saves a write shows up exactly. Needs strace (and ptrace permission).
#
#   bash bench/syscalls.sh [--remora DIR] [--method GET|POST] [--body-bytes 4096] [--requests 5000]
#
# DIR is a checkout with a build (default: this one), e.g. a worktree of an older commit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REMORA=$ROOT METHOD=GET BODY_BYTES=4096 N=5000
while [ $# -gt 0 ]; do
  case $1 in
    --remora) REMORA=$2; shift 2 ;;
    --method) METHOD=$2; shift 2 ;;
    --body-bytes) BODY_BYTES=$2; shift 2 ;;
    --requests) N=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v strace >/dev/null || { echo "strace is not installed" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

node "$ROOT/dist/bench/upstream-uws.js" 100 0 >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q '[0-9]' "$WORK/upstream.log" 2>/dev/null && break; sleep 0.1; done
UPORT=$(grep -o '[0-9]\+' "$WORK/upstream.log" | head -1)
cat >"$WORK/config.json" <<JSON
{"workers":1,"admin":{"address":"127.0.0.1","port":0},"stats":{"enabled":false},
 "listeners":[{"name":"bench","address":"127.0.0.1","port":0,"virtual_hosts":[{"name":"all","domains":["*"],"routes":[{"name":"all","match":{"prefix":"/"},"route":{"cluster":"upstream"}}]}]}],
 "clusters":[{"name":"upstream","endpoints":[{"address":"127.0.0.1","port":$UPORT}]}]}
JSON
node --max-semi-space-size=4 "$REMORA/bin/remora.js" run --config "$WORK/config.json" >"$WORK/remora.log" 2>&1 &
RPID=$!
PIDS+=($RPID)
for _ in $(seq 100); do grep -q '"remora ready"' "$WORK/remora.log" 2>/dev/null && break; sleep 0.1; done
PORT=$(grep -o '"listeners":{"bench":[0-9]*' "$WORK/remora.log" | grep -o '[0-9]*$')
ARGS=(-c 10 -m "$METHOD")
if [ "$METHOD" = POST ]; then ARGS+=(-b "$(head -c "$BODY_BYTES" /dev/zero | tr '\0' x)"); fi
AC="$ROOT/node_modules/.bin/autocannon"
"$AC" "${ARGS[@]}" -a 2000 "http://127.0.0.1:$PORT/" >/dev/null 2>&1 # warm-up
strace -f -c -o "$WORK/strace.txt" -p "$RPID" 2>/dev/null &
SPID=$!
sleep 0.5
"$AC" "${ARGS[@]}" -a "$N" "http://127.0.0.1:$PORT/" >"$WORK/autocannon.txt" 2>&1
kill -INT "$SPID"; wait "$SPID" 2>/dev/null || true
echo "$(cd "$REMORA" && git rev-parse --short HEAD 2>/dev/null || echo "$REMORA"): $METHOD$([ "$METHOD" = POST ] && echo " ${BODY_BYTES} B") x $N: $(grep -o '[0-9]*k\? requests in [0-9.]*s' "$WORK/autocannon.txt" | head -1)"
# strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall.
awk -v n="$N" '$NF ~ /^(read|write|writev|readv|sendmsg|recvmsg|sendto|recvfrom|epoll_wait|epoll_pwait)$/ { printf "  %-12s %6.2f per request\n", $NF, $4 / n }' "$WORK/strace.txt"
