#!/usr/bin/env bash
# Chat history's figures (issue 16; docs/performance.md, "Issue 16: history"), with
# rustircd-loadtest's `history` scenario. The server runs on CPU 0 (--cores 1) or CPUs 0-1
# (--cores 2), the harness on CPU 1; every process started here is stopped by its PID on exit.
#
#   scripts/history-perf.sh mem [N]      # RSS per stored message: N (100,000) messages into one
#                                        # channel, then N private messages, each on a fresh
#                                        # server (channel_length = private_length = N), and the
#                                        # same fills with history off (the control); RSS read
#                                        # after SETTLE=5 s idle; HISTS="on off" picks
#                                        # the runs, PERSIST=false keeps history in memory only
#   scripts/history-perf.sh query [RUNS] # CHATHISTORY LATEST #chan * 100, 200 times, --cores 2:
#                                        # the asker on the channel's home shard and on the other
#                                        # (the asker lands where the kernel puts it: runs repeat,
#                                        # at most 4*RUNS, until RUNS (3) of each)
#   scripts/history-perf.sh fill [C] [F] # C (1000) channels x F (1000) messages of 100
#                                        # characters at RATE=5000/s into a persisted store
#                                        # ($DATA=/tmp/history-perf.data), then its size on disk
#                                        # (history.redb and history.segments/)
#   scripts/history-perf.sh start [RUNS] # start-up on $DATA, RUNS (3) times: "History loaded"
#                                        # line, time until the first client gets 001, RSS
#
# OUT=/tmp/history-perf.jsonl gets the harness's JSON lines (with "case"); PORT=7760.
set -euo pipefail
cd "$(dirname "$0")/.."
LT=${LOADTEST:-target/release/rustircd-loadtest}
IRCD=${RUSTIRCD:-target/release/rustircd}
PORT=${PORT:-7760}
OUT=${OUT:-/tmp/history-perf.jsonl}
DATA=${DATA:-/tmp/history-perf.data}
SETTLE=${SETTLE:-5}
RATE=${RATE:-5000}
DIR=$(mktemp -d /tmp/history-perf.XXXXXX)
PID=""
stop() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
  fi
  PID=""
}
trap 'stop; rm -rf "$DIR"' EXIT
. scripts/lib/rustircd-bench-config.sh

# config DATA_DIR HISTORY_SECTION: the benchmark configuration, logging at info (the shard of
# each client), the given [history] lines.
config() {
  rustircd_bench_config "$DIR" "$PORT" "history" | sed "s|^data_dir = .*|data_dir = \"$1\"|; s|^level = \"warn\"|level = \"info\"|"
  printf '\n[history]\n%b\n' "$2"
}

# start CORES CPUS CONFIG: the server, PID set once it serves a client (001).
start() {
  if [ -n "$(ss -Hltn "sport = :$PORT")" ]; then echo "port $PORT is taken: set PORT" >&2; return 1; fi
  T0=$(date +%s%N)
  taskset -c "$2" "$IRCD" --cores "$1" --config "$3" >"$DIR/server.log" 2>&1 &
  PID=$!
  python3 - "$PORT" <<'PY'
import socket, sys, time
end = time.time() + 120
while time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        s.sendall(b"NICK probe\r\nUSER p 0 * :p\r\n")
        buf = b""
        while b" 001 " not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        if b" 001 " in buf:
            s.sendall(b"QUIT\r\n")
            s.close()
            sys.exit(0)
    except OSError:
        time.sleep(0.01)
sys.exit("the server did not serve within 120 s")
PY
  T1=$(date +%s%N)
  READY_MS=$(( (T1 - T0) / 1000000 ))
}

rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }

lt() {  # lt CASE ARGS...: one harness run, its JSON line tagged with CASE into $OUT
  local c=$1; shift
  taskset -c 1 timeout 900 "$LT" history --server "127.0.0.1:$PORT" --server-pid "$PID" --json --quiet "$@" |
    tail -n1 | sed "s/^{/{\"case\":\"$c\",/"
}

mem() {
  local n=${1:-100000}
  for hist in ${HISTS:-on off}; do
    for kind in channel private; do
      rm -rf "$DIR/data"
      local h="enabled = true\nchannel_length = $n\nprivate_length = $n\nmax_age = \"0s\"\npersist = ${PERSIST:-true}"
      [ $hist = off ] && h="enabled = false"
      config "$DIR/data" "$h" > "$DIR/mem.toml"
      start 1 0 "$DIR/mem.toml"
      local extra=() ; [ $kind = private ] && extra=(--private)
      sleep "$SETTLE"
      local before; before=$(rss)
      lt "mem-$kind-$hist" --fill "$n" --queries 0 --rate "$RATE" "${extra[@]}" >> "$OUT"
      sleep "$SETTLE"
      local after; after=$(rss)
      echo "mem $kind history=$hist persist=${PERSIST:-true}: RSS $before -> $after KiB: $(( (after - before) * 1024 / n )) bytes per message"
      echo "{\"case\":\"mem-rss\",\"kind\":\"$kind\",\"history\":\"$hist\",\"persist\":${PERSIST:-true},\"n\":$n,\"before_kib\":$before,\"after_kib\":$after}" >> "$OUT"
      stop
    done
  done
}

