#!/usr/bin/env bash
# Server links side by side: rustircd --cores 2, rustircd --cores 1 and ircd-hybrid 8.2 as the
# server under test of `rustircd-loadtest link-burst`, ROUNDS rounds interleaved, a fresh server
# for every run; prints the medians and keeps every run's JSON line in $OUT.
#
#   scripts/link-perf.sh [ROUNDS] [USERS] [CHANNELS] [PER_CHANNEL] [MESSAGES]
#
# The 1-core servers run on CPU 0 (taskset), the harness on CPU 1; rustircd --cores 2 runs
# unpinned (one of its shards shares CPU 1 with the harness). ircd-hybrid (Debian's package,
# /usr/sbin/ircd-hybrid) refuses root: as root it runs as nobody through setpriv. Every process
# started here is stopped by its PID on exit. SERVERS="rustircd-2 rustircd-1 hybrid" picks the
# servers; SPLIT=squit splits with SQUIT instead of closing the link.
#
# CALLGRIND=1: every server runs under valgrind's callgrind instead, and the harness has it dump
# its counts at the end of each phase (`--callgrind`): the instructions of each phase are
# printed per burst line / per departing user (timings are then meaningless); KEEP_CG=DIR keeps
# the per-phase callgrind files there for callgrind_annotate. Rounds: 1 is enough,
# the counts barely move. rustircd --cores 2 does not get its clients registered under valgrind
# (its shards' threads are serialized): measure rustircd-1 and hybrid.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5} USERS=${2:-10000} CHANNELS=${3:-1000} PER=${4:-10} MESSAGES=${5:-1000}
SERVERS=${SERVERS:-"rustircd-2 rustircd-1 hybrid"}
SPLIT=${SPLIT:-close}
LT=${LOADTEST:-target/release/rustircd-loadtest}
IRCD=${RUSTIRCD:-target/release/rustircd}
HYBRID=${HYBRID:-/usr/sbin/ircd-hybrid}
OUT=${OUT:-/tmp/link-perf.jsonl}
RPORT=${RPORT:-7300} HPORT=${HPORT:-7310} HSPORT=${HSPORT:-7311}
DIR=$(mktemp -d /tmp/link-perf.XXXXXX)
chmod 777 "$DIR"
PID=""
stop() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq ${STOP_WAIT:-50}); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
  fi
  PID=""
}
trap 'stop; rm -rf "$DIR"' EXIT
: > "$OUT"

. scripts/lib/rustircd-bench-config.sh  # (the working directory is the repository)
{
  rustircd_bench_config "$DIR" "$RPORT" "link load test"
  cat <<EOF

[[links]]
name = "peer-a.loadtest"
sid = "9LA"
send_password = "loadtest"
accept_password = "loadtest"

[[links]]
name = "peer-b.loadtest"
sid = "9LB"
send_password = "loadtest"
accept_password = "loadtest"
EOF
} > "$DIR/rustircd.toml"

cat > "$DIR/ircd.conf" <<EOF
serverinfo {
	name = "irc.hybrid.test"; sid = "1HY"; description = "server under test";
	network_name = "LoadNet"; network_description = "link load test";
	hub = yes; default_max_clients = 10000; max_nick_length = 30; max_topic_length = 300;
};
admin { name = "test"; description = "test"; email = "<root@localhost>"; };
class { name = "users"; ping_time = 90 seconds; number_per_ip_local = 10000;
        number_per_ip_global = 10000; max_number = 10000; number_per_cidr = 10000;
        cidr_bitlen_ipv4 = 32; sendq = 4 megabytes; recvq = 64 kbytes; };
class { name = "server"; ping_time = 90 seconds; connectfreq = 5 minutes;
        max_number = 5; sendq = 16 megabytes; };
listen { host = "127.0.0.1"; port = $HPORT; };
listen { flags = server; host = "127.0.0.1"; port = $HSPORT; };
auth { user = "*@127.0.0.1"; class = "users"; flags = exceed_limit, can_flood, no_tilde; };
connect { name = "peer-a.loadtest"; host = "127.0.0.1"; send_password = "loadtest";
          accept_password = "loadtest"; encrypted = no; class = "server"; };
connect { name = "peer-b.loadtest"; host = "127.0.0.1"; send_password = "loadtest";
          accept_password = "loadtest"; encrypted = no; class = "server"; };
