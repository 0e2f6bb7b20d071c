#!/usr/bin/env bash
# Atheme 7.2 (Debian bookworm's `atheme-services`) for the SASL/accounts work of issue 14, without
# installing it: the .deb is unpacked into a lab directory and Atheme runs from there in the
# foreground, with a config written here (protocol/charybdis, NickServ, SaslServ with PLAIN and
# EXTERNAL, the flat-file database in the lab directory) and an uplink block for
# 127.0.0.1:PORT. Nothing of the system is touched (no postinst, no service, no /etc/atheme).
#
#   scripts/atheme-lab.sh [PORT]          unpack if needed, write the config, run Atheme (foreground)
#   scripts/atheme-lab.sh --unpack        only fetch and unpack the package
#   scripts/atheme-lab.sh --conf [PORT]   only (re)write the config; prints its path
#
# Atheme dials 127.0.0.1:PORT (default 7103) at once and, failing, retries every `recontime`
# (10 s here). Ctrl-C or SIGTERM stops it (it is exec'd: the PID of this script is Atheme's). From
# a harness, signal that PID or the one in $ATHEME_LAB/run/atheme.pid and wait for it to go: a
# wrapper in between (timeout(1) killed with -9) can leave Atheme running, seen once.
# Atheme refuses to run as root: as root it runs as nobody (65534) through setpriv, as the
# ts6-lab's daemons run as an unprivileged user; the lab directory is then made reachable by it.
#
# Environment (defaults in brackets):
#   ATHEME_LAB      lab directory [/tmp/rustircd-atheme-lab]; the package goes to $ATHEME_LAB/root,
#                   config/database/log/pid to $ATHEME_LAB/run
#   ATHEME_DEB      a downloaded atheme-services_*.deb to unpack [apt-get download atheme-services]
#   SERVICES_NAME   Atheme's server name [services.test]
#   SERVICES_SID    Atheme's SID (serverinfo numeric) [3SV]
#   UPLINK_NAME     the uplink's server name, as its SERVER line says [irc.test.local]
#   SEND_PASSWORD   what Atheme sends in PASS [s2r]
#   RECV_PASSWORD   what Atheme expects in the uplink's PASS [r2s]
#   ATHEME_KEEP_DB=1  keep the accounts of the previous run (default: a fresh database)
#   ATHEME_DEBUG=1  run with -d (debug log level: every line in and out, in the log file)
#
# The log is $ATHEME_LAB/run/atheme.log (-l); with ATHEME_DEBUG=1 it shows the raw protocol.
# Verified on Debian bookworm with atheme-services 7.2.12-1+b1 against a scripted uplink (see
# docs/sasl-plan.md, "Atheme lab").
set -euo pipefail

LAB=${ATHEME_LAB:-/tmp/rustircd-atheme-lab}
ROOT=$LAB/root
RUN=$LAB/run
SERVICES_NAME=${SERVICES_NAME:-services.test}
SERVICES_SID=${SERVICES_SID:-3SV}
UPLINK_NAME=${UPLINK_NAME:-irc.test.local}
SEND_PASSWORD=${SEND_PASSWORD:-s2r}
RECV_PASSWORD=${RECV_PASSWORD:-r2s}
LIBDIR=usr/lib/x86_64-linux-gnu
BIN=$ROOT/usr/bin/atheme-services

unpack() {
  if [ -x "$BIN" ]; then
    return
  fi
  mkdir -p "$LAB"
  local deb=${ATHEME_DEB:-}
  if [ -z "$deb" ]; then
    deb=$(ls "$LAB"/atheme-services_*.deb 2>/dev/null | head -n1 || true)
  fi
  if [ -z "$deb" ]; then
    # apt-get download writes to the current directory; as root it warns that _apt cannot
    # write there (harmless: it downloads unsandboxed).
    (cd "$LAB" && apt-get download atheme-services)
    deb=$(ls "$LAB"/atheme-services_*.deb | head -n1)
  fi
  rm -rf "$ROOT"
  dpkg-deb -x "$deb" "$ROOT"
  # The package carries its own libathemecore and libmowgli; the binary finds them through
  # LD_LIBRARY_PATH (below). The modules are loaded by absolute path from the config, their
  # dependencies before them.
  [ -x "$BIN" ] || { echo "atheme-lab: $deb has no usr/bin/atheme-services" >&2; exit 1; }
  echo "atheme-lab: unpacked $(basename "$deb") into $ROOT" >&2
}