# home NAME SHARDS: the channel's home shard (FNV-1a of the lower-cased name).
home() {
  python3 -c 'import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].lower().encode():
    h = ((h ^ b) * 0x100000001b3) % (1 << 64)
print(h % int(sys.argv[2]))' "$1" "$2"
}

query() {
  local runs=${1:-3} got_home=0 got_other=0 tries=0
  # Two channel names, one homed on each shard.
  local chans=() i=0
  for s in 0 1; do
    while [ "$(home "#hq$i" 2)" != $s ]; do i=$((i + 1)); done
    chans+=("#hq$i"); i=$((i + 1))
  done
  while { [ $got_home -lt "$runs" ] || [ $got_other -lt "$runs" ]; } && [ $tries -lt $((4 * runs)) ]; do
    tries=$((tries + 1))
    rm -rf "$DIR/data"
    config "$DIR/data" "enabled = true" > "$DIR/q.toml"
    start 2 0,1 "$DIR/q.toml"
    for ch in "${chans[@]}"; do
      local line port shard where
      line=$(lt query --channel "$ch" --fill 150 --queries 200 --limit 100)
      port=$(sed -n 's/.*"asker_port":\([0-9]*\).*/\1/p' <<<"$line")
      shard=$(sed -n "s/.*Client connected: \[127.0.0.1:$port\] shard=\([0-9]*\).*/\1/p" "$DIR/server.log" | tail -n1)
      if [ "$shard" = "$(home "$ch" 2)" ]; then where=home; got_home=$((got_home + 1)); else where=other; got_other=$((got_other + 1)); fi
      echo "{\"where\":\"$where\",\"channel\":\"$ch\",\"asker_shard\":$shard,${line#\{}" >> "$OUT"
      echo "query $ch (home $(home "$ch" 2)), asker on shard $shard: $where" >&2
    done
    stop
    sleep 1
  done
}

fill() {
  local c=${1:-1000} f=${2:-1000}
  rm -rf "$DATA"
  config "$DATA" "enabled = true\nchannel_length = $f\nmax_age = \"0s\"\npersist = true" > "$DIR/fill.toml"
  start 1 0 "$DIR/fill.toml"
  lt fill --channels "$c" --channel "#fill" --fill "$f" --queries 0 --rate "$RATE" --duration 15m | tee -a "$OUT"
  echo "RSS after the fill: $(rss) KiB"
  stop
  # the store: history.redb (read markers; every entry before the segment format) and the
  # segment files (history.segments/, when present)
  du -sb "$DATA/history.redb" "$DATA"/history.segments 2>/dev/null || true
  du -sb "$DATA"
  ls -l "$DATA"
}

startup() {
  local runs=${1:-3}
  config "$DATA" "enabled = true\nchannel_length = 1000000\nmax_age = \"0s\"\npersist = true" > "$DIR/start.toml"
  for r in $(seq "$runs"); do
    start 1 0 "$DIR/start.toml"
    sleep "$SETTLE"
    local loaded; loaded=$(grep -o 'History loaded: .*' "$DIR/server.log" || true)
    echo "start $r: serving after $READY_MS ms; $loaded; RSS $(rss) KiB"
    echo "{\"case\":\"start\",\"round\":$r,\"ready_ms\":$READY_MS,\"rss_kib\":$(rss),\"loaded\":\"$loaded\"}" >> "$OUT"
    stop
    sleep 1
  done
  # an empty store, for comparison
  config "$DIR/empty" "enabled = true" > "$DIR/empty.toml"
  start 1 0 "$DIR/empty.toml"
  sleep "$SETTLE"
  echo "empty store: serving after $READY_MS ms; RSS $(rss) KiB"
  echo "{\"case\":\"start-empty\",\"ready_ms\":$READY_MS,\"rss_kib\":$(rss)}" >> "$OUT"
  stop
}

case "${1:-}" in
  mem) mem "${2:-}" ;;
  query) query "${2:-}" ;;
  fill) fill "${2:-}" "${3:-}" ;;
  start) startup "${2:-}" ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
