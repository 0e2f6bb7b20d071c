#!/usr/bin/env bash
# Instructions side by side: rustircd --cores 1, ircd-hybrid 8.2 and InspIRCd 3 (Debian's
# packages), each under valgrind's callgrind, on one workload (scripts/cg-workload.py: N
# clients register one after the other, join one channel, one of them sends K channel messages
# that every other member receives, everyone quits; each phase finished on the server before
# the next). Prints, per server, the server's user-space instructions (callgrind's Ir, all
# threads of the server's process together):
#
#   per delivered message   (Ir(K2) - Ir(K1)) / ((K2 - K1) * (N - 1)), N clients
#   per client lifecycle    (Ir(N2) - Ir(N1)) / (N2 - N1), KL messages (register, join, quit)
#   per idle second         (Ir(IDLE2 s) - Ir(IDLE1 s)) / the difference of the idle times
#
# Each run is a fresh server. Only what the server does inside a window is counted:
# callgrind_control --dump when the server serves (SETTLE seconds after it answered a probe
# connection) opens the window, another after the workload (TAIL seconds after the driver
# ended) closes it, so start-up and shutdown never count, and the fixed part of the workload
# cancels in the differences. The idle windows (IDLE1, then IDLE2 seconds) come from one run.
# A server also spends its idle cost while it works, and a longer run (valgrind makes runs
# slow) spends more of it: the table also gives the two workload slopes less the idle rate
# times the difference of the windows' durations ("less idle").
#
# A native run (no valgrind) of each server, idle IDLE2 seconds, counts how often each of its
# threads wakes up: valgrind runs one thread at a time, and a thread woken by its own timer
# can wait seconds for its turn (rustircd's main thread and its nudge thread do), so the idle
# Ir of a multi-threaded server under callgrind misses those wake-ups.
#
#   scripts/callgrind-compare.sh            # all runs, then the table (about 25 minutes)
#   scripts/callgrind-compare.sh --table    # the table again, from $OUT
#
# Environment: SERVERS="rustircd hybrid inspircd" picks the servers; RUNS="native idle
# messages lifecycle" picks the runs; ROUNDS=1 repeats them (the table gives the median of the
# rounds' slopes and their range: rustircd's counts move by several percent from run to run,
# the number of its reactor turns depending on timing; hybrid's and InspIRCd's barely move); N=50 K1=200 K2=1200 (message slope), N1=25 N2=75 KL=0
# (lifecycle slope), IDLE1=5 IDLE2=25 (seconds); HISTORY=off: rustircd with `[history]
# enabled = false` (default on: kept in memory and persisted in history.redb, each run fresh); WINDOW=1: messages the sender may have ahead
# of the slowest member (1: each message is received by all before the next is sent; 100: a
# burst, many lines per read and per write); TIMEOUT=300 (seconds per wait); KEEP_CG=DIR keeps
# the callgrind files there (SERVER.RUN.out.N; the window of a workload run is the file whose
# `desc: Trigger:` is `dump end`; of the idle run, `dump idleA` and `dump idleB`) for
# callgrind_annotate and scripts/cg-diff.py; OUT=/tmp/callgrind-compare.jsonl gets one JSON
# line per window; PORT=7641.
#
# hybrid and InspIRCd refuse root: as root they run as nobody through setpriv (and
# callgrind_control too). Every process started here is stopped by its PID on exit: SIGTERM,
# and if the server has not exited after STOP_WAIT=120 seconds (rustircd under valgrind can take
# that long: its main thread, which handles the signal, is starved as above), a last dump and
# SIGKILL. rustircd under valgrind now and then never starts serving: after PROBE_TIMEOUT=120
# seconds it is stopped and started again. rustircd is target/release/rustircd (cargo build
# --release first); InspIRCd needs `apt-get install inspircd` (a /usr/sbin/policy-rc.d exiting
# 101 keeps the package from starting its service).
set -euo pipefail
cd "$(dirname "$0")/.."
SERVERS=${SERVERS:-"rustircd hybrid inspircd"}
N=${N:-50} K1=${K1:-200} K2=${K2:-1200}
N1=${N1:-25} N2=${N2:-75} KL=${KL:-0}
IDLE1=${IDLE1:-5} IDLE2=${IDLE2:-25}
WINDOW=${WINDOW:-1} TIMEOUT=${TIMEOUT:-300} SETTLE=${SETTLE:-3} TAIL=${TAIL:-1}
IRCD=${RUSTIRCD:-target/release/rustircd}
HYBRID=${HYBRID:-/usr/sbin/ircd-hybrid}
INSPIRCD=${INSPIRCD:-/usr/sbin/inspircd}
PORT=${PORT:-7641}
OUT=${OUT:-/tmp/callgrind-compare.jsonl}
STOP_WAIT=${STOP_WAIT:-120}
RUNS=${RUNS:-"native idle messages lifecycle"}
ROUNDS=${ROUNDS:-1} ROUND=1
DIR=$(mktemp -d /tmp/cg-compare.XXXXXX)
chmod 777 "$DIR"
mkdir -p "$DIR/cg" && chmod 777 "$DIR/cg"
PID="" DRIVER="" S=""

