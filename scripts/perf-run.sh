#!/usr/bin/env bash
# Run the standard load scenarios against a running server, RUNS times each, and print the
# median of each figure (and every run's JSON line to $OUT).
#
#   scripts/perf-run.sh LABEL HOST:PORT SERVER_PID [RUNS]
#
# Pin the server and the generator apart for figures that mean something, e.g. server on
# CPU 0 and this script on CPU 1:  taskset -c 1 scripts/perf-run.sh rustircd 127.0.0.1:6667 $PID
set -euo pipefail
cd "$(dirname "$0")/.."
LABEL=$1 SERVER=$2 PID=$3 RUNS=${4:-3}
LT=${LOADTEST:-target/release/rustircd-loadtest}
OUT=${OUT:-/tmp/perf-$LABEL.jsonl}
: > "$OUT"
run() {
  local name=$1; shift
  for i in $(seq 1 "$RUNS"); do
    "$LT" "$@" --server "$SERVER" --server-pid "$PID" --json | tail -n1 | sed "s/^{/{\"label\":\"$name\",/" >> "$OUT"
    sleep 1
  done
}
run fanout-100x50-1k   channel-load --channels 100 --users-per-channel 50 --rate 1000 --duration 10
run fanout-20x50-max   channel-load --channels 20 --users-per-channel 50 --rate 0 --duration 10
run privmsg-50pairs-max message-throughput --pairs 50 --rate 0 --duration 10
run privmsg-100k       message-throughput --pairs 100 --rate 100000 --duration 10
run big-1000           big-channel --members 1000 --messages 20
python3 - "$OUT" "$LABEL" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)
def med(rs, f):
    vals = [f(r) for r in rs]
    return statistics.median(vals)
print(f"== {sys.argv[2]}: medians of {len(next(iter(by.values())))} runs")
for label, rs in by.items():
    if "deliveries_per_second" in rs[0]:
        print(f"{label:22} {med(rs, lambda r: r['deliveries_per_second']):>10.0f} deliveries/s  p50 {med(rs, lambda r: r['delivery_latency_us']['p50']):>6.0f} µs  p99 {med(rs, lambda r: r['delivery_latency_us']['p99']):>6.0f} µs  lost {med(rs, lambda r: r['lost']):.0f}  server CPU {med(rs, lambda r: r.get('server_cpu_percent', 0)):.0f}%  generator CPU {med(rs, lambda r: r['generator_cpu_percent']):.0f}%")
    elif "delivered_per_second" in rs[0]:
        print(f"{label:22} {med(rs, lambda r: r['delivered_per_second']):>10.0f} msg/s         p50 {med(rs, lambda r: r['delivery_latency_us']['p50']):>6.0f} µs  p99 {med(rs, lambda r: r['delivery_latency_us']['p99']):>6.0f} µs  lost {med(rs, lambda r: r['lost']):.0f}  server CPU {med(rs, lambda r: r.get('server_cpu_percent', 0)):.0f}%  generator CPU {med(rs, lambda r: r['generator_cpu_percent']):.0f}%")
    elif "join_to_366_us" in rs[0]:
        print(f"{label:22} JOIN→366 {med(rs, lambda r: r['join_to_366_us']):.0f} µs  NAMES {med(rs, lambda r: r['names_us']):.0f} µs  PRIVMSG→last {med(rs, lambda r: r['privmsg_last_arrival_us']):.0f} µs")
PY
