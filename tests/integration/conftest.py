"""Fixtures for the landjail-proxy integration tests.

- `pki`: a throw-away test CA and certificates made with the openssl CLI (EC P-256).
- `origins`: local origin servers on ephemeral loopback ports (see origin.py), one session.
- `proxy`: a factory that starts build/bin/landjail-proxy (or $LANDJAIL_PROXY) with the given
  rules, --resolve mappings to the origins, a fresh --ca-dir and --audit-log, waits for the
  address on --ready-fd, and stops it with SIGTERM at teardown (asserting exit status 0).

Names the proxy resolves (through --resolve, never DNS):
  origin.test, other.test   :80 -> the HTTP origin, :443 -> the HTTPS origin (certificate
                            for origin.test, other.test, 127.0.0.1 and ::1, from the test CA)
  origin6.test              :80/:443 -> the same origins listening on [::1] (when available)
  wrong.test                :443 -> an HTTPS origin whose certificate names unrelated.test
  untrusted.test            :443 -> an HTTPS origin whose certificate is from another CA
  closed.test               :80/:443 -> a bound port nobody listens on (connect refused)
  slow.test                 :80/:443 -> a listener that never accepts nor answers

Without the binary every test that needs the proxy is skipped (development only);
LANDJAIL_REQUIRE_PROXY=1 turns that skip into a failure (CI).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import origin as origin_mod  # noqa: E402
from clients import clean_env  # noqa: E402

REPO = HERE.parent.parent
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


# ---- PKI -------------------------------------------------------------------------------------


class PKI:
    pass


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), p.stderr))


def _make_ca(d: Path, name: str, cn: str):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", name + ".key", "-out", name + ".pem", "-days", "30", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash", cwd=d)


def _make_leaf(d: Path, name: str, ca: str, cn: str, sans: str):
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    (d / (name + ".ext")).write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectAltName=%s\n" % sans)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-days", "30", "-sha256", "-extfile", name + ".ext",
             "-out", name + ".pem", cwd=d)


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    if shutil.which("openssl") is None:
        pytest.fail("openssl CLI not found (Debian package: openssl)")
    d = tmp_path_factory.mktemp("pki")
    _make_ca(d, "ca", "landjail integration test CA")
    _make_leaf(d, "origin", "ca", "origin.test",
               "DNS:origin.test,DNS:other.test,DNS:origin6.test,IP:127.0.0.1,IP:::1")
    _make_leaf(d, "wrongname", "ca", "unrelated.test", "DNS:unrelated.test")
    _make_ca(d, "otherca", "some CA nobody trusts")
    _make_leaf(d, "untrusted", "otherca", "untrusted.test", "DNS:untrusted.test")
    p = PKI()
    p.dir = d
    p.ca_pem = d / "ca.pem"
    p.origin_cert, p.origin_key = d / "origin.pem", d / "origin.key"
    p.wrong_cert, p.wrong_key = d / "wrongname.pem", d / "wrongname.key"
    p.untrusted_cert, p.untrusted_key = d / "untrusted.pem", d / "untrusted.key"
    p.other_ca_pem = d / "otherca.pem"
    return p


# ---- origins ---------------------------------------------------------------------------------


def _ipv6_loopback() -> bool:
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class Origins:
    """The origin servers of one test session, their ports and the --resolve mappings."""

    def __init__(self, pki: PKI):
        self.state = origin_mod.Origin()
        o = self.state
        self.http = o.listen("http", "127.0.0.1")
        self.https = o.listen("https", "127.0.0.1", certfile=str(pki.origin_cert),
                              keyfile=str(pki.origin_key))
        self.wrong = o.listen("wrong", "127.0.0.1", certfile=str(pki.wrong_cert),
                              keyfile=str(pki.wrong_key))
        self.untrusted = o.listen("untrusted", "127.0.0.1", certfile=str(pki.untrusted_cert),
                                  keyfile=str(pki.untrusted_key))
        self.has_ipv6 = _ipv6_loopback()
        if self.has_ipv6:
            self.http6 = o.listen("http6", "::1")
            self.https6 = o.listen("https6", "::1", certfile=str(pki.origin_cert),
                                   keyfile=str(pki.origin_key))
        # A port that refuses connections: bound (so nobody else gets it), never listening.
        self._closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._closed.bind(("127.0.0.1", 0))
        self.closed_port = self._closed.getsockname()[1]
        # A port that accepts at the kernel level (backlog) but never answers.
        self._slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._slow.bind(("127.0.0.1", 0))
        self._slow.listen(64)
        self.blackhole_port = self._slow.getsockname()[1]

    def resolve_args(self) -> list[str]:
        m = []

        def add(host, port, addr, to):
            m.extend(["--resolve", "%s:%d:%s:%d" % (host, port, addr, to)])

        for name in ("origin.test", "other.test"):
            add(name, 80, "127.0.0.1", self.http.port)
            add(name, 443, "127.0.0.1", self.https.port)
        if self.has_ipv6:
            add("origin6.test", 80, "[::1]", self.http6.port)
            add("origin6.test", 443, "[::1]", self.https6.port)
        add("wrong.test", 443, "127.0.0.1", self.wrong.port)
        add("untrusted.test", 443, "127.0.0.1", self.untrusted.port)
        add("closed.test", 80, "127.0.0.1", self.closed_port)
        add("closed.test", 443, "127.0.0.1", self.closed_port)
        add("slow.test", 80, "127.0.0.1", self.blackhole_port)
        add("slow.test", 443, "127.0.0.1", self.blackhole_port)
        return m

    # conveniences that forward to the shared state
    def received(self, path_prefix=None, method=None):
        return self.state.received(path_prefix, method)

    def wait_for(self, predicate, timeout=10.0, what="condition"):
        return self.state.wait_for(predicate, timeout, what)

    def clear(self):
        self.state.clear()

    def stop(self):
        self.state.stop()
        self._closed.close()
        self._slow.close()


@pytest.fixture(scope="session")
def origins_session(pki):
    o = Origins(pki)
    yield o
    o.stop()


@pytest.fixture
def origins(origins_session):
    """The session's origins, with the record of received requests cleared for this test."""
    origins_session.clear()
    return origins_session


