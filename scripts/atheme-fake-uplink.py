#!/usr/bin/env python3
"""A scripted TS6 uplink for scripts/atheme-lab.sh: accepts Atheme's connection on 127.0.0.1:PORT,
prints every line each way with the time since accept (`<<` Atheme, `>>` us), and plays the uplink
of a charybdis-style network in phases, so docs/sasl-plan.md can say what Atheme sends and what it
waits for:

  1. silence: 2 s without answering (what Atheme sends on its own, and that it waits);
  2. handshake: PASS/CAPAB/SERVER/SVINFO, one burst user (EUID or UID, by the CAPAB we sent);
     1.5 s without answering Atheme's PING (does it introduce its clients? send MECHLIST?);
  3. PONG to Atheme's PING (our end of burst for it): MECHLIST expected;
  4. the burst user registers with NickServ (ENCAP * SU expected when SERVICES was announced);
  5. SASL PLAIN for an unregistered UID (right password), then one with a wrong password, then an
     unknown mechanism; the logged-in one is introduced afterwards with its account in EUID.

  scripts/atheme-fake-uplink.py PORT [CAPAB-TOKENS...]   (default: charybdis/solanum's set)
  CAPAB=hybrid (rustircd's tokens and hybrid's 5-parameter SERVER, as rustircd sends today) or
  CAPAB=noservices (charybdis's set without SERVICES) pick another set.

Loopback only, one connection, at most ~25 s; exits 0 when every phase ran (not whether Atheme
answered as hoped: read the transcript).
"""
import base64
import os
import socket
import sys
import time

SETS = {
    "charybdis": "QS EX CHW IE KLN KNOCK TB UNKLN CLUSTER ENCAP SERVICES RSFNC SAVE EUID EOPMOD BAN MLOCK",
    "noservices": "QS EX CHW IE KLN KNOCK TB UNKLN CLUSTER ENCAP RSFNC SAVE EUID EOPMOD BAN MLOCK",
    "hybrid": "ENCAP TBURST EOB RHOST KNOCK",
}
ME, SID = "irc.test.local", "0TS"
SERVICES = os.environ.get("SERVICES_NAME", "services.test")
PASSWORD = os.environ.get("RECV_PASSWORD", "r2s")

port = int(sys.argv[1])
caps = " ".join(sys.argv[2:]) or SETS[os.environ.get("CAPAB", "charybdis")]
euid = "EUID" in caps.split()

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1)
srv.settimeout(15)
conn, _ = srv.accept()
conn.settimeout(0.1)
t0 = time.monotonic()
buf = b""
seen = []


def stamp():
    return f"{time.monotonic() - t0:6.2f}"


def pump(seconds, until=None):
    """Reads and prints Atheme's lines for `seconds` (or until a line contains `until`)."""
    global buf
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = conn.recv(65536)
            if not data:
                print(f"{stamp()} -- Atheme closed the connection")
                return False
            buf += data
        except socket.timeout:
            continue
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.rstrip(b"\r").decode(errors="replace")
            seen.append(text)
            print(f"{stamp()} << {text}", flush=True)
            if until and until in text:
                return True
    return True


def send(line):
    print(f"{stamp()} >> {line}", flush=True)
    conn.sendall(line.encode() + b"\r\n")


def uid_of(nick):
    for l in reversed(seen):
        w = l.split(" ")
        if len(w) > 9 and w[1] in ("EUID", "UID") and w[2] == nick:
            return w[9] if w[1] == "EUID" else w[9]
    return None


def introduce(nick, uid, account="*"):
    now = int(time.time())
    if euid:
        send(f":{SID} EUID {nick} 1 {now} +i {nick} host.test 127.0.0.1 {uid} * {account} :{nick}")
    else:
        send(f":{SID} UID {nick} 1 {now} +i {nick} host.test 127.0.0.1 {uid} :{nick}")
        if account != "*":
            send(f":{uid} ENCAP * LOGIN {account}")


def sasl(uid, *lines):
    for l in lines:
        send(f":{SID} ENCAP {SERVICES} SASL {uid} * {l}")
        pump(0.7)


print(f"# CAPAB we send: {caps}")
print("# phase 1: silence")
pump(2)
print("# phase 2: handshake and burst, PING not answered")
send(f"PASS {PASSWORD} TS 6 :{SID}")
send(f"CAPAB :{caps}")
if os.environ.get("CAPAB") == "hybrid":
    # What rustircd sends today: hybrid 8.2's SERVER, with the SID and flags.
    send(f"SERVER {ME} 1 {SID} + :fake uplink")
else:
    send(f"SERVER {ME} 1 :fake uplink")
send(f"SVINFO 6 6 0 :{int(time.time())}")
introduce("alice", f"{SID}AAAAAA")
pump(1.5)
print("# phase 3: PONG")
send(f":{SID} PONG {ME} :{SERVICES}")
pump(1.5)
print("# phase 4: NickServ REGISTER")
ns = uid_of("NickServ")
send(f":{SID}AAAAAA PRIVMSG {ns or 'NickServ@' + SERVICES} :REGISTER s3cretPass alice@example.org")
pump(2)
print("# phase 5: SASL")
plain = base64.b64encode(b"\0alice\0s3cretPass").decode()
bad = base64.b64encode(b"\0alice\0wrong").decode()
sasl(f"{SID}AAAAAB", "H host.test 127.0.0.1 P", "S PLAIN", f"C {plain}")
introduce("bob", f"{SID}AAAAAB", "alice")
pump(1)
sasl(f"{SID}AAAAAC", "H host.test 127.0.0.1 P", "S PLAIN", f"C {bad}")
sasl(f"{SID}AAAAAD", "H host.test 127.0.0.1 P", "S SCRAM-SHA-256")
pump(1)
print("# done")
conn.close()
srv.close()