# Stops the server: SIGTERM, then (bounded) wait for it to exit and callgrind to write its
# file; a server still running then has callgrind dump its counts, then is killed.
stop() {
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then kill "$DRIVER" 2>/dev/null || true; fi
  DRIVER=""
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq $((STOP_WAIT * 10))); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$PID" 2>/dev/null; then
      echo "pid $PID did not exit on SIGTERM: dumping its counts and killing it" >&2
      ctl --dump "$PID" >/dev/null 2>&1 || true
      sleep 2
      kill -9 "$PID" 2>/dev/null || true
      # valgrind removes its vgdb FIFOs when it exits, not when it is killed
      rm -f /tmp/vgdb-pipe-*-"$PID"-by-* 2>/dev/null || true
    fi
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
trap 'stop; rm -rf "$DIR"' EXIT
trap 'exit 130' INT TERM HUP

. scripts/lib/rustircd-bench-config.sh  # (the working directory is the repository)
rustircd_bench_config "$DIR" "$PORT" "callgrind comparison" > "$DIR/rustircd.toml"
# HISTORY=off: rustircd keeps no chat history (on: the defaults, kept and persisted).
if [ "${HISTORY:-on}" = off ]; then printf '\n[history]\nenabled = false\n' >> "$DIR/rustircd.toml"; fi

cat > "$DIR/ircd.conf" <<EOF
serverinfo {
	name = "irc.hybrid.test"; sid = "1HY"; description = "server under test";
	network_name = "LoadNet"; network_description = "callgrind comparison";
	hub = no; default_max_clients = 10000; max_nick_length = 30; max_topic_length = 300;
};
admin { name = "test"; description = "test"; email = "<root@localhost>"; };
class { name = "users"; ping_time = 90 seconds; number_per_ip_local = 10000;
        number_per_ip_global = 10000; max_number = 10000; number_per_cidr = 10000;
        cidr_bitlen_ipv4 = 32; sendq = 16 megabytes; recvq = 64 kbytes; };
listen { host = "127.0.0.1"; port = $PORT; };
auth { user = "*@127.0.0.1"; class = "users"; flags = exceed_limit, can_flood, no_tilde; };
channel { disable_fake_channels = yes; max_channels = 100; };
serverhide { flatten_links = no; hidden = no; hide_servers = no; hide_services = no; };
general {
	disable_auth = yes; throttle_count = 100000; throttle_time = 1 second;
	ping_cookie = no; short_motd = yes;
	anti_nick_flood = no; default_floodcount = 100000; invisible_on_connect = no;
};
modules { path = "/usr/lib/ircd-hybrid/modules"; path = "/usr/lib/ircd-hybrid/modules/autoload"; };
log { use_logging = no; };
EOF

echo "callgrind comparison" > "$DIR/motd.txt"
cat > "$DIR/inspircd.conf" <<EOF
<server name="irc.inspircd.test" description="server under test" network="LoadNet" id="1IN">
<admin name="test" nick="test" email="root@localhost">
<bind address="127.0.0.1" port="$PORT" type="clients">
<connect name="local" allow="127.0.0.1" maxchans="100" timeout="60" pingfreq="90"
         hardsendq="16M" softsendq="16M" recvq="64K" threshold="1000000"
         commandrate="1000000000" fakelag="no" localmax="100000" globalmax="100000"
         maxconnwarn="no" resolvehostnames="no" useident="no" limit="100000">
<files motd="$DIR/motd.txt">
<pid file="$DIR/inspircd.pid">
<dns server="127.0.0.1" timeout="5">
<options prefixquit="Quit: " syntaxhints="no" announcets="yes" hostintopic="yes" pingwarning="15"
         splitwhois="no" exemptchanops="">
