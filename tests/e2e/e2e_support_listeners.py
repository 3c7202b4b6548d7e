# SPDX-License-Identifier: Apache-2.0
"""Recording loopback listeners for the e2e escape tests (the `listener` fixture of
conftest.py).

`Listeners` is a factory for listeners that record what they receive: TCP and UDP on
IPv4/IPv6 (any 127/8 address, any port), an HTTP sink that answers 204 while the attacker
runs, abstract unix stream/datagram sockets, an ICMP sniffer, a capture on lo by destination
address, a signal victim. Judging is by `collect()`: it sends a sentinel through the same path
*after* the attacker has finished and returns everything that came in before the sentinel, so
"nothing arrived" is decided by ordering, not by a sleep. 
"""
from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from e2e_support_runner import (COLLECT_TIMEOUT, Binaries, LineReader, user_prefix)  # noqa: E402


# ---- listeners -------------------------------------------------------------------------------


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _fmt(host: str, port: int) -> str:
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def _read_to_eof(conn: socket.socket, deadline: float) -> bytes:
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data
        conn.settimeout(left)
        try:
            chunk = conn.recv(65536)
        except (socket.timeout, OSError):
            return data
        if not chunk:
            return data
        data += chunk


class _Listener:
    """Base: `collect()` returns what arrived before a sentinel the test sends afterwards."""

    kind = "?"

    def __init__(self):
        self.token = ("SENTINEL %s\n" % uuid.uuid4().hex).encode()
        self.items: list = []

    def close(self):
        pass

    def __repr__(self):
        return "<%s %s>" % (self.kind, self.address)


class TcpListener(_Listener):
    """A TCP listener on host:port. An item is (peer, bytes): any accepted connection counts,
    even one that sent nothing (the SYN already left the jail)."""

    kind = "tcp"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None):
        super().__init__()
        self.host = host
        if sock is None:
            sock = socket.socket(_family(host), socket.SOCK_STREAM)
            # A port freed by a process that had connections on it may still have TIME_WAIT
            # entries; the fail-closed test takes over the dead proxy's port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        sock.listen(512)
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.address = _fmt(host, self.port)

    def collect(self, timeout: float = COLLECT_TIMEOUT) -> list:
        deadline = time.monotonic() + timeout
        with socket.socket(_family(self.host), socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((self.host, self.port))
            s.sendall(self.token)
            s.shutdown(socket.SHUT_WR)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%r: the sentinel connection never arrived" % self)
                self.sock.settimeout(left)
                conn, peer = self.sock.accept()
                with conn:
                    data = _read_to_eof(conn, min(deadline, time.monotonic() + 5))
                if data == self.token:
                    return list(self.items)
                self.items.append((peer[:2], data))

    def close(self):
        self.sock.close()


class HttpSink(TcpListener):
    """A TCP listener that serves while the attacker runs: it reads each request head,
    records it (an item is (peer, bytes)) and answers 204, so that a proxy relaying to it
    finishes at once instead of waiting for an answer."""

    kind = "http-sink"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self._sentinel_seen = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="http-sink-%d" % self.port)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                data = b""
                deadline = time.monotonic() + 5
                while b"\r\n\r\n" not in data and time.monotonic() < deadline:
                    conn.settimeout(max(deadline - time.monotonic(), 0.01))
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    data += chunk
                if data == self.token:
                    self._sentinel_seen.set()
                    continue
                self.items.append((peer[:2], data))
                try:
                    conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def collect(self, timeout: float = COLLECT_TIMEOUT) -> list:
        with socket.socket(_family(self.host), socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((self.host, self.port))
            s.sendall(self.token)
            s.shutdown(socket.SHUT_WR)
            if not self._sentinel_seen.wait(timeout):
                raise AssertionError("%r: the sentinel connection never arrived" % self)
        self._sentinel_seen.clear()
        return list(self.items)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in _serve
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=10)


