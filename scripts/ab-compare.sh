#!/usr/bin/env bash
# A/B of two server builds on the load scenarios, interleaved (before, after, before, ...),
# a fresh server per run, the server on CPU 0 with --cores 1 and the generator on CPU 1.
#
#   scripts/ab-compare.sh BEFORE_BIN AFTER_BIN [ROUNDS]
#
# Prints the median of each figure per build; every run's JSON line goes to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=$1 AFTER=$2 ROUNDS=${3:-3}
LT=${LOADTEST:-target/release/rustircd-loadtest}
OUT=${OUT:-/tmp/ab-compare.jsonl}
: > "$OUT"
ulimit -n 20000
port=7300
scen() {
  local label=$1; shift
  for b in before after; do
    local bin=$BEFORE; [ "$b" = after ] && bin=$AFTER
    port=$((port + 1))
    taskset -c 0 "$bin" --cores 1 --listen "127.0.0.1:$port" >/dev/null 2>&1 &
    local pid=$!
    sleep 0.7
    taskset -c 1 timeout 120 "$LT" "$@" --server "127.0.0.1:$port" --server-pid "$pid" --json --quiet 2>/dev/null \
      | tail -n1 | sed "s/^{/{\"build\":\"$b\",\"label\":\"$label\",/" >> "$OUT" || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
    sleep 1
  done
}
for _ in $(seq 1 "$ROUNDS"); do
  scen fanout-100x50-1k channel-load --channels 100 --users-per-channel 50 --rate 1000 --duration 10
  scen fanout-20x50-max channel-load --channels 20 --users-per-channel 50 --rate 0 --duration 10
  scen big-1000 big-channel --members 1000 --messages 20
  scen mem-10k connection-stress --clients 10000 --rate 5000
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["label"], r["build"]), []).append(r)
med = lambda rs, f: statistics.median(f(r) for r in rs)
for (label, b), rs in sorted(by.items()):
    if "deliveries_per_second" in rs[0]:
        print(f"{label:18} {b:6} {med(rs, lambda r: r['deliveries_per_second']):>10.0f} deliveries/s  p50 {med(rs, lambda r: r['delivery_latency_us']['p50']):>6.0f} µs  p99 {med(rs, lambda r: r['delivery_latency_us']['p99']):>6.0f} µs  server CPU {med(rs, lambda r: r.get('server_cpu_percent', 0)):.1f}%")
    elif "join_to_366_us" in rs[0]:
        print(f"{label:18} {b:6} JOIN→366 {med(rs, lambda r: r['join_to_366_us']):.0f} µs  NAMES {med(rs, lambda r: r['names_us']):.0f} µs  PRIVMSG→last {med(rs, lambda r: r['privmsg_last_arrival_us']):.0f} µs")
    elif "server_bytes_per_connection" in rs[0]:
        print(f"{label:18} {b:6} {med(rs, lambda r: r['server_bytes_per_connection']):.0f} bytes per connection")
PY
