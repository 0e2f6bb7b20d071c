#!/usr/bin/env python3
"""Server memory per idle registered connection, WebSocket or plain TCP (docs/performance.md,
"WebSocket").

Opens --clients connections to a running server (after --warmup ones, kept open, so the
server's first-connection allocations are not counted), registers each (NICK/USER, read to 376
or 422: the MOTD burst is over), lets them idle --settle seconds, and prints the server's RSS
growth divided by the count. WebSocket clients use the text.ircv3.net subprotocol, one masked
text frame per line (as a browser sends them). Standard library only.

    scripts/ws-memory.py --server 127.0.0.1:8097 --pid PID --clients 2000 [--tcp] [--settle 8]
                         [--big N]

--big N: before idling, each client sends one N-byte line (a PRIVMSG to itself, over the line
limit when N > 512: answered with 417) and reads the answer, to show what a large message
leaves behind.
"""

import argparse
import base64
import os
import selectors
import socket
import struct
import sys
import time


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS")


def ws_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return head + mask + body


class Client:
    def __init__(self, addr, ws, nick):
        self.ws = ws
        self.s = socket.create_connection(addr)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.nick = nick
        if ws:
            key = base64.b64encode(os.urandom(16)).decode()
            req = (
                f"GET / HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: text.ircv3.net\r\n\r\n"
            )
            self.s.sendall(req.encode())
            while b"\r\n\r\n" not in self.buf:
                self.recv_some()
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise SystemExit(f"upgrade refused: {head!r}")

    def recv_some(self):
        d = self.s.recv(65536)
        if not d:
            raise SystemExit(f"{self.nick}: connection closed")
        self.buf += d

    def send(self, line: str):
        data = line.encode()
        self.s.sendall(ws_frame(data) if self.ws else data + b"\r\n")

    def lines(self):
        """Complete lines (or messages) received so far."""
        out = []
        if not self.ws:
            while b"\r\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\r\n")
                out.append(line)
            return out
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, at = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
            if len(self.buf) < at + n:
                break
            payload, self.buf = self.buf[at : at + n], self.buf[at + n :]
            if b0 & 0x0F in (1, 2):
                out.append(payload)
        return out

    def wait_for(self, verbs):
        while True:
            for line in self.lines():
                parts = line.split(b" ")
                if parts[0].startswith(b"@"):
                    parts = parts[1:]
                if len(parts) > 1 and parts[0] == b"PING":
                    self.send("PONG " + parts[1].decode())
                if len(parts) > 1 and parts[1] in verbs:
                    return parts[1]
            self.recv_some()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--settle", type=float, default=8.0)
    ap.add_argument("--tcp", action="store_true", help="plain TCP clients instead of WebSocket")
    ap.add_argument("--big", type=int, default=0)
    a = ap.parse_args()
    host, port = a.server.rsplit(":", 1)
    addr = (host, int(port))
    ws = not a.tcp

    def connect(i):
        c = Client(addr, ws, f"wm{i}")
        c.send(f"NICK {c.nick}")
        c.send(f"USER {c.nick} 0 * :memory")
        c.wait_for((b"376", b"422"))
        if a.big:
            body = "x" * max(0, a.big - len(f"PRIVMSG {c.nick} :"))
            c.send(f"PRIVMSG {c.nick} :{body}")
            c.wait_for((b"PRIVMSG", b"417"))
        return c

    keep = [connect(i) for i in range(a.warmup)]
    time.sleep(1)
    before = rss(a.pid)
    t = time.time()
    keep += [connect(a.warmup + i) for i in range(a.clients)]
    took = time.time() - t
    time.sleep(a.settle)
    after = rss(a.pid)
    per = (after - before) / a.clients
    kind = "WebSocket" if ws else "TCP"
    print(
        f"{kind}: {a.clients} clients registered in {took:.1f} s; RSS {before / 1e6:.1f} -> "
        f"{after / 1e6:.1f} MB after {a.settle:g} s idle: {per:.0f} B per connection"
    )
    for c in keep:
        c.s.close()


if __name__ == "__main__":
    sys.exit(main())