<security hideserver="" userstats="Pu" customversion="" flatlinks="no" hidesplits="no"
          hideulines="no" hidebans="no" maxtargets="20">
<performance quietbursts="yes" softlimit="1024" somaxconn="128" netbuffersize="10240"
             clonesonconnect="no">
<whowas groupsize="10" maxgroups="100000" maxkeep="3d">
EOF

# Waits (bounded) until something listens on $PORT, without connecting to it (a connection
# would cost the server instructions).
wait_port() {
  for _ in $(seq 1200); do
    if [ -n "$(ss -Hltn "sport = :$PORT" 2>/dev/null)" ]; then return 0; fi
    kill -0 "$PID" 2>/dev/null || { echo "$1 exited before listening" >&2; return 1; }
    sleep 0.1
  done
  echo "nothing listens on port $PORT" >&2
  return 1
}

as_nobody=()
[ "$(id -u)" = 0 ] && as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)

# callgrind_control, as the server's user: vgdb, which it runs, must reach the server's FIFOs
# and ptrace it (as root against a process of nobody's, the dump hangs and the server dies).
ctl() {
  if [ "$S" = rustircd ]; then timeout 120 callgrind_control "$@"
  else timeout 120 "${as_nobody[@]}" callgrind_control "$@"; fi
}

# start SERVER RUN: the server under callgrind, its files $DIR/cg/SERVER.RUN.out*
start() {
  if [ -n "$(ss -Hltn "sport = :$PORT")" ]; then echo "port $PORT is taken: set PORT" >&2; return 1; fi
  local cg=(valgrind --tool=callgrind "--callgrind-out-file=$DIR/cg/$1.$2.out")
  [ "${3:-}" = native ] && cg=()
  case $1 in
    rustircd)
      rm -rf "$DIR/rustircd-data"  # no history from an earlier run
      "${cg[@]}" "$IRCD" --cores 1 --config "$DIR/rustircd.toml" >>"$DIR/$1.log" 2>&1 & ;;
    hybrid)
      rm -f "$DIR"/*.db
      "${as_nobody[@]}" "${cg[@]}" "$HYBRID" -foreground -configfile "$DIR/ircd.conf" \
        -logfile "$DIR/ircd.log" -pidfile "$DIR/ircd.pid" -klinefile "$DIR/kline.db" \
        -dlinefile "$DIR/dline.db" -xlinefile "$DIR/xline.db" -resvfile "$DIR/resv.db" \
        >>"$DIR/$1.log" 2>&1 & ;;
    inspircd)
      "${as_nobody[@]}" "${cg[@]}" "$INSPIRCD" --config "$DIR/inspircd.conf" --nofork --nopid \
        >>"$DIR/$1.log" 2>&1 & ;;
    *) echo "unknown server $1" >&2; return 1 ;;
  esac
  PID=$!
  wait_port "$1"
  probe
}

# Waits (bounded) until the server serves: a connection that sends QUIT and is closed. The
# listening socket can exist before the server accepts (rustircd binds it before its shard
# runs); this happens before the counted windows.
probe() {
  python3 - "$PORT" "${PROBE_TIMEOUT:-120}" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=float(sys.argv[2]))
    s.sendall(b"QUIT\r\n")
    while s.recv(4096):
        pass
except OSError as e:
    sys.exit("probe: %s" % e)
PY
}

# dump LABEL: callgrind writes the counts since the previous dump (or the start) into
# $CGOUT.<n> and zeroes them; `desc: Trigger: dump LABEL` names the file. Sets NOW to the
# middle of the call.
dump() {
  local a b
  a=$(date +%s.%N)
  ctl "--dump=$1" "$PID" >/dev/null
  b=$(date +%s.%N)
  NOW=$(python3 -c "print(($a + $b) / 2)")
}

# window LABEL: the instructions in the window that the dump LABEL closed.
window() {
  local f
  f=$(grep -l "^desc: Trigger: dump $1\$" "$DIR/cg/$S.$NAME.out".* 2>/dev/null | head -n1)
  [ -n "$f" ] && sed -n 's/^totals: *\([0-9]*\).*/\1/p; s/^summary: *\([0-9]*\).*/\1/p' "$f" | head -n1 || echo 0
}

