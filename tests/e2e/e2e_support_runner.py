# SPDX-License-Identifier: Apache-2.0
"""Running landjail in the e2e tests (the `jail` fixture of conftest.py, and the test modules
that import these helpers).

- users: root and uid 65534 (`user_prefix`, `user_ids`, `give_to`), probes of what the kernel
  allows anyone (`ping_group_allows`, `kernel_has_x32`, `ipv6_loopback`).
- `Binaries`: paths of landjail, landjail-proxy and the e2e programs (escape, escape-static,
  outer-seccomp).
- `JailRunner`: `run(["cmd", ...], mode="full")` runs `landjail --audit-log ... --ca-dir ...
  -- cmd ...` as the user, optionally under outer-seccomp (`MODES`), in a fresh work directory
  the user owns, and returns a `JailResult` (exit status, output, audit events); `run_plain()`
  runs the same command as the same user without landjail (the control), `popen()` starts
  landjail without waiting.
- `PlainProxy`: landjail-proxy started by hand, for controls that attack a proxy.
- `LineReader`: reads a process's output line by line with a deadline.
"""
from __future__ import annotations

import ctypes
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
INTEGRATION = REPO / "tests" / "integration"
sys.path.insert(0, str(INTEGRATION))

from clients import clean_env  # noqa: E402  (tests/integration/clients.py)
sys.path.insert(0, str(HERE))
from e2e_support_audit import read_audit  # noqa: E402


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