channel { disable_fake_channels = yes; max_channels = 100; };
serverhide { flatten_links = no; hidden = no; hide_servers = no; hide_services = no; };
general {
	disable_auth = yes; throttle_count = 100000; throttle_time = 1 second;
	ts_warn_delta = 3 seconds; ts_max_delta = 15 seconds; ping_cookie = no; short_motd = yes;
	anti_nick_flood = no; default_floodcount = 100000; invisible_on_connect = no;
};
modules { path = "/usr/lib/ircd-hybrid/modules"; path = "/usr/lib/ircd-hybrid/modules/autoload"; };
log { use_logging = no; };
EOF

CG=()
CGFLAG=()
if [ "${CALLGRIND:-0}" = 1 ]; then
  mkdir -p "$DIR/cg"; chmod 777 "$DIR/cg"
  CGFLAG=(--callgrind)
  STOP_WAIT=300
  : > "$OUT.callgrind"
fi

# Waits (bounded) until HOST:PORT accepts a connection.
wait_port() {
  for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# The machine's busy share (%) over half a second, from /proc/stat.
busy() {
  local a b
  a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
  local total=0 idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

# Waits (at most QUIET_WAIT seconds) until nothing else keeps the machine busy: other work
# (builds, tests) on a 2-core box makes the figures meaningless.
wait_quiet() {
  local deadline=$(( $(date +%s) + ${QUIET_WAIT:-300} )) b
  while b=$(busy); [ "$b" -ge "${QUIET_MAX:-8}" ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "still $b% busy; measuring anyway" >&2; break; fi
    sleep 2
  done
  BUSY=$b
}

start() {
  if [ "${CALLGRIND:-0}" = 1 ]; then
    CG=(valgrind --tool=callgrind "--callgrind-out-file=$DIR/cg/$1.$round")
  fi
  case $1 in
    rustircd-2)
      "${CG[@]}" "$IRCD" --cores 2 --config "$DIR/rustircd.toml" 2>>"$DIR/rustircd.log" &
      PID=$! PORT=$RPORT ;;
    rustircd-1)
      taskset -c 0 "${CG[@]}" "$IRCD" --cores 1 --config "$DIR/rustircd.toml" 2>>"$DIR/rustircd.log" &
      PID=$! PORT=$RPORT ;;
    hybrid)
      local run
      run=("${CG[@]}" "$HYBRID")
      [ "$(id -u)" = 0 ] && run=(setpriv --reuid=65534 --regid=65534 --clear-groups "${CG[@]}" "$HYBRID")
      rm -f "$DIR"/*.db
      taskset -c 0 "${run[@]}" -foreground -configfile "$DIR/ircd.conf" -logfile "$DIR/ircd.log" \
        -pidfile "$DIR/ircd.pid" -klinefile "$DIR/kline.db" -dlinefile "$DIR/dline.db" \
        -xlinefile "$DIR/xline.db" -resvfile "$DIR/resv.db" >>"$DIR/hybrid.out" 2>&1 &
      PID=$! PORT=$HSPORT ;;
  esac
  wait_port "$([ "$1" = hybrid ] && echo $HPORT || echo $PORT)"
}

for round in $(seq 1 "$ROUNDS"); do
  for s in $SERVERS; do
    wait_quiet
    start "$s"
    # hybrid: the harness's clients use the client port, its links the server port; rustircd
    # takes both on one listener.
    args=(--server "127.0.0.1:$PORT")
    if [ "$s" = hybrid ]; then args=(--server "127.0.0.1:$HSPORT" --client-server "127.0.0.1:$HPORT"); fi
    if line=$(taskset -c 1 "$LT" link-burst "${args[@]}" --server-pid "$PID" --users "$USERS" \
        --channels "$CHANNELS" --per-channel "$PER" --messages "$MESSAGES" --split "$SPLIT" "${CGFLAG[@]}" --json | tail -n1); then
      echo "$line" | sed "s/^{/{\"label\":\"$s\",\"round\":$round,\"busy_before\":$BUSY,/" >> "$OUT"
      echo "round $round $s: $(echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("burst in %s ms, out %s ms, split %s ms" % (r["burst_in_ms"], r.get("burst_out_ms"), r["split_last_quit_ms"]))')"
    else
      echo "round $round $s: FAILED" >&2
    fi
    stop
    if [ "${CALLGRIND:-0}" = 1 ]; then
      for f in "$DIR/cg/$s.$round".*; do
        printf '{"label":"%s","round":%s,"phase":"%s","instructions":%s}\n' "$s" "$round" \
          "$(sed -n 's/^desc: Trigger: dump //p' "$f")" "$(sed -n 's/^totals: //p' "$f")"
      done | grep -v '"phase":""' >> "$OUT.callgrind" || true
      if [ -n "${KEEP_CG:-}" ]; then mkdir -p "$KEEP_CG" && cp "$DIR/cg/$s.$round".* "$KEEP_CG/"; fi
    fi
    sleep 1
  done
done

if [ "${CALLGRIND:-0}" = 1 ]; then
  python3 - "$OUT.callgrind" "$USERS" "$CHANNELS" "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = [json.loads(l) for l in open(sys.argv[4]) if l.strip()]
users = int(sys.argv[2])
lines_in = {r["label"]: r["burst_lines"] for r in runs}
lines_out = {r["label"]: r.get("burst_out_lines", 0) for r in runs}
by = {}
for r in rows:
    by.setdefault((r["label"], r["phase"]), []).append(r["instructions"])
labels = sorted({l for l, _ in by})
print("instructions (callgrind), medians:")
print(f"{'':28}" + "".join(f"{l:>16}" for l in labels))
def row(name, phase, per):
    vals = []
    for l in labels:
        v = by.get((l, phase))
        d = per(l) if per else 1
        vals.append(f"{statistics.median(v) / d:>16,.0f}" if v and d else f"{'-':>16}")
    print(f"{name:28}" + "".join(vals))
row("burst in, total", "burst_in", None)
row("burst in, per line", "burst_in", lambda l: lines_in.get(l))
row("burst out, total", "burst_out", None)
row("burst out, per line", "burst_out", lambda l: lines_out.get(l))
row("split, total", "split", None)
row("split, per departing user", "split", lambda l: users)
PY
  exit 0
fi

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)
def med(rs, f):
    vals = [f(r) for r in rs if f(r) is not None]
    return statistics.median(vals) if vals else float("nan")
cols = [
    ("burst in ms", lambda r: r["burst_in_ms"]),
    ("burst in CPU ms", lambda r: r.get("burst_in_server_cpu_ms")),
    ("burst out ms", lambda r: r.get("burst_out_ms")),
    ("burst out CPU ms", lambda r: r.get("burst_out_server_cpu_ms")),
    ("split last QUIT ms", lambda r: r["split_last_quit_ms"]),
    ("split CPU ms", lambda r: r.get("split_server_cpu_ms")),
    ("c→p msg p50 µs", lambda r: r["client_to_peer_privmsg_latency_us"]["p50"]),
    ("c→p msg p99 µs", lambda r: r["client_to_peer_privmsg_latency_us"]["p99"]),
    ("p→c msg p50 µs", lambda r: r["peer_to_client_privmsg_latency_us"]["p50"]),
    ("p→c msg p99 µs", lambda r: r["peer_to_client_privmsg_latency_us"]["p99"]),
    ("c→p chan p50 µs", lambda r: r["client_to_peer_channel_latency_us"]["p50"]),
    ("c→p chan p99 µs", lambda r: r["client_to_peer_channel_latency_us"]["p99"]),
    ("p→c chan p50 µs", lambda r: r["peer_to_client_channel_latency_us"]["p50"]),
    ("p→c chan p99 µs", lambda r: r["peer_to_client_channel_latency_us"]["p99"]),
]
labels = list(by)
print(f"medians of {', '.join(f'{l}: {len(by[l])}' for l in labels)} runs")
print(f"{'':22}" + "".join(f"{l:>14}" for l in labels))
for name, f in cols:
    print(f"{name:22}" + "".join(f"{med(by[l], f):>14.1f}" for l in labels))
bad = [r for r in rows if r.get("split_quits_seen") != r.get("split_quits_expected") or r.get("split_quits_duplicate") or r.get("messages_lost")]
print(f"runs with a missing or doubled QUIT or a lost message: {len(bad)}")
PY
