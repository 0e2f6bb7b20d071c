#!/usr/bin/env bash
# How rustircd scales with cores: the figure docs/scaling.md asks for. For each core count N,
# a fresh `rustircd --cores N` per run, pinned to N server CPUs (taskset; the server pins shard
# i to the i-th CPU it may use), the load generator pinned to other CPUs; the same scenarios
# for every N, ROUNDS rounds interleaved (every N once per round), every run's JSON line kept,
# and a table of medians at the end.
#
#   scripts/scale-cores.sh [--cores 1,2,4,8] [--rounds R] [--duration S] [--out DIR] [--hgrm]
#
# Environment (defaults in brackets):
#   CORES         core counts ["1 2 4 8 …" up to the number of SERVER_CPUS]
#   SERVER_CPUS   CPUs the server may use, a taskset list [the first half of the CPUs this
#                 script may use; 0 on a 2-CPU machine]
#   GEN_CPUS      CPUs of the load generator [the other CPUs]
#   GEN_THREADS   generator threads for channel-load / message-throughput [number of GEN_CPUS]
#   ROUNDS [3]  DURATION [10] (seconds of sending per throughput run)
#   SCENARIOS     ["chan-sat chan-fixed part-sat pm-sat reg mem mem-chan"]
#     chan-sat    channel-load, CHANNELS × MEMBERS, --rate 0 (saturation): deliveries/s, P50/P99
#     chan-fixed  the same channels at FIXED_RATE messages/s in all: latency at equal load
#     part-sat    the reference for "channels local to a shard": N independent `--cores 1`
#                 servers (one per server CPU, no mesh), CHANNELS/N channels each, loaded at once;
#                 deliveries/s summed (P50: median of the servers', P99: the worst)
#     pm-sat      message-throughput, PAIRS pairs, --rate 0: private messages/s
#     reg         connection-stress, REG_CLIENTS clients --rate 0, from REG_PROCS generator
#                 processes at once (the scenario is single-threaded): registrations/s summed
#     mem         connection-stress, MEM_CLIENTS clients at MEM_RATE/s: server bytes per connection
#     mem-chan    channel-load setup, MEM_CLIENTS clients in channels of MEMBERS, 1 s at 100 msg/s:
#                 server RSS growth per client with one channel membership each
#   CHANNELS [100] MEMBERS [50] FIXED_RATE [1000] PAIRS [100]
#   REG_CLIENTS [10000] REG_PROCS [GEN_THREADS] MEM_CLIENTS [10000] MEM_RATE [5000]
#   HGRM [0]      1: --hgrm per run (latency distribution + SVG) into OUT, and one plot per
#                 scenario across core counts (round 1)
#   BIN [the repository's target/release]  where rustircd and rustircd-loadtest are
#   CONFIG        a config file for the server [the embedded one]
#   OUT [/tmp/scale-cores-<date>]  results.jsonl (one line per run), run-*.jsonl (per generator process),
#                 server logs, .hgrm files
#   SETUP_TIMEOUT [180]  seconds a run may take beyond DURATION before it is killed
#
# On a host with SMT, give SERVER_CPUS and GEN_CPUS whole physical cores (`lscpu -e`): the
# script warns when a server CPU's hyperthread sibling is a generator CPU.
set -uo pipefail
START_DIR=$PWD
cd "$(dirname "$0")/.."

