# SPDX-License-Identifier: Apache-2.0
"""Support for the e2e client and process tests (test_clients.py, test_process.py).

- `SharedDir`: a scratch directory under /tmp that uid 65534 can use (pytest's own tmp_path
  lives under a 0700 directory of root's).
- `make_pki`: a throw-away test CA and one origin certificate (openssl CLI, EC P-256) for the
  made-up names origin.test, other.test and git.test.
- `Jail`: runs `landjail [rules] --resolve … --upstream-ca CA --ca-dir … --audit-log … --
  COMMAND` as root or, through setpriv, as uid 65534, each run in its own directory (HOME,
  CA directory, audit log); `JailRun` is the finished run, `JailProcess` a running one.
- `StandaloneProxy`: a landjail-proxy started on its own (--ready-fd), for --proxy-addr and for
  the control runs that give a client the jail's environment without the jail.
- audit helpers: read the JSON lines, pick the http_request events, check one line's fields.
- `Terminal`: a program started on a new pseudo-terminal that the test types into.

Only loopback is used: the origins listen on 127.0.0.1 and every name is mapped there with
--resolve; nothing is looked up in DNS.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import tempfile
import time
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import origin as origin_mod  # noqa: E402  (tests/integration/origin.py)

NOBODY = 65534
USERS = ("root", "nobody")
SETPRIV = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]
PYTHON = "/usr/bin/python3"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
READY_TIMEOUT = 20.0
RUN_TIMEOUT = 120.0
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---- binaries ------------------------------------------------------------------------------


def landjail_path() -> Path:
    env = os.environ.get("LANDJAIL")
    return Path(env).resolve() if env else REPO / "build" / "bin" / "landjail"


def proxy_path() -> Path:
    env = os.environ.get("LANDJAIL_PROXY")
    return Path(env).resolve() if env else REPO / "build" / "bin" / "landjail-proxy"


def e2e_bin_dir() -> Path:
    env = os.environ.get("LANDJAIL_E2E_BIN")
    return Path(env).resolve() if env else REPO / "build" / "tests" / "e2e"


def require_binary(path: Path, what: str) -> Path:
    """The binary, or a skip (a failure with LANDJAIL_REQUIRE_PROXY=1, as in CI)."""
    if path.is_file() and os.access(path, os.X_OK):
        return path
    msg = "%s not found at %s (build it with `make`)" % (what, path)
    if os.environ.get("LANDJAIL_REQUIRE_PROXY") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def as_user(user: str, argv: list[str]) -> list[str]:
    """argv run as root (unchanged) or as uid/gid 65534 with no supplementary groups."""
    if user == "root":
        return list(argv)
    assert user == "nobody", user
    return SETPRIV + list(argv)


def base_env(home: Path, **extra) -> dict:
    """A small, explicit environment: nothing of the developer's proxies, CA bundles or
    landjail settings leaks into a test (LANDJAIL_PROXY is kept: it names the binary)."""
    env = {"PATH": PATH, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "LANG": "C.UTF-8", "TERM": os.environ.get("TERM", "dumb") or "dumb",
           "GIT_CONFIG_NOSYSTEM": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if os.environ.get("LANDJAIL_PROXY"):
        env["LANDJAIL_PROXY"] = str(proxy_path())
    env.update(extra)
    return env


# ---- directories and PKI -------------------------------------------------------------------


class SharedDir:
    """A directory under /tmp, mode 0777 all the way down, removed by cleanup()."""

    def __init__(self, prefix: str):
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        os.chmod(self.path, 0o777)
        self._n = 0

    def subdir(self, name: str) -> Path:
        """A new, unique, world-writable directory NAME-<n> inside."""
        self._n += 1
        d = self.path / ("%s-%d" % (name, self._n))
        d.mkdir()
        os.chmod(d, 0o777)
        return d

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class PKI:
    """ca_pem: the test CA (what the proxy trusts upstream with --upstream-ca); cert/key: the
    origins' certificate for origin.test, other.test, git.test and 127.0.0.1."""

    def __init__(self, d: Path):
        self.dir = d
        self.ca_pem, self.ca_key = d / "ca.pem", d / "ca.key"
        self.cert, self.key = d / "origin.pem", d / "origin.key"


