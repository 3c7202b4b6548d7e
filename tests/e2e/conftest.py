"""Fixtures and helpers for the landjail end-to-end tests (tests/e2e, see README.md there).

The suite runs as root and switches to uid 65534 with setpriv for the unprivileged runs.

Fixtures (general; test modules may also import the helpers below):
- `bins`: paths of landjail, landjail-proxy and the e2e programs (escape, escape-static,
  outer-seccomp); missing binaries skip the tests, or fail them with LANDJAIL_REQUIRE_PROXY=1.
- `user`: "root" or "nobody" (uid/gid 65534); every test that uses it runs once for each.
- `jail`: a `JailRunner` for `user`: `jail.run(["cmd", ...], mode="full")` runs
  `landjail --audit-log ... --ca-dir ... -- cmd ...` as that user, optionally under
  outer-seccomp (`MODES`), in a fresh work directory the user owns, and returns a
  `JailResult` (exit status, output, audit events). `jail.run_plain()` runs the same command
  as the same user without landjail (the control), `jail.popen()` starts landjail without
  waiting.
- `listener`: a `Listeners` factory for loopback listeners that record what they receive:
  TCP and UDP on IPv4/IPv6 (any 127/8 address, any port), an HTTP sink that answers 204
  while the attacker runs, abstract unix stream/datagram
  sockets, an ICMP sniffer, a capture on lo by destination address, a signal victim.
  Judging is by `collect()`: it sends a sentinel through the same path *after* the attacker
  has finished and returns everything that came in before the sentinel, so "nothing
  arrived" is decided by ordering, not by a sleep.
- `PlainProxy`: landjail-proxy started by hand, for controls that attack a proxy.
- `pki`, `origin`: a test CA and an HTTPS origin (tests/integration/origin.py) for the
  acceptance commands, in a directory 65534 can read.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
INTEGRATION = REPO / "tests" / "integration"
sys.path.insert(0, str(INTEGRATION))

import origin as origin_mod  # noqa: E402  (tests/integration/origin.py)
from clients import clean_env  # noqa: E402  (tests/integration/clients.py)
sys.path.insert(0, str(HERE))
from e2e_support_jail import read_audit  # noqa: E402


def _load_integration_conftest():
    """tests/integration/conftest.py under another module name (its PKI helpers); loading it
    as `conftest` would clash with this file."""
    spec = importlib.util.spec_from_file_location("lj_integration_conftest",
                                                  INTEGRATION / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_integration = _load_integration_conftest()

NOBODY_UID = 65534
USERS = ("root", "nobody")
# outer-seccomp flags for each degradation mode (DESIGN §3 "Degradation").
MODES = {
    "full": [],
    "addfd": ["--pidfd-getfd-eperm"],                      # level 2: the ADDFD fallback
    "docker": ["--landlock-enosys", "--pidfd-getfd-eperm"],  # Docker's default profile
}
DEFAULT_ALLOW = ("domain=landjail-e2e.test",)
RUN_TIMEOUT = 120.0
COLLECT_TIMEOUT = 10.0
# Variables the static attacker removes (env -u) so nothing but the kernel stands in its way.
PROXY_VARS = ("LD_PRELOAD", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
              "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")


# ---- users -----------------------------------------------------------------------------------


def user_prefix(user: str) -> list[str]:
    """argv prefix that runs a command as `user` ("root": nothing; "nobody": setpriv)."""
    if user == "root":
        return []
    if user == "nobody":
        return ["setpriv", "--reuid=%d" % NOBODY_UID, "--regid=%d" % NOBODY_UID,
                "--clear-groups", "--"]
    raise ValueError("unknown user %r" % user)


def user_ids(user: str) -> tuple[int, int]:
    return (0, 0) if user == "root" else (NOBODY_UID, NOBODY_UID)


def give_to(path: Path, user: str):
    """Makes path (a file or directory we created) belong to `user`."""
    uid, gid = user_ids(user)
    os.chown(path, uid, gid)


# ---- host facts (what an attacker could do here without any jail) ----------------------------


def ping_group_allows(gid: int) -> bool:
    """Whether unprivileged ICMP sockets (SOCK_DGRAM/IPPROTO_ICMP) are allowed for gid."""
    try:
        lo, hi = map(int, Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    except (OSError, ValueError):
        return False
    return lo <= gid <= hi


def kernel_has_x32() -> bool:
    """Whether the kernel runs x32 syscalls (CONFIG_X86_X32_ABI): getpid with bit 30."""
    if os.uname().machine != "x86_64":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(ctypes.c_long(0x40000000 | 39)) > 0


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ---- binaries --------------------------------------------------------------------------------


class Binaries:
    def __init__(self):
        env = os.environ.get
        self.landjail = Path(env("LANDJAIL") or REPO / "build" / "bin" / "landjail").resolve()
        proxy = env("LANDJAIL_PROXY")
        self.proxy = Path(proxy).resolve() if proxy else None
        e2e = Path(env("LANDJAIL_E2E_BIN") or REPO / "build" / "tests" / "e2e").resolve()
        self.escape = e2e / "escape"
        self.escape_static = e2e / "escape-static"
        self.outer_seccomp = e2e / "outer-seccomp"

    def proxy_path(self) -> Path:
        """landjail-proxy: $LANDJAIL_PROXY, else next to landjail (where landjail looks)."""
        return self.proxy or self.landjail.parent / "landjail-proxy"

    def all(self) -> list[Path]:
        return [p for p in (self.landjail, self.proxy, self.escape, self.escape_static,
                            self.outer_seccomp) if p is not None]


@pytest.fixture(scope="session")
def bins() -> Binaries:
    if os.geteuid() != 0:
        pytest.skip("the e2e suite runs as root (it switches to uid 65534 with setpriv)")
    b = Binaries()
    missing = [str(p) for p in b.all() if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        msg = ("not built: %s (run `make test-e2e`, or set LANDJAIL, LANDJAIL_PROXY and "
               "LANDJAIL_E2E_BIN)" % ", ".join(missing))
        if os.environ.get("LANDJAIL_REQUIRE_PROXY") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    # uid 65534 must be able to reach them (a checkout under a 0700 home cannot be used).
    probe = subprocess.run(user_prefix("nobody") + ["sh", "-c", 'for f; do test -x "$f" || '
                                                    'echo "$f"; done', "sh"] +
                           [str(p) for p in b.all()], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip():
        pytest.fail("uid 65534 cannot execute %s: make the checkout world-readable"
                    % (probe.stdout.strip() or probe.stderr))
    return b


# ---- work directories ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_root():
    """A root-owned 0755 directory under /tmp for this session (pytest's own tmp_path sits
    under a 0700 directory that uid 65534 cannot enter)."""
    d = Path(tempfile.mkdtemp(prefix="landjail-e2e-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


_counter = [0]


def new_workdir(root: Path, user: str, name: str = "run") -> Path:
    """A fresh directory owned by `user` (with home/ in it) under root."""
    _counter[0] += 1
    d = root / ("%s-%d" % (re.sub(r"[^A-Za-z0-9_.-]", "_", name), _counter[0]))
    d.mkdir(mode=0o755)
    (d / "home").mkdir(mode=0o755)
    give_to(d, user)
    give_to(d / "home", user)
    return d


# ---- running landjail ------------------------------------------------------------------------


class JailResult:
    def __init__(self, argv, returncode, stdout, stderr, workdir: Path, audit_path: Path | None,
                 mode: str, user: str):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.workdir = workdir
        self.audit_path = audit_path
        self.mode = mode
        self.user = user

    @property
    def audit(self) -> list[dict]:
        return read_audit(self.audit_path) if self.audit_path else []

    def events(self, event: str) -> list[dict]:
        return [e for e in self.audit if e.get("event") == event]

    def __repr__(self):
        return ("JailResult(user=%s, mode=%s, rc=%r, argv=%r,\nstdout=%s\nstderr=%s)"
                % (self.user, self.mode, self.returncode, self.argv, self.stdout[-4000:],
                   self.stderr[-4000:]))


class JailRunner:
    """Runs commands in landjail (or, for controls, without it) as one user."""

    def __init__(self, bins: Binaries, user: str, root: Path):
        self.bins = bins
        self.user = user
        self.root = root

    def workdir(self, name: str = "run") -> Path:
        return new_workdir(self.root, self.user, name)

    def env(self, workdir: Path, **extra) -> dict:
        env = clean_env(home=str(workdir / "home"), TMPDIR=str(workdir), **extra)
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        if self.bins.proxy is not None:
            env["LANDJAIL_PROXY"] = str(self.bins.proxy)
        return env

    def argv(self, command, workdir: Path, mode: str = "full", allow=DEFAULT_ALLOW,
             args=(), audit=True) -> list[str]:
        """The full argv: [setpriv ...] [outer-seccomp FLAGS --] landjail OPTIONS -- command."""
        wrap = [str(self.bins.outer_seccomp), *MODES[mode], "--"] if MODES[mode] else []
        lj = [str(self.bins.landjail), "--ca-dir", str(workdir / "ca")]
        if audit:
            lj += ["--audit-log", str(workdir / "audit.jsonl")]
        for rule in allow:
            lj += ["--allow", rule]
        lj += list(args)
        return user_prefix(self.user) + wrap + lj + ["--"] + [str(c) for c in command]

    def run(self, command, mode: str = "full", allow=DEFAULT_ALLOW, args=(), env=None,
            timeout: float = RUN_TIMEOUT, workdir: Path | None = None, input=None) -> JailResult:
        """Runs `landjail ... -- command` to completion as this user."""
        workdir = workdir or self.workdir("jail-" + mode)
        argv = self.argv(command, workdir, mode, allow, args)
        p = subprocess.run(argv, env=env or self.env(workdir), cwd=str(workdir), input=input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        return JailResult(argv, p.returncode, p.stdout.decode(errors="replace"),
                          p.stderr.decode(errors="replace"), workdir, workdir / "audit.jsonl",
                          mode, self.user)

    def popen(self, command, mode: str = "full", allow=DEFAULT_ALLOW, args=(),
              workdir: Path | None = None, **kw) -> tuple[subprocess.Popen, Path]:
        """Starts landjail without waiting (stdout/stderr pipes unless given). The Popen's pid
        is landjail's own: setpriv and outer-seccomp exec into it."""
        workdir = workdir or self.workdir("jail-" + mode)
        argv = self.argv(command, workdir, mode, allow, args)
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(argv, env=self.env(workdir), cwd=str(workdir), **kw)
        return p, workdir

    def run_plain(self, command, timeout: float = RUN_TIMEOUT,
                  workdir: Path | None = None) -> JailResult:
        """The control: the same command as the same user, without landjail."""
        workdir = workdir or self.workdir("plain")
        argv = user_prefix(self.user) + [str(c) for c in command]
        p = subprocess.run(argv, env=self.env(workdir), cwd=str(workdir),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        return JailResult(argv, p.returncode, p.stdout.decode(errors="replace"),
                          p.stderr.decode(errors="replace"), workdir, None, "none", self.user)


class PlainProxy:
    """landjail-proxy started by hand (outside any jail) as `user`, listening on
    127.0.0.1:port; for controls that need a proxy to attack."""

    def __init__(self, bins: Binaries, user: str, workdir: Path, port: int, args=()):
        r, w = os.pipe()
        argv = user_prefix(user) + [str(bins.proxy_path()), "--listen", "127.0.0.1:%d" % port,
                                    "--ready-fd", str(w), "--ca-dir", str(workdir / "ca"),
                                    "--disable-audit-logs", *args]
        self.proc = subprocess.Popen(argv, pass_fds=(w,), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=clean_env(home=str(workdir / "home")))
        os.close(w)
        try:
            ready = LineReader(r).readline(30)
        finally:
            os.close(r)
        if ready != "127.0.0.1:%d" % port:
            self.stop()
            raise AssertionError("landjail-proxy %r wrote %r on --ready-fd" % (argv, ready))
        self.pid = self.proc.pid  # setpriv execs the proxy: same pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.communicate(timeout=30)


@pytest.fixture(params=USERS)
def user(request) -> str:
    """The user the jail (and the attacker) runs as: root, then nobody (uid 65534)."""
    return request.param


@pytest.fixture
def jail(bins, user, shared_root) -> JailRunner:
    return JailRunner(bins, user, shared_root)


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


class LineReader:
    """Reads lines from a pipe (a file object or fd) with a deadline, unbuffered: select()
    and a buffered readline() do not mix (lines already in Python's buffer are invisible to
    select). `lines` keeps everything read so far."""

    def __init__(self, f):
        self.fd = f if isinstance(f, int) else f.fileno()
        self.buf = b""
        self.lines: list[str] = []
        self.eof = False
        self._next = 0  # index of the first line not yet returned by readline()

    def _fill(self, deadline: float) -> bool:
        """Reads once (waiting up to the deadline); False on timeout."""
        left = deadline - time.monotonic()
        r, _, _ = select.select([self.fd], [], [], max(left, 0))
        if not r:
            return False
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.eof = True
            if self.buf:
                self.lines.append(self.buf.decode(errors="replace"))
                self.buf = b""
            return True
        self.buf += chunk
        *complete, self.buf = self.buf.split(b"\n")
        self.lines += [x.decode(errors="replace") for x in complete]
        return True

    def readline(self, timeout: float = 30.0) -> str | None:
        """The next line (without newline), None at EOF; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while self._next >= len(self.lines):
            if self.eof:
                return None
            if not self._fill(deadline):
                raise AssertionError("no line after %.0fs; got %r" % (timeout, self.lines))
        self._next += 1
        return self.lines[self._next - 1]

    def until(self, pattern: str, timeout: float = 30.0) -> re.Match:
        """The first line read so far (or later) that matches pattern (re.match)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                m = re.match(pattern, line)
                if m:
                    return m
            seen = len(self.lines)
            if self.eof:
                raise AssertionError("EOF before a line matching %r; got %r"
                                     % (pattern, self.lines))
            if not self._fill(deadline):
                raise AssertionError("no line matching %r after %.0fs; got %r"
                                     % (pattern, timeout, self.lines))


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


@pytest.fixture
def listener(bins) -> Listeners:
    """A factory for recording listeners (see Listeners); all closed at teardown."""
    ls = Listeners(bins)
    yield ls
    ls.close_all()


# ---- PKI and an HTTPS origin (for the acceptance commands) -----------------------------------


class PKI:
    pass


@pytest.fixture(scope="session")
def pki(shared_root) -> PKI:
    """A test CA and a certificate for origin.test (openssl CLI, as tests/integration does),
    readable by uid 65534 (landjail-proxy reads ca.pem as --upstream-ca)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl CLI not found (Debian package: openssl)")
    d = shared_root / "pki"
    d.mkdir(mode=0o755)
    _integration._make_ca(d, "ca", "landjail e2e test CA")
    _integration._make_leaf(d, "origin", "ca", "origin.test",
                            "DNS:origin.test,DNS:evil.test,IP:127.0.0.1")
    (d / "ca.pem").chmod(0o644)
    p = PKI()
    p.dir = d
    p.ca_pem = d / "ca.pem"
    p.origin_cert, p.origin_key = d / "origin.pem", d / "origin.key"
    return p


class HttpsOrigin:
    def __init__(self, pki: PKI):
        self.state = origin_mod.Origin()
        self.https = self.state.listen("https", "127.0.0.1", certfile=str(pki.origin_cert),
                                       keyfile=str(pki.origin_key))
        self.port = self.https.port

    def resolve_args(self, *names: str) -> list[str]:
        out = []
        for n in names:
            out += ["--resolve", "%s:443:127.0.0.1:%d" % (n, self.port)]
        return out

    def received(self):
        return self.state.received()

    def clear(self):
        self.state.clear()


@pytest.fixture(scope="session")
def origin_session(pki):
    o = HttpsOrigin(pki)
    yield o
    o.state.stop()


@pytest.fixture
def origin(origin_session) -> HttpsOrigin:
    """The session's HTTPS origin (answers GET / with origin.HELLO), its record cleared."""
    origin_session.clear()
    return origin_session