# run SERVER NAME KIND ARG: one fresh server; SETTLE seconds after it serves, the counted
# window(s). KIND idle: windows of IDLE1 then IDLE2 seconds; messages: N clients, ARG
# messages; lifecycle: ARG clients, KL messages (each window ends TAIL seconds after the
# driver). One JSON line per window in $OUT.
run() {
  S=$1 NAME=$2
  local kind=$3 arg=$4 t0 line='{}' status=ok
  local attempt
  # rustircd under valgrind now and then never starts serving (its shard stays parked; see
  # shards/src/nudge.rs): such a server is stopped and started again.
  for attempt in 1 2 3; do
    if start "$S" "$NAME"; then break; fi
    echo "$S did not serve (attempt $attempt); its log ends:" >&2
    grep -v '^==' "$DIR/$S.log" | tail -n 5 >&2 || true
    stop
    rm -f "$DIR/cg/$S.$NAME.out"*
    if [ "$attempt" = 3 ]; then record "$kind" "$arg" 0 0 did-not-start '{}'; return 0; fi
  done
  sleep "$SETTLE"
  dump begin; t0=$NOW
  case $kind in
    idle)
      sleep "$IDLE1"; dump idleA; record idle "$IDLE1" "$(window idleA)" "$(echo "$NOW - $t0" | bc)" ok '{}'
      t0=$NOW
      sleep "$IDLE2"; dump idleB; record idle "$IDLE2" "$(window idleB)" "$(echo "$NOW - $t0" | bc)" ok '{}' ;;
    messages|lifecycle)
      local clients=$N messages=$arg
      [ "$kind" = lifecycle ] && clients=$arg messages=$KL
      python3 scripts/cg-workload.py --port "$PORT" --clients "$clients" --messages "$messages" \
        --window "$WINDOW" --timeout "$TIMEOUT" > "$DIR/driver.out" &
      DRIVER=$!
      if wait "$DRIVER"; then line=$(tail -n1 "$DIR/driver.out"); else status=failed; fi
      DRIVER=""
      sleep "$TAIL"; dump end
      record "$kind" "$arg" "$(window end)" "$(echo "$NOW - $t0" | bc)" "$status" "$line" ;;
  esac
  stop
  if [ -n "${KEEP_CG:-}" ]; then mkdir -p "$KEEP_CG" && cp "$DIR/cg/$S.$NAME.out"* "$KEEP_CG/"; fi
}

# record KIND ARG IR SECONDS STATUS WORKLOAD_JSON
record() {
  local status=$5
  [ "${3:-0}" -gt 0 ] || status=no-callgrind-output
  printf '{"server":"%s","run":"%s","round":%s,"kind":"%s","arg":%s,"ir":%s,"window_s":%.3f,"status":"%s","workload":%s}\n' \
    "$S" "$NAME" "$ROUND" "$1" "$2" "${3:-0}" "$4" "$status" "$6" >> "$OUT"
  printf '%-9s %-10s %-9s %6s %16s Ir  %7.1f s  %s\n' "$S" "$NAME" "$1" "$2" "${3:-0}" "$4" "$status"
  if [ "$status" != ok ]; then echo "--- $S log:" >&2; tail -n 20 "$DIR/$S.log" >&2; fi
}

# native_idle SERVER: the server without valgrind, idle IDLE2 seconds: how often each of its
# threads wakes (voluntary and involuntary context switches, /proc/PID/task/*/status) and
# its CPU time (schedstat: user and kernel). Under valgrind, which runs one thread at a time,
# a thread waking on its own timer can wait seconds for its turn (rustircd's main thread and
# its nudge thread do): these counts say how often the threads really wake.
native_idle() {
  S=$1 NAME=native
  start "$S" native native || { stop; return 0; }
  sleep "$SETTLE"
  local a b
  a=$(threads); sleep "$IDLE2"; b=$(threads)
  stop
  python3 - "$S" "$IDLE2" "$a" "$b" >> "$OUT" <<'PY'
import json, sys
s, secs = sys.argv[1], float(sys.argv[2])
a = {l.split()[0]: l.split() for l in sys.argv[3].splitlines() if l.strip()}
b = {l.split()[0]: l.split() for l in sys.argv[4].splitlines() if l.strip()}
threads = {}
for tid, row in b.items():
    if tid in a:
        wakes = (int(row[2]) - int(a[tid][2])) / secs
        cpu = (int(row[3]) - int(a[tid][3])) / secs / 1000
        name = row[1]
        t = threads.setdefault(name, {"wakes_per_s": 0, "cpu_us_per_s": 0})
        t["wakes_per_s"] = round(t["wakes_per_s"] + wakes, 1)
        t["cpu_us_per_s"] = round(t["cpu_us_per_s"] + cpu, 1)
print(json.dumps({"server": s, "run": "native", "kind": "native-idle", "arg": secs, "status": "ok",
                  "wakes_per_s": round(sum(t["wakes_per_s"] for t in threads.values()), 1),
                  "cpu_us_per_s": round(sum(t["cpu_us_per_s"] for t in threads.values()), 1),
                  "threads": threads}))
PY
  tail -n1 "$OUT" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%-9s native     idle %6s s  %5.1f wakes/s  %7.1f µs CPU/s  %s" % (r["server"], r["arg"], r["wakes_per_s"], r["cpu_us_per_s"], ", ".join("%s %s/s" % (k, v["wakes_per_s"]) for k, v in r["threads"].items() if v["wakes_per_s"])))'
}

