#!/usr/bin/env bash
# rustircd, ircd-hybrid and InspIRCd side by side, in one sitting: each server in turn on CPU 0
# (rustircd --cores 1), the harness on CPU 1, ROUNDS rounds interleaved, a fresh server for every
# scenario; prints the medians and keeps every run's JSON line in $OUT.
#
#   scripts/side-by-side.sh [ROUNDS]
#
# SERVERS="rustircd hybrid inspircd" picks the servers (RUSTIRCD=path picks the binary, e.g. an
# older build as "rustircd-old:path"; a name ending in -nohist, e.g. "rustircd-nohist", runs with
# `[history] enabled = false`, the others with the default history, kept and persisted, a fresh
# store for every run); SCENARIOS picks the scenarios (names below). hybrid and
# InspIRCd come from Debian (apt-get install ircd-hybrid inspircd; their services are not
# started); as root they run as nobody through setpriv. Every process started here is stopped
# by its PID on exit. HGRM=DIR writes each latency run's .hgrm and .svg there, and one
# comparison plot per scenario (rustircd-loadtest plot).
#
# The scenarios (issue 15's measures): mem (RSS per registered idle client, 10,000 clients,
# weighed after 20 s of idling, which lets rustircd's quiet connections sleep),
# reg (registrations/s at the highest rate), fan1k (100 channels x 50 at 1,000 msg/s: CPU,
# latency), fan4k (the same at 4,000 msg/s), sat (20 x 50 as fast as possible: deliveries/s,
# loss), big (a 1000-member channel: JOIN -> 366, NAMES, PRIVMSG -> last member).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SERVERS=${SERVERS:-"rustircd hybrid inspircd"}
SCENARIOS=${SCENARIOS:-"mem reg fan1k fan4k sat big"}
LT=${LOADTEST:-target/release/rustircd-loadtest}
IRCD=${RUSTIRCD:-target/release/rustircd}
HYBRID=${HYBRID:-/usr/sbin/ircd-hybrid}
INSPIRCD=${INSPIRCD:-/usr/sbin/inspircd}
OUT=${OUT:-/tmp/side-by-side.jsonl}
PORT=${PORT:-7700}
DIR=$(mktemp -d /tmp/side-by-side.XXXXXX)
chmod 777 "$DIR"
PID=""
stop() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
  fi
  # InspIRCd forks away from its starter: its pid file names the server.
  if [ -s "$DIR/inspircd.pid" ]; then
    kill "$(cat "$DIR/inspircd.pid")" 2>/dev/null || true
    rm -f "$DIR/inspircd.pid"
  fi
  PID=""
}
trap 'stop; rm -rf "$DIR"' EXIT
: > "$OUT"
as_nobody=()
[ "$(id -u)" = 0 ] && as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)

. scripts/lib/rustircd-bench-config.sh  # (the working directory is the repository)
rustircd_bench_config "$DIR" "$PORT" "side by side" > "$DIR/rustircd.toml"
{ cat "$DIR/rustircd.toml"; printf '\n[history]\nenabled = false\n'; } > "$DIR/rustircd-nohist.toml"

cat > "$DIR/ircd.conf" <<EOF
serverinfo {
	name = "irc.hybrid.test"; sid = "1HY"; description = "server under test";
	network_name = "LoadNet"; network_description = "side by side";
	default_max_clients = 20000; max_nick_length = 30; max_topic_length = 300;
};
admin { name = "test"; description = "test"; email = "<root@localhost>"; };
class { name = "users"; ping_time = 90 seconds; number_per_ip_local = 20000;
        number_per_ip_global = 20000; max_number = 20000; number_per_cidr = 20000;
        cidr_bitlen_ipv4 = 32; sendq = 16 megabytes; recvq = 64 kbytes; };
listen { host = "127.0.0.1"; port = $PORT; };
auth { user = "*@127.0.0.1"; class = "users"; flags = exceed_limit, can_flood, no_tilde; };
channel { disable_fake_channels = yes; max_channels = 100; };
general {
	disable_auth = yes; throttle_count = 100000; throttle_time = 1 second;
	ping_cookie = no; short_motd = yes; anti_nick_flood = no; default_floodcount = 100000;
	invisible_on_connect = no;
};
modules { path = "/usr/lib/ircd-hybrid/modules"; path = "/usr/lib/ircd-hybrid/modules/autoload"; };
log { use_logging = no; };
EOF

echo "side by side" > "$DIR/motd.txt"
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
<options prefixquit="Quit: " syntaxhints="no" announcets="yes" hostintopic="yes" splitwhois="no">
<security hideserver="" userstats="Pu" customversion="" flatlinks="no" hidesplits="no"
          hideulines="no" hidebans="no" maxtargets="20">
<performance quietbursts="yes" softlimit="20000" somaxconn="1024" netbuffersize="10240"
             clonesonconnect="no">
<whowas groupsize="10" maxgroups="100000" maxkeep="3d">
EOF