write_conf() {
  local port=$1
  local mods=$ROOT/$LIBDIR/atheme/modules
  mkdir -p "$RUN"
  cat > "$RUN/atheme.conf" <<EOF
/* Written by scripts/atheme-lab.sh: Atheme 7.2 as services for rustircd (issue 14). */
/* Dependencies first, by absolute path: a module asks for the ones it needs by their relative
   name, which Atheme resolves under its compiled-in /usr/lib/x86_64-linux-gnu/atheme/modules
   unless a module of that name is loaded already. */
loadmodule "$mods/transport/rfc1459";
loadmodule "$mods/protocol/base36uid";
loadmodule "$mods/protocol/ts6-generic";
loadmodule "$mods/protocol/charybdis";
loadmodule "$mods/backend/corestorage";
loadmodule "$mods/backend/opensex";
loadmodule "$mods/crypto/pbkdf2v2";

loadmodule "$mods/nickserv/main";
loadmodule "$mods/nickserv/register";
loadmodule "$mods/nickserv/identify";
loadmodule "$mods/nickserv/logout";
loadmodule "$mods/nickserv/info";
loadmodule "$mods/nickserv/cert";

loadmodule "$mods/saslserv/main";
loadmodule "$mods/saslserv/plain";
loadmodule "$mods/saslserv/external";

serverinfo {
	name = "$SERVICES_NAME";
	desc = "Atheme for rustircd tests";
	numeric = "$SERVICES_SID";
	recontime = 10;
	netname = "TestNet";
	hidehostsuffix = "users.test";
	adminname = "rustircd tests";
	adminemail = "admin@example.org";
	registeremail = "noreply@example.org";
	auth = none;
	maxlogins = 5;
	maxusers = 5;
	mdlimit = 30;
	emaillimit = 10;
	emailtime = 300;
};

uplink "$UPLINK_NAME" {
	host = "127.0.0.1";
	port = $port;
	send_password = "$SEND_PASSWORD";
	receive_password = "$RECV_PASSWORD";
};

general {
	/* No throttling of test clients: every one comes from 127.0.0.1. */
	flood_msgs = 0;
	flood_time = 0;
	commit_interval = 60;
	kline_time = 1;
};

nickserv {
	nick = "NickServ";
	user = "NickServ";
	host = "$SERVICES_NAME";
	real = "Nickname Services";
	spam;
	maxnicks = 5;
	expire = 30;
};

saslserv {
	nick = "SaslServ";
	user = "SaslServ";
	host = "$SERVICES_NAME";
	real = "SASL Authentication Agent";
};

logfile "$RUN/atheme.log" { debug; };
EOF
  chmod 644 "$RUN/atheme.conf"
}

port_arg() {
  case ${1:-} in
    '') echo 7103 ;;
    *[!0-9]*) echo "atheme-lab: bad port: $1" >&2; exit 2 ;;
    *) echo "$1" ;;
  esac
}

case ${1:-} in
  --unpack) unpack; exit 0 ;;
  --conf) unpack; write_conf "$(port_arg "${2:-}")"; echo "$RUN/atheme.conf"; exit 0 ;;
  -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
esac

PORT=$(port_arg "${1:-}")
unpack
write_conf "$PORT"
# The opensex database lives in $RUN (-D); Atheme creates services.db on its first commit. Each
# run starts with no accounts unless ATHEME_KEEP_DB=1.
[ "${ATHEME_KEEP_DB:-0}" = 1 ] || rm -f "$RUN/services.db" "$RUN/services.db.new"
: > "$RUN/atheme.log"
rm -f "$RUN/atheme.pid"
ARGS=(-n -c "$RUN/atheme.conf" -D "$RUN" -l "$RUN/atheme.log" -p "$RUN/atheme.pid")
[ "${ATHEME_DEBUG:-0}" = 1 ] && ARGS=(-d "${ARGS[@]}")
export LD_LIBRARY_PATH=$ROOT/$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "atheme-lab: Atheme $SERVICES_NAME ($SERVICES_SID) -> 127.0.0.1:$PORT as $UPLINK_NAME; log $RUN/atheme.log" >&2
if [ "$(id -u)" = 0 ]; then
  # nobody must reach the lab directory and write the database, log and pid in $RUN.
  chmod 755 "$LAB" "$ROOT"
  chmod 777 "$RUN"
  chmod 666 "$RUN/atheme.log"
  exec setpriv --reuid=65534 --regid=65534 --clear-groups env LD_LIBRARY_PATH="$LD_LIBRARY_PATH" "$BIN" "${ARGS[@]}"
fi
exec "$BIN" "${ARGS[@]}"