die() { echo "scale-cores: $*" >&2; exit 2; }
warn() { echo "scale-cores: WARNING: $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --cores) CORES=${2//,/ }; shift 2 ;;
    --cores=*) CORES=${1#--cores=}; CORES=${CORES//,/ }; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --hgrm) HGRM=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

# Relative paths the caller gives are the caller's; the defaults are the repository's.
from_start() { case $1 in /*) echo "$1" ;; *) echo "$START_DIR/$1" ;; esac; }
BIN=$(if [ -n "${BIN:-}" ]; then from_start "$BIN"; else echo target/release; fi)
[ -z "${CONFIG:-}" ] || CONFIG=$(from_start "$CONFIG")
[ -z "${OUT:-}" ] || OUT=$(from_start "$OUT")
SERVER=$BIN/rustircd
LOADTEST=$BIN/rustircd-loadtest
[ -x "$SERVER" ] && [ -x "$LOADTEST" ] || die "need $SERVER and $LOADTEST (cargo build --release --workspace)"
SERVER=$(realpath "$SERVER"); LOADTEST=$(realpath "$LOADTEST")
command -v python3 >/dev/null || die "needs python3 (JSON handling)"
command -v taskset >/dev/null || die "needs taskset (util-linux)"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
SCENARIOS=${SCENARIOS:-"chan-sat chan-fixed part-sat pm-sat reg mem mem-chan"}
CHANNELS=${CHANNELS:-100}
MEMBERS=${MEMBERS:-50}
FIXED_RATE=${FIXED_RATE:-1000}
PAIRS=${PAIRS:-100}
REG_CLIENTS=${REG_CLIENTS:-10000}
MEM_CLIENTS=${MEM_CLIENTS:-10000}
MEM_RATE=${MEM_RATE:-5000}
for s in $SCENARIOS; do
  case $s in chan-sat|chan-fixed|part-sat|pm-sat|reg|mem|mem-chan) ;; *) die "unknown scenario $s (see --help)" ;; esac
done
HGRM=${HGRM:-0}
SETUP_TIMEOUT=${SETUP_TIMEOUT:-180}
OUT=${OUT:-/tmp/scale-cores-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/srv" || die "cannot create $OUT"
OUT=$(realpath "$OUT")

# --- CPUs ---------------------------------------------------------------------------------
# "0-3,8,10-11" -> "0 1 2 3 8 10 11"
expand() {
  local part a b out=()
  for part in ${1//,/ }; do
    if [[ $part == *-* ]]; then a=${part%-*}; b=${part#*-}; for ((; a <= b; a++)); do out+=("$a"); done
    else out+=("$part"); fi
  done
  echo "${out[*]}"
}
join_cpus() { local IFS=,; echo "$*"; }
ALLOWED=($(expand "$(taskset -pc $$ | sed 's/.*: *//')"))
if [ -z "${SERVER_CPUS:-}" ]; then
  half=$(( ${#ALLOWED[@]} / 2 )); [ "$half" -ge 1 ] || half=1
  SERVER_CPUS=$(join_cpus "${ALLOWED[@]:0:$half}")
  [ -n "${GEN_CPUS:-}" ] || GEN_CPUS=$(join_cpus "${ALLOWED[@]:$half}")
fi
S_CPUS=($(expand "$SERVER_CPUS"))
[ -n "${GEN_CPUS:-}" ] || GEN_CPUS=$(join_cpus $(for c in "${ALLOWED[@]}"; do [[ " ${S_CPUS[*]} " == *" $c "* ]] || echo "$c"; done))
[ -n "$GEN_CPUS" ] || { warn "no CPU left for the generator: it shares the server's"; GEN_CPUS=$SERVER_CPUS; }
G_CPUS=($(expand "$GEN_CPUS"))
GEN_THREADS=${GEN_THREADS:-${#G_CPUS[@]}}
REG_PROCS=${REG_PROCS:-$GEN_THREADS}
for c in "${S_CPUS[@]}"; do
  sib=/sys/devices/system/cpu/cpu$c/topology/thread_siblings_list
  [ -r "$sib" ] || continue
  for s in $(expand "$(cat "$sib")"); do
    [[ " ${G_CPUS[*]} " == *" $s "* ]] && warn "server CPU $c and generator CPU $s are hyperthreads of one core"
  done
done

if [ -z "${CORES:-}" ]; then
  CORES=""; n=1
  while [ "$n" -le "${#S_CPUS[@]}" ]; do CORES="$CORES $n"; n=$((n * 2)); done
  [[ " $CORES " == *" ${#S_CPUS[@]} "* ]] || CORES="$CORES ${#S_CPUS[@]}"
fi
CORES=${CORES//,/ }
RUN_CORES=()
for n in $CORES; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "core count '$n' is not a number"
  if [ "$n" -gt "${#ALLOWED[@]}" ]; then warn "--cores $n: only ${#ALLOWED[@]} CPUs here; skipped"; continue; fi
  if [ "$n" -gt "${#S_CPUS[@]}" ]; then
    warn "--cores $n: more shards than server CPUs (${SERVER_CPUS}): the server also gets generator CPUs, shards share cores with the load generator — not a scaling result"
  fi
  RUN_CORES+=("$n")
done
[ "${#RUN_CORES[@]}" -gt 0 ] || die "no core count to run"

# The server's CPUs for N shards: the first N server CPUs, then (sharing) generator CPUs.
cpus_for() {
  local n=$1 pool=("${S_CPUS[@]}")
  for c in "${G_CPUS[@]}" "${ALLOWED[@]}"; do [[ " ${pool[*]} " == *" $c "* ]] || pool+=("$c"); done
  join_cpus "${pool[@]:0:$n}"
}

# --- processes: every one started is remembered and stopped on exit ---------------------------
# (Only children of this shell, each forgotten once reaped, so that a recycled PID is never hit.)
PIDS=()
forget_pid() {
  local p keep=()
  for p in ${PIDS[@]+"${PIDS[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=(${keep[@]+"${keep[@]}"})
}
# wait_pid PID: waits for a child, returns its status, forgets it.
wait_pid() {
  local rc=0
  wait "$1" 2>/dev/null || rc=$?
  forget_pid "$1"
  return "$rc"
}
# stop_pid PID: SIGTERM, up to 5 s, then SIGKILL; reaps it.
stop_pid() {
  local p=$1 i
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  fi
  wait_pid "$p"
  return 0
}
cleanup() {
  local p
  for p in ${PIDS[@]+"${PIDS[@]}"}; do stop_pid "$p"; done
}
trap cleanup EXIT
trap 'echo "scale-cores: interrupted" >&2; exit 130' INT TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# start_server N CPUS LOG: sets SPID and SPORT (0 on failure).
start_server() {
  local n=$1 cpus=$2 log=$3 i
  local args=(--cores "$n" --listen 127.0.0.1:0)
  [ -n "${CONFIG:-}" ] && args+=(--config "$CONFIG")
  (cd "$OUT/srv" && exec taskset -c "$cpus" "$SERVER" "${args[@]}") >/dev/null 2>"$log" &
  SPID=$!; PIDS+=("$SPID"); SPORT=0
  for i in $(seq 1 100); do
    grep -q " ready: " "$log" 2>/dev/null && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  SPORT=$(sed -n 's/.*Listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n1)
  if [ -z "$SPORT" ] || ! grep -q " ready: " "$log"; then
    warn "server (--cores $n on CPUs $cpus) did not start:"; tail -n5 "$log" >&2; SPORT=0; return 1
  fi
  local want=(${cpus//,/ }) got
  for ((i = 0; i < n; i++)); do
    got=$(sed -n "s/.*Shard $i pinned to CPU \([0-9]*\).*/\1/p" "$log")
    [ "$got" = "${want[$i]}" ] || warn "shard $i pinned to CPU '$got', expected ${want[$i]}"
  done
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# harness SERVER_PORT SERVER_PID RAWFILE ARGS...: one generator process, in the background (its
# PID in HPID), bounded by `timeout`, its JSON line appended to RAWFILE.
harness() {
  local port=$1 pid=$2 raw=$3; shift 3
  timeout -k 5 $((DURATION + SETUP_TIMEOUT)) taskset -c "$GEN_CPUS" "$LOADTEST" "$@" \
    --server "127.0.0.1:$port" --server-pid "$pid" --json --quiet >>"$raw" 2>>"$OUT/harness.err" &
  HPID=$!; PIDS+=("$HPID")
}

# record LABEL N ROUND CPUS RAWFILE GEN_THREADS [EXTRA_JSON]: the run's line(s) -> one line in
# results.jsonl.
record() {
  python3 - "$@" >>"$OUT/results.jsonl" <<'PY'
import json, statistics, sys
label, n, rnd, cpus, raw, gt = sys.argv[1:7]
extra = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
rows = []
for l in open(raw):
    l = l.strip()
    if l.startswith("{"):
        try: rows.append(json.loads(l))
        except ValueError: pass
out = {"label": label, "cores": int(n), "round": int(rnd), "server_cpus": cpus, "gen_threads": int(gt), "procs": len(rows)}
out.update(extra)
if not rows:
    out["error"] = "no result (see harness.err and the server log)"
    print(json.dumps(out)); sys.exit()
# mem and mem-chan weigh the server; their rates and latencies are not the point.
memory = label in ("mem", "mem-chan")
lat = None if memory else next((k for k in rows[0] if k.endswith("_latency_us")), None)
rate = None if memory else next((k for k in ("deliveries_per_second", "delivered_per_second", "registrations_per_second") if k in rows[0]), None)
if rate: out["rate"] = sum(r.get(rate, 0) for r in rows); out["rate_unit"] = rate
if lat:
    out["p50_us"] = statistics.median(r[lat]["p50"] for r in rows)
    out["p99_us"] = max(r[lat]["p99"] for r in rows)
for k in ("lost", "failures", "disconnects"):
    if k in rows[0]: out[k] = sum(r.get(k, 0) for r in rows)
out["generator_cpu_percent"] = round(sum(r.get("generator_cpu_percent", 0) for r in rows), 1)
if "server_cpu_percent" in rows[0]:
    cpus = [r.get("server_cpu_percent", 0) for r in rows]
    # part-sat: one server per generator process (their sum); reg: one server seen by each (the most).
    out["server_cpu_percent"] = round(sum(cpus), 1) if label == "part-sat" else max(cpus)
if label == "mem" and "server_bytes_per_connection" in rows[0]: out["bytes_per_conn"] = rows[0]["server_bytes_per_connection"]
if "rss_before_kib" in extra and len(rows) == 1 and "server_rss_kib" in rows[0]:
    clients = int(extra["clients"])
    out["bytes_per_conn"] = round((rows[0]["server_rss_kib"] - extra["rss_before_kib"]) * 1024 / clients)
out["runs"] = rows
print(json.dumps(out))
PY
  tail -n1 "$OUT/results.jsonl" | python3 <(cat <<'PY'
import json, sys
r = json.loads(sys.stdin.read())
head = f"  {r['label']:10} cores {r['cores']} (CPUs {r['server_cpus']}):"
if "error" in r:
    print(f"{head} ERROR {r['error']}"); sys.exit()
s = head
if "rate" in r: s += f" {r['rate']:,.0f} {r['rate_unit'].replace('_per_second', '/s')}"
if "p99_us" in r: s += f", P50 {r['p50_us']:,.0f} µs, P99 {r['p99_us']:,.0f} µs"
if "bytes_per_conn" in r: s += f" {r['bytes_per_conn']:,.0f} bytes per connection"
if "server_cpu_percent" in r: s += f", server CPU {r['server_cpu_percent']}%"
s += f", generator CPU {r['generator_cpu_percent']}%"
for k in ("lost", "failures"):
    if r.get(k): s += f", {k} {r[k]}"
print(s)
PY
)
}

hgrm_arg() { [ "$HGRM" = 1 ] && echo "--hgrm $OUT/$1-c$2-r$3.hgrm"; }

# run LABEL N ROUND: one scenario against fresh server(s).
run() {
  local label=$1 n=$2 rnd=$3 cpus raw="$OUT/run-$1-c$2-r$3.jsonl" log="$OUT/srv/$1-c$2-r$3.log" extra="{}"
  # Generator threads this run uses in all (to tell a generator-bound run).
  local gt=$(( GEN_THREADS < CHANNELS ? GEN_THREADS : CHANNELS ))
  cpus=$(cpus_for "$n")
  : >"$raw"
  local hp=() sp=() ports=() p i rc
  case $label in
    part-sat)
      local each=$(( (CHANNELS + n - 1) / n )) th=$(( GEN_THREADS / n )) c
      [ "$th" -ge 1 ] || th=1
      gt=$(( th * n ))
      for ((i = 0; i < n; i++)); do
        c=$(echo "$cpus" | cut -d, -f$((i + 1)))
        if ! start_server 1 "$c" "${log%.log}-s$i.log"; then
          stop_pid "$SPID"; for p in ${sp[@]+"${sp[@]}"}; do stop_pid "$p"; done
          record "$label" "$n" "$rnd" "$cpus" "$raw" "$gt"; return
        fi
        sp+=("$SPID"); ports+=("$SPORT")
      done
      for ((i = 0; i < n; i++)); do
        harness "${ports[$i]}" "${sp[$i]}" "$raw" channel-load --channels "$each" --users-per-channel "$MEMBERS" \
          --rate 0 --duration "$DURATION" --threads "$th" $(hgrm_arg "$label-s$i" "$n" "$rnd")
        hp+=("$HPID")
      done
      ;;
    *)
      start_server "$n" "$cpus" "$log" || { stop_pid "$SPID"; record "$label" "$n" "$rnd" "$cpus" "$raw" "$gt"; return; }
      sp=("$SPID")
      case $label in
        chan-sat) harness "$SPORT" "$SPID" "$raw" channel-load --channels "$CHANNELS" --users-per-channel "$MEMBERS" \
                    --rate 0 --duration "$DURATION" --threads "$GEN_THREADS" $(hgrm_arg "$label" "$n" "$rnd"); hp=("$HPID") ;;
        chan-fixed) harness "$SPORT" "$SPID" "$raw" channel-load --channels "$CHANNELS" --users-per-channel "$MEMBERS" \
                    --rate "$FIXED_RATE" --duration "$DURATION" --threads "$GEN_THREADS" $(hgrm_arg "$label" "$n" "$rnd"); hp=("$HPID") ;;
        pm-sat) gt=$(( GEN_THREADS < PAIRS ? GEN_THREADS : PAIRS ))
                harness "$SPORT" "$SPID" "$raw" message-throughput --pairs "$PAIRS" --rate 0 --duration "$DURATION" \
                    --threads "$GEN_THREADS" $(hgrm_arg "$label" "$n" "$rnd"); hp=("$HPID") ;;
        reg)
          local each=$(( REG_CLIENTS / REG_PROCS )); gt=$REG_PROCS
          for ((i = 0; i < REG_PROCS; i++)); do
            harness "$SPORT" "$SPID" "$raw" connection-stress --clients "$each" --rate 0; hp+=("$HPID")
          done ;;
        mem) gt=1; harness "$SPORT" "$SPID" "$raw" connection-stress --clients "$MEM_CLIENTS" --rate "$MEM_RATE"; hp=("$HPID") ;;
        mem-chan)
          local ch=$(( MEM_CLIENTS / MEMBERS ))
          sleep 0.5
          gt=1; extra="{\"rss_before_kib\": $(rss_kib "$SPID"), \"clients\": $((ch * MEMBERS))}"
          harness "$SPORT" "$SPID" "$raw" channel-load --channels "$ch" --users-per-channel "$MEMBERS" --rate 100 \
            --duration 1 --threads 1; hp=("$HPID") ;;
      esac
      ;;
  esac
  for p in ${hp[@]+"${hp[@]}"}; do
    rc=0; wait_pid "$p" || rc=$?
    [ "$rc" = 0 ] || warn "$label --cores $n round $rnd: a generator exited with $rc (124: timed out; see $OUT/harness.err)"
  done
  for p in "${sp[@]}"; do stop_pid "$p"; done
  record "$label" "$n" "$rnd" "$cpus" "$raw" "$gt" "$extra"
  sleep 1   # let the machine settle between runs
}

{
  echo "scale-cores: $(date -Is) on $(hostname), $(nproc) CPUs allowed (${ALLOWED[*]})"
  echo "  server CPUs: $SERVER_CPUS   generator CPUs: $GEN_CPUS, $GEN_THREADS threads, $REG_PROCS registration processes"
  echo "  core counts: ${RUN_CORES[*]}   rounds: $ROUNDS   duration: ${DURATION}s   scenarios: $SCENARIOS"
  echo "  channels: $CHANNELS × $MEMBERS members, fixed rate $FIXED_RATE msg/s; pairs: $PAIRS; reg clients: $REG_CLIENTS; mem clients: $MEM_CLIENTS at $MEM_RATE/s"
  echo "  server: $SERVER ($("$SERVER" --version 2>/dev/null))   out: $OUT"
} | tee "$OUT/header.txt"
: >"$OUT/results.jsonl"

for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r of $ROUNDS"
  for n in "${RUN_CORES[@]}"; do
    for s in $SCENARIOS; do run "$s" "$n" "$r"; done
  done
done

if [ "$HGRM" = 1 ]; then
  for s in chan-sat chan-fixed pm-sat; do
    files=(); for n in "${RUN_CORES[@]}"; do f=$OUT/$s-c$n-r1.hgrm; [ -f "$f" ] && files+=("$f"); done
    [ "${#files[@]}" -gt 0 ] && "$LOADTEST" plot --out "$OUT/$s-by-cores.svg" "${files[@]}" >/dev/null 2>&1 \
      && echo "plot: $OUT/$s-by-cores.svg"
  done
fi

echo
MEMBERS=$MEMBERS S_COUNT=${#S_CPUS[@]} python3 - "$OUT/results.jsonl" <<'PY' | tee "$OUT/summary.txt"
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
members, s_count = int(os.environ["MEMBERS"]), int(os.environ["S_COUNT"])
by, order = {}, []
for r in rows:
    by.setdefault((r["label"], r["cores"]), []).append(r)
    if r["label"] not in order: order.append(r["label"])
med = statistics.median
def m(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return med(v) if v else None
def fmt(v, d=0):
    return "-" if v is None else f"{v:,.{d}f}"
print(f"Medians of the rounds [min–max]. vs 1: rate ÷ rate at 1 core (memory: difference). CPU µs/unit: server")
print(f"CPU time per delivery, message or registration. G: generator-bound (its CPU ≥ 90% × its threads);")
print(f"S: shards share CPUs with the generator (more cores than SERVER_CPUS) — neither is a scaling result.")
print(f"{'scenario':10} {'cores':>5} {'runs':>4} {'rate /s':>11} {'[min–max]':>23} {'vs 1':>7} {'per core':>9} {'CPU µs/unit':>11}"
      f" {'P50 µs':>7} {'P99 µs':>8} {'srv CPU%':>8} {'gen CPU%':>8} {'bytes/conn':>10} flags")
unit_cost = {}
for label in order:
    base = {}
    for n in sorted(c for (l, c) in by if l == label):
        rs = [r for r in by[(label, n)] if "error" not in r]
        errs = len(by[(label, n)]) - len(rs)
        rate, mem, cpu, gen = m(rs, "rate"), m(rs, "bytes_per_conn"), m(rs, "server_cpu_percent"), m(rs, "generator_cpu_percent")
        rng = f"[{fmt(min(r['rate'] for r in rs))}–{fmt(max(r['rate'] for r in rs))}]" if rate is not None else ""
        if n == 1: base = {"rate": rate, "mem": mem}
        vs = "-"
        if n != 1 and rate is not None and base.get("rate"): vs = f"{rate / base['rate']:.2f}x"
        elif n != 1 and mem is not None and base.get("mem") is not None: vs = f"{mem - base['mem']:+,.0f} B"
        cost = cpu * 1e4 / rate if (rate and cpu is not None) else None
        if cost is not None: unit_cost[(label, n)] = cost
        gt = rs[0].get("gen_threads", 1) if rs else 1
        flags = ("G" if gen is not None and gen >= 90 * gt else "") + ("S" if n > s_count else "") + (f" {errs} failed" if errs else "")
        print(f"{label:10} {n:>5} {len(rs):>4} {fmt(rate):>11} {rng:>23} {vs:>7} {fmt(rate / n if rate else None):>9} {fmt(cost, 2):>11}"
              f" {fmt(m(rs, 'p50_us')):>7} {fmt(m(rs, 'p99_us')):>8} {fmt(cpu):>8} {fmt(gen):>8} {fmt(mem):>10} {flags}")
# The mesh's cost per hop, from the server's CPU per message (docs/scaling.md, "The model").
for label, per_msg, hops in (("chan-sat", members - 1, lambda n: n * (1 - (1 - 1 / n) ** members) - 1),
                             ("pm-sat", 1, lambda n: (n - 1) / n)):
    one = unit_cost.get((label, 1))
    for (l, n), c in sorted(unit_cost.items()):
        if l != label or n == 1 or one is None: continue
        extra = (c - one) * per_msg
        print(f"{label}: server CPU per message {one * per_msg:.2f} µs at 1 core, {c * per_msg:.2f} µs at {n}: "
              f"{extra:+.2f} µs over {hops(n):.2f} mesh hops per message ≈ {extra / hops(n):.2f} µs a hop")
PY
echo "every run: $OUT/results.jsonl (per process: $OUT/run-*.jsonl; server logs: $OUT/srv/)"