# start NAME: the server on CPU 0, PID set once it listens.
start() {
  if [ -n "$(ss -Hltn "sport = :$PORT")" ]; then echo "port $PORT is taken: set PORT" >&2; return 1; fi
  case "$1" in
    hybrid)
      (ulimit -n 20000; exec taskset -c 0 "${as_nobody[@]}" "$HYBRID" -configfile "$DIR/ircd.conf" \
        -foreground >/dev/null 2>&1) &
      PID=$! ;;
    inspircd)
      (ulimit -n 20000; exec taskset -c 0 "${as_nobody[@]}" "$INSPIRCD" --config "$DIR/inspircd.conf" \
        --nofork --nopid >/dev/null 2>&1) &
      PID=$! ;;
    *)
      local bin=$IRCD conf=$DIR/rustircd.toml
      case "$1" in *:*) bin=${1#*:} ;; esac
      case "${1%%:*}" in *-nohist) conf=$DIR/rustircd-nohist.toml ;; esac
      rm -rf "$DIR/rustircd-data"
      taskset -c 0 "$bin" --cores 1 --config "$conf" >/dev/null 2>&1 &
      PID=$! ;;
  esac
  for _ in $(seq 100); do
    [ -n "$(ss -Hltn "sport = :$PORT")" ] && return 0
    kill -0 "$PID" 2>/dev/null || { echo "$1 exited before listening" >&2; return 1; }
    sleep 0.1
  done
  echo "$1 does not listen on $PORT" >&2
  return 1
}

# run NAME SCENARIO ROUND: one scenario against a fresh server.
run() {
  local name=${1%%:*} scenario=$2 round=$3 args=()
  case "$scenario" in
    mem) args=(connection-stress --clients 10000 --rate 5000 --settle 20) ;;
    reg) args=(connection-stress --clients 10000 --rate 0) ;;
    fan1k) args=(channel-load --channels 100 --users-per-channel 50 --rate 1000 --duration 10) ;;
    fan4k) args=(channel-load --channels 100 --users-per-channel 50 --rate 4000 --duration 10) ;;
    sat) args=(channel-load --channels 20 --users-per-channel 50 --rate 0 --duration 10) ;;
    big) args=(big-channel --members 1000 --messages 20) ;;
    *) echo "unknown scenario $scenario" >&2; return 1 ;;
  esac
  local hgrm=()
  if [ -n "${HGRM:-}" ] && [ "$scenario" != mem ] && [ "$scenario" != reg ]; then
    mkdir -p "$HGRM"
    hgrm=(--hgrm "$HGRM/$scenario.$name.$round.hgrm")
  fi
  start "$1"
  sleep 0.5
  taskset -c 1 timeout 300 "$LT" "${args[@]}" --server "127.0.0.1:$PORT" --server-pid "$PID" \
    "${hgrm[@]}" --json --quiet | tail -n1 |
    sed "s/^{/{\"server\":\"$name\",\"case\":\"$scenario\",\"round\":$round,/" >> "$OUT" || true
  stop
  sleep 1
}

for round in $(seq 1 "$ROUNDS"); do
  for scenario in $SCENARIOS; do
    for s in $SERVERS; do
      echo "round $round: $scenario on ${s%%:*}" >&2
      run "$s" "$scenario" "$round"
    done
  done
done

if [ -n "${HGRM:-}" ]; then
  for scenario in $SCENARIOS; do
    files=()
    for s in $SERVERS; do
      f="$HGRM/$scenario.${s%%:*}.1.hgrm"
      [ -s "$f" ] && files+=("$f")
    done
    [ "${#files[@]}" -gt 0 ] && "$LT" plot --out "$HGRM/$scenario.svg" --title "$scenario" "${files[@]}" || true
  done
fi

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
servers = list(dict.fromkeys(r["server"] for r in rows))
def med(case, server, f):
    vals = []
    for r in rows:
        if r["case"] == case and r["server"] == server:
            try:
                vals.append(f(r))
            except (KeyError, TypeError):
                pass
    return statistics.median(vals) if vals else None
lat = lambda k: (lambda r: r["delivery_latency_us"][k])
measures = [
    ("mem", "bytes per registered idle client", lambda r: r["server_bytes_per_connection"]),
    ("reg", "registrations/s, highest rate", lambda r: r["registrations_per_second"]),
    ("fan1k", "100x50 at 1k msg/s: server CPU %", lambda r: r["server_cpu_percent"]),
    ("fan1k", "100x50 at 1k msg/s: P50 us", lat("p50")),
    ("fan1k", "100x50 at 1k msg/s: P99 us", lat("p99")),
    ("fan4k", "100x50 at 4k msg/s: server CPU %", lambda r: r["server_cpu_percent"]),
    ("fan4k", "100x50 at 4k msg/s: P99 us", lat("p99")),
    ("fan4k", "100x50 at 4k msg/s: lost", lambda r: r["lost"]),
    ("sat", "20x50 saturation: deliveries/s", lambda r: r["deliveries_per_second"]),
    ("sat", "20x50 saturation: lost", lambda r: r["lost"]),
    ("big", "1000 members: JOIN -> 366 us", lambda r: r["join_to_366_us"]),
    ("big", "1000 members: NAMES us", lambda r: r["names_us"]),
    ("big", "1000 members: PRIVMSG -> last us", lambda r: r["privmsg_last_arrival_us"]),
]
rounds = max((r["round"] for r in rows), default=0)
print(f"medians of {rounds} round(s); server on CPU 0, harness on CPU 1")
print("| measure | " + " | ".join(servers) + " |")
print("|---|" + "---|" * len(servers))
for case, label, f in measures:
    vals = [med(case, s, f) for s in servers]
    if all(v is None for v in vals):
        continue
    print(f"| {label} | " + " | ".join("-" if v is None else f"{v:,.0f}" for v in vals) + " |")
PY