# ---- the proxy -------------------------------------------------------------------------------


def proxy_binary() -> Path:
    env = os.environ.get("LANDJAIL_PROXY")
    return Path(env).resolve() if env else REPO / "build" / "bin" / "landjail-proxy"


@pytest.fixture(scope="session")
def proxy_bin() -> Path:
    b = proxy_binary()
    if not (b.is_file() and os.access(b, os.X_OK)):
        msg = ("landjail-proxy not found at %s (build it with `make`, or set LANDJAIL_PROXY)" % b)
        if os.environ.get("LANDJAIL_REQUIRE_PROXY") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return b


class ProxyProcess:
    """One running landjail-proxy."""

    def __init__(self, binary: Path, workdir: Path, args: list[str], ca_dir: Path,
                 wrap: tuple[str, ...] = ()):
        self.workdir = workdir
        self.ca_dir = ca_dir
        self.ca_pem = ca_dir / "ca.pem"
        self.ca_key = ca_dir / "ca-key.pem"
        self.audit_path = workdir / "audit.jsonl"
        self.stderr_path = workdir / "stderr.txt"
        self.stdout_path = workdir / "stdout.txt"
        home = workdir / "home"
        home.mkdir(exist_ok=True)
        r, w = os.pipe()
        # wrap: a command that execs the proxy (same pid), e.g. prlimit --nofile=64:64.
        self.argv = list(wrap) + [str(binary), "--listen", "127.0.0.1:0", "--ready-fd", str(w),
                                  "--ca-dir", str(ca_dir), "--audit-log", str(self.audit_path)]
        self.argv += args
        self.returncode = None
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, pass_fds=(w,), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=clean_env(home=str(home)),
                                         cwd=str(workdir))
        os.close(w)
        try:
            self.ready_line = self._read_ready(r)
        finally:
            os.close(r)
        m = re.fullmatch(r"127\.0\.0\.1:(\d+)\n", self.ready_line)
        if not m:
            self.kill()
            raise AssertionError("landjail-proxy wrote %r on --ready-fd, want '127.0.0.1:PORT\\n'"
                                 "\nstderr:\n%s" % (self.ready_line, self.stderr))
        self.port = int(m.group(1))
        self.url = "http://127.0.0.1:%d" % self.port
        self.pid = self.proc.pid

    def _read_ready(self, fd: int) -> str:
        data = b""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError("landjail-proxy not ready after %.0fs; argv=%r\nstderr:\n%s"
                                     % (READY_TIMEOUT, self.argv, self.stderr))
            rl, _, _ = select.select([fd], [], [], left)
            if not rl:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:  # EOF: the proxy wrote its line and closed, or it exited
                break
            data += chunk
        if not data:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
            self.returncode = rc
            raise AssertionError("landjail-proxy exited (status %r) without becoming ready; "
                                 "argv=%r\nstderr:\n%s" % (rc, self.argv, self.stderr))
        return data.decode(errors="replace")

    # ---- observations ----
    @property
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status_kib(self, field: str) -> int:
        """A field of /proc/PID/status in KiB (VmRSS, VmHWM)."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def _audit_lines(self) -> list[dict]:
        try:
            text = self.audit_path.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.split("\n")[:-1]:  # only complete lines
            if line.strip():
                out.append(json.loads(line))
        return out

    def audit(self, n: int | None = None, timeout: float = 10.0, where=None) -> list[dict]:
        """The audit lines (parsed). With n: waits until at least n lines (that satisfy
        `where`, when given) have been written, upper bound `timeout`. Returns all lines (or
        those satisfying `where`)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self._audit_lines()
            sel = [x for x in lines if where(x)] if where else lines
            if n is None or len(sel) >= n:
                return sel
            if time.monotonic() >= deadline:
                raise AssertionError("audit: %d line(s) after %.0fs, want %d; lines: %r\nstderr:\n%s"
                                     % (len(sel), timeout, n, lines, self.stderr[-3000:]))
            time.sleep(0.02)

    # ---- stopping ----
    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait, assert exit status 0. Idempotent. After it, audit() is final."""
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("landjail-proxy did not exit within %.0fs of SIGTERM\nstderr:\n%s"
                                 % (timeout, self.stderr[-3000:]))
        assert self.returncode == 0, ("landjail-proxy exited with status %r after SIGTERM\n"
                                      "stderr:\n%s" % (self.returncode, self.stderr[-3000:]))
        return self.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.returncode = self.proc.wait()


class ProxyFactory:
    def __init__(self, binary: Path, origins: Origins, pki: PKI, tmp_path: Path):
        self.binary = binary
        self.origins = origins
        self.pki = pki
        self.tmp_path = tmp_path
        self.started: list[ProxyProcess] = []

    def __call__(self, allow=("domain=origin.test",), deny=(), args=(), upstream_ca=True,
                 resolve=True, ca_dir: Path | None = None, config: str | None = None,
                 wrap: tuple[str, ...] = ()) -> ProxyProcess:
        """Starts a proxy. allow/deny: rules (--allow/--deny); args: extra arguments;
        upstream_ca: pass the test CA as --upstream-ca; config: YAML text for --config;
        wrap: a command prefix that execs the proxy (e.g. prlimit)."""
        n = len(self.started)
        workdir = self.tmp_path / ("proxy%d" % n)
        workdir.mkdir()
        if ca_dir is None:
            ca_dir = workdir / "ca"
        argv: list[str] = []
        for r in allow:
            argv += ["--allow", r]
        for r in deny:
            argv += ["--deny", r]
        if upstream_ca:
            argv += ["--upstream-ca", str(self.pki.ca_pem)]
        if resolve:
            argv += self.origins.resolve_args()
        if config is not None:
            cfg = workdir / "config.yaml"
            cfg.write_text(config)
            argv += ["--config", str(cfg)]
        argv += list(args)
        p = ProxyProcess(self.binary, workdir, argv, ca_dir, wrap)
        self.started.append(p)
        return p

    def run_expecting_failure(self, args: list[str], timeout: float = 15):
        """Runs the proxy with arguments that must make it fail before listening. Returns
        (exit status, stderr text, bytes written on the ready fd)."""
        workdir = self.tmp_path / ("fail%d" % len(self.started))
        workdir.mkdir()
        r, w = os.pipe()
        argv = [str(self.binary), "--listen", "127.0.0.1:0", "--ready-fd", str(w),
                "--ca-dir", str(workdir / "ca"), "--audit-log", str(workdir / "audit.jsonl")]
        argv += args
        p = subprocess.Popen(argv, pass_fds=(w,), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=clean_env(home=str(workdir)))
        os.close(w)
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            os.close(r)
            raise AssertionError("landjail-proxy %r kept running; it should have refused" % args)
        ready = b""
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            ready += chunk
        os.close(r)
        return p.returncode, err.decode(errors="replace"), ready

    def stop_all(self):
        errors = []
        for p in self.started:
            try:
                p.stop()
            except AssertionError as e:
                errors.append(str(e))
        if errors:
            pytest.fail("\n".join(errors))


@pytest.fixture
def proxy(proxy_bin, origins, pki, tmp_path):
    f = ProxyFactory(proxy_bin, origins, pki, tmp_path)
    yield f
    f.stop_all()