class UdpListener(_Listener):
    """A UDP socket on host:port; an item is one datagram."""

    kind = "udp"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__()
        self.host = host
        self.sock = socket.socket(_family(host), socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.address = _fmt(host, self.port)

    def collect(self, timeout: float = COLLECT_TIMEOUT) -> list:
        deadline = time.monotonic() + timeout
        with socket.socket(_family(self.host), socket.SOCK_DGRAM) as s:
            s.sendto(self.token, (self.host, self.port))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%r: the sentinel datagram never arrived" % self)
            self.sock.settimeout(left)
            data, peer = self.sock.recvfrom(65536)
            if data == self.token:
                return list(self.items)
            self.items.append((peer[:2], data))

    def close(self):
        self.sock.close()


class AbstractListener(_Listener):
    """An abstract unix socket (@name), stream or datagram; items are connections (with their
    bytes) or datagrams."""

    kind = "abstract"

    def __init__(self, dgram: bool = False):
        super().__init__()
        self.name = "landjail-e2e-" + uuid.uuid4().hex[:12]
        self.dgram = dgram
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM if dgram
                                  else socket.SOCK_STREAM)
        self.sock.bind("\0" + self.name)
        if not dgram:
            self.sock.listen(64)
        self.address = "@" + self.name

    def collect(self, timeout: float = COLLECT_TIMEOUT) -> list:
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_UNIX, self.sock.type) as s:
            if self.dgram:
                s.sendto(self.token, "\0" + self.name)
            else:
                s.connect("\0" + self.name)
                s.sendall(self.token)
                s.shutdown(socket.SHUT_WR)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%r: the sentinel never arrived" % self)
                self.sock.settimeout(left)
                if self.dgram:
                    data = self.sock.recv(65536)
                else:
                    conn, _ = self.sock.accept()
                    with conn:
                        data = _read_to_eof(conn, min(deadline, time.monotonic() + 5))
                if data == self.token:
                    return list(self.items)
                self.items.append(data)

    def close(self):
        self.sock.close()


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class IcmpListener(_Listener):
    """A raw ICMP socket (the test runs as root) that keeps packets whose payload contains
    `match`; an item is one such packet (an echo request and the kernel's reply both count)."""

    kind = "icmp"

    def __init__(self, match: bytes):
        super().__init__()
        self.match = match
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.address = "icmp:127.0.0.1 payload %r" % match

    def collect(self, timeout: float = COLLECT_TIMEOUT) -> list:
        deadline = time.monotonic() + timeout
        body = self.token
        head = struct.pack("!BBHHH", 8, 0, 0, 0x5445, 1)
        pkt = struct.pack("!BBHHH", 8, 0, _icmp_checksum(head + body), 0x5445, 1) + body
        self.sock.sendto(pkt, ("127.0.0.1", 0))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%r: the sentinel echo never arrived" % self)
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if self.token in data:
                return list(self.items)
            if self.match in data:
                self.items.append(data)

    def close(self):
        self.sock.close()


class LoSniffer(_Listener):
    """An AF_PACKET capture on lo (the test runs as root); an item is an IPv4 packet addressed
    to `daddr`, whatever its protocol, port or options (each shows twice: out and in)."""

    kind = "sniffer"
    ETH_P_IP = 0x0800

    def __init__(self, daddr: str):
        super().__init__()
        self.daddr = socket.inet_aton(daddr)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                  socket.htons(self.ETH_P_IP))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("lo", 0))
        self.address = "lo capture of IPv4 to %s" % daddr

    def collect(self, timeout: float = COLLECT_TIMEOUT) -> list:
        # The capture sees all of lo: under load it may drop packets (the kernel counts them),
        # so the sentinel is sent again every half second until it shows.
        deadline = time.monotonic() + timeout
        resend = 0.0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    raise AssertionError("%r: the sentinel datagram never showed" % self)
                if now >= resend:
                    s.sendto(self.token, ("127.0.0.1", 9))  # discard: nobody needs to listen
                    resend = now + 0.5
                self.sock.settimeout(max(0.01, min(resend, deadline) - now))
                try:
                    pkt = self.sock.recv(65536)
                except socket.timeout:
                    continue
                if self.token in pkt:
                    return list(self.items)
                if len(pkt) >= 20 and pkt[16:20] == self.daddr:
                    self.items.append(pkt)

    def close(self):
        self.sock.close()


