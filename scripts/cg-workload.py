#!/usr/bin/env python3
"""The workload of scripts/callgrind-compare.sh, against one IRC server on loopback.

    cg-workload.py --port PORT --clients N --messages K [--timeout S] [--window W]

Phases, each finished on the server before the next starts:
  1. register: the N clients connect one after the other; each sends NICK and USER and waits
     for the end of its MOTD (376 or 422) before the next connects (no throttle can trigger).
  2. join: one after the other, each joins #cg and waits for the end of NAMES (366).
     Barrier: every client sends PING and waits for its PONG.
  3. messages: client 0 sends K PRIVMSGs to #cg, at most W unacknowledged (default 1: each
     message is received by all N-1 other members before the next is sent). Barrier again.
  4. quit: one after the other, each sends QUIT and waits for the server to close its socket.

Every wait is bounded by --timeout seconds (the whole run by 10x that). Prints one JSON line
with the phase durations; exits non-zero on any failure (timeout, ERROR, unexpected close).
"""
import argparse
import json
import selectors
import socket
import sys
import time

CHANNEL = "#cg"
TEXT = "hello everyone, this is channel message number %06d of the callgrind workload"


class Failed(Exception):
    pass


class Client:
    def __init__(self, index, sock):
        self.index = index
        self.nick = "cg%04d" % index
        self.sock = sock
        self.buf = b""
        self.out = b""
        self.seen = set()  # numerics and PONG tokens seen
        self.privmsgs = 0
        self.closed = False

    def send(self, line):
        self.out += line.encode() + b"\r\n"


class Workload:
    def __init__(self, port, timeout):
        self.port = port
        self.timeout = timeout
        self.sel = selectors.DefaultSelector()
        self.clients = []
        self.deadline = time.monotonic() + 10 * timeout

    def connect(self, index):
        for _ in range(200):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        else:
            raise Failed("cannot connect to port %d" % self.port)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Client(index, s)
        self.sel.register(s, selectors.EVENT_READ, c)
        self.clients.append(c)
        return c

    def line(self, c, raw):
        text = raw.decode("utf-8", "replace")
        if text.startswith("@"):
            text = text.split(" ", 1)[1] if " " in text else ""
        words = text.split(" ")
        if words and words[0].startswith(":"):
            words = words[1:]
        if not words:
            return
        cmd = words[0].upper()
        if cmd == "PING":
            c.send("PONG " + " ".join(words[1:]))
        elif cmd == "PONG":
            c.seen.add("PONG " + words[-1].lstrip(":"))
        elif cmd == "PRIVMSG":
            c.privmsgs += 1
        elif cmd == "ERROR":
            if not c.closed and not getattr(c, "quitting", False):
                raise Failed("%s got %s" % (c.nick, text))
        elif len(cmd) == 3 and cmd.isdigit():
            c.seen.add(cmd)
            if cmd in ("432", "433", "465", "471", "473", "474", "475"):
                raise Failed("%s got %s" % (c.nick, text))

    def flush(self, c):
        while c.out and not c.closed:
            try:
                n = c.sock.send(c.out)
            except BlockingIOError:
                return
            c.out = c.out[n:]

    def pump(self, until, what):
        """Reads and answers on every socket until `until()` is true (bounded)."""
        end = min(time.monotonic() + self.timeout, self.deadline)
        while True:
            for c in self.clients:
                self.flush(c)
            if until():
                return
            left = end - time.monotonic()
            if left <= 0:
                raise Failed("timed out waiting for " + what)
            for key, _ in self.sel.select(min(left, 1.0)):
                c = key.data
                try:
                    data = c.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    data = b""
                if not data:
                    self.sel.unregister(c.sock)
                    c.sock.close()
                    c.closed = True
                    if not getattr(c, "quitting", False):
                        raise Failed("the server closed %s" % c.nick)
                    continue
                c.buf += data
                *lines, c.buf = c.buf.split(b"\n")
                for raw in lines:
                    self.line(c, raw.rstrip(b"\r"))

    def barrier(self, token):
        for c in self.clients:
            c.send("PING :%s" % token)
        self.pump(lambda: all(("PONG " + token) in c.seen for c in self.clients), "PONG " + token)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    w = Workload(a.port, a.timeout)
    times = {}
    t = time.monotonic()
    try:
        for i in range(a.clients):
            c = w.connect(i)
            c.send("NICK %s" % c.nick)
            c.send("USER cg 0 * :callgrind workload")
            w.pump(lambda: "376" in c.seen or "422" in c.seen, "%s's registration" % c.nick)
            if "001" not in c.seen:
                raise Failed("%s: end of MOTD without 001" % c.nick)
        times["register_s"] = time.monotonic() - t
        t = time.monotonic()
        for c in w.clients:
            c.send("JOIN %s" % CHANNEL)
            w.pump(lambda: "366" in c.seen, "%s's JOIN" % c.nick)
        w.barrier("joined")
        times["join_s"] = time.monotonic() - t
        t = time.monotonic()
        sender, others = w.clients[0], w.clients[1:]
        for j in range(a.messages):
            sender.send("PRIVMSG %s :%s" % (CHANNEL, TEXT % j))
            # at most `window` messages sent and not yet received by every other member
            want = a.messages if j == a.messages - 1 else j + 2 - a.window
            if want > 0:
                w.pump(lambda: all(o.privmsgs >= want for o in others), "message %d's delivery" % (want - 1))
        bad = [o.nick for o in others if o.privmsgs != a.messages]
        if bad:
            raise Failed("%d members got a message count other than %d" % (len(bad), a.messages))
        w.barrier("sent")
        times["messages_s"] = time.monotonic() - t
        t = time.monotonic()
        for c in w.clients:
            c.quitting = True
            c.send("QUIT :done")
            w.pump(lambda: c.closed, "%s's QUIT" % c.nick)
        times["quit_s"] = time.monotonic() - t
    except Failed as e:
        print("cg-workload: %s" % e, file=sys.stderr)
        return 1
    out = {"clients": a.clients, "messages": a.messages, "window": a.window,
           "delivered": a.messages * (a.clients - 1)}
    out.update({k: round(v, 3) for k, v in times.items()})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