# One line per thread of $PID: tid, name, context switches, CPU ns.
threads() {
  local t
  for t in /proc/"$PID"/task/*; do
    printf '%s %s %s %s\n' "${t##*/}" "$(tr ' ' _ < "$t/comm")" \
      "$(awk '/^(non)?voluntary_ctxt_switches/ {n += $2} END {print n}' "$t/status")" \
      "$(awk '{print $1}' "$t/schedstat")"
  done
}

# The table, from the JSON lines of $OUT: with several rounds, the median of the rounds'
# slopes, and their range.
table() {
  python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
servers = list(dict.fromkeys(r["server"] for r in rows))
def slopes(s, kind):
    out = []
    for rnd in sorted({r.get("round", 1) for r in rows}):
        rs = sorted((r for r in rows if r["server"] == s and r["kind"] == kind and r.get("round", 1) == rnd),
                    key=lambda r: r["arg"])
        if len(rs) != 2 or any(r["status"] != "ok" for r in rs):
            continue
        a, b = rs
        out.append((b["ir"] - a["ir"], b["arg"] - a["arg"], b["window_s"] - a["window_s"], b))
    return out
def summary(vals):
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals), len(vals)
table = {}
for s in servers:
    idle = slopes(s, "idle")
    rates = [d[0] / d[2] for d in idle]
    rate = statistics.median(rates) if rates else None
    msg, life = slopes(s, "messages"), slopes(s, "lifecycle")
    units = lambda d: d[1] * (d[3]["workload"]["clients"] - 1)
    nat = [r for r in rows if r["server"] == s and r["kind"] == "native-idle"]
    table[s] = [
        summary([d[0] / units(d) for d in msg]),
        summary([(d[0] - rate * d[2]) / units(d) for d in msg]) if rate is not None else None,
        summary([d[0] / d[1] for d in life]),
        summary([(d[0] - rate * d[2]) / d[1] for d in life]) if rate is not None else None,
        summary(rates),
        summary([nat[-1]["wakes_per_s"]]) if nat else None,
    ]
names = ["per delivered message", "  less idle", "per client lifecycle", "  less idle",
         "per idle second" + (" (one shard)" if "rustircd" in servers else ""),
         "thread wake-ups per idle second, native (not Ir)"]
def cell(v, i):
    if v is None:
        return "-"
    med, lo, hi, n = v
    f = (lambda x: f"{x:,.1f}") if i == 5 else (lambda x: f"{x:,.0f}")
    return f(med) if n == 1 or lo == hi else f"{f(med)} ({f(lo)}–{f(hi)}, {n} rounds)"
print()
print("| instructions (Ir) | " + " | ".join(servers) + " |")
print("|---|" + "---:|" * len(servers))
for i, name in enumerate(names):
    if all(table[s][i] is None for s in servers):
        continue
    print(f"| {name} | " + " | ".join(cell(table[s][i], i) for s in servers) + " |")
PY
}

if [ "${1:-}" = --table ]; then table; exit 0; fi
: > "$OUT"
for s in $SERVERS; do
  for ROUND in $(seq "$ROUNDS"); do
    sfx=""
    [ "$ROUNDS" -gt 1 ] && sfx=".r$ROUND"
    for r in $RUNS; do
      case $r in
        idle) run "$s" "idle$sfx" idle 0 ;;
        native) [ "$ROUND" = 1 ] && native_idle "$s" ;;
        messages) run "$s" "msg$K1$sfx" messages "$K1"; run "$s" "msg$K2$sfx" messages "$K2" ;;
        lifecycle) run "$s" "life$N1$sfx" lifecycle "$N1"; run "$s" "life$N2$sfx" lifecycle "$N2" ;;
        *) echo "unknown run $r" >&2; exit 2 ;;
      esac
    done
  done
done
table