class Victim(_Listener):
    """`escape victim` running outside the jail as `user`; an item is a SIGUSR1 it received.
    collect() sends SIGUSR2 and reads the report up to it (sigwaitinfo takes the lowest pending
    signal first, so an earlier SIGUSR1 is always reported before the SIGUSR2)."""

    kind = "victim"

    def __init__(self, bins: Binaries, user: str):
        super().__init__()
        self.proc = subprocess.Popen(user_prefix(user) + [str(bins.escape), "victim"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.out = LineReader(self.proc.stdout)
        line = self.out.readline(COLLECT_TIMEOUT)
        m = re.fullmatch(r"READY (\d+)", line or "")
        if not m:
            self.close()
            raise AssertionError("escape victim wrote %r, want READY PID" % line)
        self.pid = int(m.group(1))
        self.address = "pid %d" % self.pid

    def collect(self, timeout: float = COLLECT_TIMEOUT) -> list:
        if self.proc.poll() is not None:
            return list(self.items)
        os.kill(self.pid, signal.SIGUSR2)
        while True:
            line = self.out.readline(timeout)
            if line is None:
                raise AssertionError("escape victim exited before reporting SIGUSR2")
            if line.startswith("SIG %d " % signal.SIGUSR2):
                self.proc.wait(timeout=timeout)
                return list(self.items)
            self.items.append(line.strip())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class Listeners:
    """Creates listeners and closes them at teardown."""

    def __init__(self, bins: Binaries | None):
        self.bins = bins
        self.open: list[_Listener] = []

    def _add(self, listener):
        self.open.append(listener)
        return listener

    def tcp(self, host: str = "127.0.0.1", port: int = 0) -> TcpListener:
        return self._add(TcpListener(host, port))

    def http_sink(self, host: str = "127.0.0.1", port: int = 0) -> HttpSink:
        return self._add(HttpSink(host, port))

    def udp(self, host: str = "127.0.0.1", port: int = 0) -> UdpListener:
        return self._add(UdpListener(host, port))

    def abstract(self, dgram: bool = False) -> AbstractListener:
        return self._add(AbstractListener(dgram))

    def icmp(self, match: bytes) -> IcmpListener:
        return self._add(IcmpListener(match))

    def sniffer(self, daddr: str) -> LoSniffer:
        return self._add(LoSniffer(daddr))

    def victim(self, user: str) -> Victim:
        return self._add(Victim(self.bins, user))

    def port_shared_by(self, hosts: list[str], keep_free: list[str] = ("127.0.0.1",)
                       ) -> tuple[int, list[TcpListener]]:
        """One port number P with a TCP listener on every host in `hosts` and nothing on the
        `keep_free` hosts (where landjail will put its proxy, with --proxy-port P)."""
        for _ in range(100):
            socks = []
            try:
                first = socket.socket(_family(hosts[0]), socket.SOCK_STREAM)
                socks.append(first)
                first.bind((hosts[0], 0))
                port = first.getsockname()[1]
                for h in hosts[1:]:
                    s = socket.socket(_family(h), socket.SOCK_STREAM)
                    socks.append(s)
                    s.bind((h, port))
                for h in keep_free:
                    with socket.socket(_family(h), socket.SOCK_STREAM) as probe:
                        probe.bind((h, port))
            except OSError:
                for s in socks:
                    s.close()
                continue
            listeners = [self._add(TcpListener(h, port, sock=s)) for h, s in zip(hosts, socks)]
            return port, listeners
        raise AssertionError("no port free on all of %r" % (hosts + list(keep_free)))

    def close_all(self):
        for x in self.open:
            x.close()
        self.open.clear()