def _openssl(cwd: Path, *args: str):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr))


def make_pki(d: Path) -> PKI:
    if shutil.which("openssl") is None:
        pytest.fail("openssl CLI not found (Debian package: openssl)")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
             "-subj", "/CN=landjail e2e test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash")
    _openssl(d, "req", "-new", *ec, "-keyout", "origin.key", "-out", "origin.csr",
             "-subj", "/CN=origin.test")
    (d / "origin.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        "subjectAltName=DNS:origin.test,DNS:other.test,DNS:git.test,IP:127.0.0.1\n")
    _openssl(d, "x509", "-req", "-in", "origin.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "origin.ext",
             "-out", "origin.pem")
    for name in ("ca.pem", "origin.pem"):
        os.chmod(d / name, 0o644)
    return PKI(d)


def ca_bundle(path: Path, extra_ca: Path) -> Path:
    """The system roots plus extra_ca in one PEM file (what the jail gives its child)."""
    with open(path, "wb") as out:
        out.write(Path(SYSTEM_CA_BUNDLE).read_bytes())
        out.write(b"\n" + extra_ca.read_bytes())
    os.chmod(path, 0o644)
    return path


# ---- origins -------------------------------------------------------------------------------


class Origins:
    """An HTTPS origin (tests/integration/origin.py) on 127.0.0.1 for origin.test and
    other.test, and optionally the git server for git.test; resolve_args() maps the names."""

    def __init__(self, pki: PKI, git=None):
        self.state = origin_mod.Origin()
        self.https = self.state.listen("https", "127.0.0.1", certfile=str(pki.cert),
                                       keyfile=str(pki.key))
        self.http = self.state.listen("http", "127.0.0.1")
        self.git = git

    def resolve_args(self) -> list[str]:
        m = []
        for name in ("origin.test", "other.test"):
            m += ["--resolve", "%s:443:127.0.0.1:%d" % (name, self.https.port)]
            m += ["--resolve", "%s:80:127.0.0.1:%d" % (name, self.http.port)]
        if self.git is not None:
            m += ["--resolve", "git.test:443:127.0.0.1:%d" % self.git.port]
        return m

    def received(self, path_prefix=None, method=None):
        return self.state.received(path_prefix, method)

    def stop(self):
        self.state.stop()
        if self.git is not None:
            self.git.stop()


@contextlib.contextmanager
def origin_world(prefix: str):
    """(shared, pki, origins): a SharedDir, the test PKI in it and the HTTPS origins, all
    stopped and removed at the end (a module fixture's body)."""
    shared = SharedDir(prefix)
    origins = None
    try:
        pki = make_pki(shared.subdir("pki"))
        origins = Origins(pki)
        yield shared, pki, origins
    finally:
        if origins is not None:
            origins.stop()
        shared.cleanup()


class AcceptCounter:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts (and closes them):
    a place the jail must never reach, or a weak-mode control's target."""

    def __init__(self, port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.peers: list = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer)
            self.accepted += 1
            c.close()

    def settled(self, timeout: float = 10.0) -> int:
        """The connections accepted before now, decided by ordering: a sentinel connection is
        accepted after every connection made before it (the listen queue is FIFO)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            me = s.getsockname()
            deadline = time.monotonic() + timeout
            while me not in self.peers:
                assert time.monotonic() < deadline, "the sentinel connection was not accepted"
                time.sleep(0.01)
        return self.peers.index(me)

    def close(self):
        self.sock.close()


def write_scripts(d: Path, scripts: dict) -> dict:
    """Writes each {name: text} into d, readable by uid 65534; returns {name: path}."""
    paths = {}
    for name, text in scripts.items():
        (d / name).write_text(text)
        os.chmod(d / name, 0o644)
        paths[name] = str(d / name)
    return paths


# ---- audit ---------------------------------------------------------------------------------


def read_audit(path: Path) -> list[dict]:
    """The complete JSON lines of an audit file ([] when it does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def http_events(lines: list[dict]) -> list[dict]:
    """The http_request events, without the accepted-CONNECT line the proxy may write for an
    intercepted tunnel (the contract names only refused CONNECTs and the requests inside)."""
    return [x for x in lines if x.get("event") == "http_request"
            and not (x.get("http_method") == "CONNECT" and x.get("decision") == "allow")]


def find_event(lines: list[dict], **want) -> dict:
    """The one audit line whose fields equal `want` (url_contains= matches a substring of
    http_url); fails with every line when there is not exactly one."""
    contains = want.pop("url_contains", None)
    hits = [x for x in lines if all(x.get(k) == v for k, v in want.items())
            and (contains is None or contains in str(x.get("http_url")))]
    assert len(hits) == 1, "want exactly one audit line with %r%s; lines:\n%s" % (
        want, " and http_url containing %r" % contains if contains else "",
        "\n".join(json.dumps(x) for x in lines))
    return hits[0]


def check_decision(lines: list[dict], decision: str, method: str, rule, url: str | None = None,
                   url_contains: str | None = None) -> dict:
    """Asserts one http_request line with this decision, http_method, http_url (exact, or
    containing url_contains) and matched_rule (the rule as written, or None for null)."""
    want = {"event": "http_request", "decision": decision, "http_method": method,
            "matched_rule": rule}
    if url is not None:
        want["http_url"] = url
    if url_contains is not None:
        want["url_contains"] = url_contains
    return find_event(lines, **want)


# ---- the jail ------------------------------------------------------------------------------


class JailRun:
    """A finished landjail run: rc, stdout, stderr (text), workdir; audit() its audit lines."""

    def __init__(self, argv, rc, stdout, stderr, workdir: Path):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, stdout, stderr
        self.workdir = workdir
        self.audit_path = workdir / "audit.jsonl"

    def audit(self) -> list[dict]:
        return read_audit(self.audit_path)

    def __repr__(self):
        return "JailRun(rc=%r, argv=%r,\nstdout=%r,\nstderr=%r)" % (
            self.rc, self.argv, self.stdout[-3000:], self.stderr[-3000:])


class Jail:
    """Builds and runs landjail command lines (see the module docstring). Every run has its own
    world-writable directory with home/, ca/ (the --ca-dir, created by landjail) and
    audit.jsonl (--audit-log)."""

    def __init__(self, binary: Path, shared: SharedDir, pki: PKI | None, origins=None):
        self.binary = binary
        self.shared = shared
        self.pki = pki
        self.origins = origins

    def prepare(self, command: list[str], user: str = "root", allow=("domain=origin.test",),
                deny=(), args=(), resolve: bool = True, audit: bool = True,
                env: dict | None = None, workdir: Path | None = None,
                ca_dir: Path | None = None, wrapper=()):
        """(argv, env, workdir) for one run, without starting it. ca_dir: the --ca-dir
        (default: WORKDIR/ca, created by landjail); wrapper: argv run in front of it all (e.g.
        outer-seccomp --pidfd-getfd-eperm --)."""
        if workdir is None:
            workdir = self.shared.subdir("jail")
        home = workdir / "home"
        home.mkdir(exist_ok=True)
        os.chmod(home, 0o777)
        argv = [str(self.binary)]
        for r in allow:
            argv += ["--allow", r]
        for r in deny:
            argv += ["--deny", r]
        if resolve and self.origins is not None:
            argv += self.origins.resolve_args()
        if self.pki is not None:
            argv += ["--upstream-ca", str(self.pki.ca_pem)]
        argv += ["--ca-dir", str(ca_dir or workdir / "ca")]
        if audit:
            argv += ["--audit-log", str(workdir / "audit.jsonl")]
        argv += list(args) + ["--"] + list(command)
        return list(wrapper) + as_user(user, argv), base_env(home, **(env or {})), workdir

    def run(self, command: list[str], user: str = "root", input: bytes | None = None,
            timeout: float = RUN_TIMEOUT, cwd: Path | None = None, **kw) -> JailRun:
        """Runs landjail to completion (stdin: `input`, or /dev/null)."""
        argv, env, workdir = self.prepare(command, user, **kw)
        try:
            p = subprocess.run(argv, env=env, cwd=str(cwd or workdir), input=input,
                               stdin=None if input is not None else subprocess.DEVNULL,
                               capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("landjail did not finish within %.0fs: %r\nstdout: %r\n"
                                 "stderr: %r" % (timeout, argv, e.stdout, e.stderr)) from None
        return JailRun(argv, p.returncode, p.stdout.decode(errors="replace"),
                       p.stderr.decode(errors="replace"), workdir)

    def popen(self, command: list[str], user: str = "root", **kw) -> "JailProcess":
        """Starts landjail with pipes on stdin, stdout and stderr."""
        popen_kw = {k: kw.pop(k) for k in ("cwd", "start_new_session") if k in kw}
        argv, env, workdir = self.prepare(command, user, **kw)
        return JailProcess(argv, env, workdir, **popen_kw)


class JailProcess:
    """A running landjail: .proc (Popen, binary pipes), readline() from its stdout with an
    upper bound, finish() -> JailRun. kill() at teardown stops it if a test failed early."""

    def __init__(self, argv, env, workdir: Path, cwd=None, start_new_session=False):
        self.argv, self.workdir = argv, workdir
        self.stderr_path = workdir / "landjail.stderr"
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=str(cwd or workdir),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, start_new_session=start_new_session)
        self.pid = self.proc.pid
        self._buf = b""

    def readline(self, timeout: float = READY_TIMEOUT) -> str:
        """One line of the command's stdout (waits at most `timeout`)."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError("no line from the jailed command within %.0fs (got %r); "
                                     "stderr: %s" % (timeout, self._buf, self.stderr))
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError("the jailed command's stdout closed (got %r; status %r); "
                                     "stderr: %s" % (self._buf, self.proc.poll(), self.stderr))
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace")

    def write(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def finish(self, timeout: float = RUN_TIMEOUT) -> JailRun:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("landjail did not exit within %.0fs: %r\nstderr: %s"
                                 % (timeout, self.argv, self.stderr)) from None
        self._err.close()
        return JailRun(self.argv, self.proc.returncode,
                       (self._buf + out).decode(errors="replace"), self.stderr, self.workdir)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


# ---- a standalone proxy --------------------------------------------------------------------


class StandaloneProxy:
    """landjail-proxy --listen 127.0.0.1:0 --ready-fd N, as the given user, in its own
    world-writable directory; .port, .url, .ca_pem, .audit_path; stop() sends SIGTERM and
    asserts exit status 0."""

    def __init__(self, binary: Path, workdir: Path, args: list[str], user: str = "root"):
        self.workdir = workdir
        self.ca_pem = workdir / "ca" / "ca.pem"
        self.audit_path = workdir / "audit.jsonl"
        self.stderr_path = workdir / "proxy.stderr"
        home = workdir / "home"
        home.mkdir(exist_ok=True)
        os.chmod(home, 0o777)
        r, w = os.pipe()
        self.argv = as_user(user, [str(binary), "--listen", "127.0.0.1:0", "--ready-fd", str(w),
                                   "--ca-dir", str(workdir / "ca"),
                                   "--audit-log", str(self.audit_path)] + list(args))
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, pass_fds=(w,), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         env=base_env(home), cwd=str(workdir))
        os.close(w)
        try:
            line = self._read_ready(r)
        finally:
            os.close(r)
        m = re.fullmatch(r"127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.kill()
            raise AssertionError("landjail-proxy wrote %r on --ready-fd; stderr: %s"
                                 % (line, self.stderr))
        self.port = int(m.group(1))
        self.addr = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.addr
        self.returncode = None

    def _read_ready(self, fd: int) -> str:
        data = b""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.kill()
                raise AssertionError("landjail-proxy not ready within %.0fs; stderr: %s"
                                     % (READY_TIMEOUT, self.stderr))
            chunk = os.read(fd, 4096)
            if not chunk:
                return data.decode(errors="replace")
            data += chunk

    @property
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def client_env(self, home: Path, bundle: Path) -> dict:
        """The environment landjail gives its child (DESIGN §7), pointing at this proxy."""
        env = base_env(home)
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            env[k] = self.url
        for k in ("SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO"):
            env[k] = str(bundle)
        env["NODE_EXTRA_CA_CERTS"] = str(self.ca_pem)
        return env

    def stop(self) -> int:
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("landjail-proxy ignored SIGTERM; stderr: %s" % self.stderr)
        assert self.returncode == 0, "landjail-proxy exited %r; stderr: %s" % (
            self.returncode, self.stderr)
        return self.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.returncode = self.proc.wait()


# ---- processes and sockets -----------------------------------------------------------------


def listener_pids(port: int) -> set[int]:
    """Pids of the processes holding a TCP socket listening on 127.0.0.1:port (from
    /proc/net/tcp and the fd tables; root sees every process)."""
    inodes = set()
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":  # 0A = LISTEN
                inodes.add("socket:[%s]" % fields[9])
    pids = set()
    if not inodes:
        return pids
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % entry):
                if os.readlink("/proc/%s/fd/%s" % (entry, fd)) in inodes:
                    pids.add(int(entry))
                    break
        except OSError:
            continue
    return pids


def process_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def exe_of(pid: int) -> str:
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def connect_refused(port: int) -> bool:
    """True when nothing accepts TCP connections on 127.0.0.1:port any more."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def proxy_port_from_env_line(line: str) -> int:
    """The port of an 'http://127.0.0.1:PORT' proxy URL (as the jail sets HTTP_PROXY)."""
    m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/?", line.strip())
    assert m, "HTTP_PROXY in the jail is %r, want http://127.0.0.1:PORT" % line
    return int(m.group(1))


# ---- a terminal -----------------------------------------------------------------------------


class Terminal:
    """A program (landjail, or a shell) started on a new pseudo-terminal (as `script` does):
    the child is a session leader whose controlling terminal is the pty; the test types into
    the master side."""

    def __init__(self, argv: list[str], env: dict, cwd: Path):
        self.argv = argv
        pid, fd = pty.fork()
        if pid == 0:  # child: only exec (or _exit) after fork
            try:
                os.chdir(str(cwd))
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(125)
        self.pid, self.fd = pid, fd
        self.output = b""  # read but not yet matched by expect()
        self.transcript = b""  # everything read
        self.status = None

    def _read(self) -> bytes:
        try:
            chunk = os.read(self.fd, 4096)
        except OSError as e:  # EIO: the slave side is closed
            if e.errno != errno.EIO:
                raise
            chunk = b""
        self.output += chunk
        self.transcript += chunk
        return chunk

    def expect(self, pattern: bytes, timeout: float = 20.0) -> re.Match:
        """Reads until `pattern` (a regex) appears in the output after what was already
        matched; returns the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.output)
            if m:
                self.output = self.output[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError("terminal: no %r within %.0fs; output so far: %r"
                                     % (pattern, timeout, self.output))
            if not self._read():
                raise AssertionError("terminal closed before %r; output: %r"
                                     % (pattern, self.output))

    def type(self, data: bytes):
        os.write(self.fd, data)

    def wait(self, timeout: float = 30.0) -> int:
        """Exit status of landjail (drains the terminal meanwhile)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                return self.status
            if select.select([self.fd], [], [], 0.05)[0]:
                self._read()
        raise AssertionError("landjail on the terminal did not exit within %.0fs; output: %r"
                             % (timeout, self.output))

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
        os.close(self.fd)
