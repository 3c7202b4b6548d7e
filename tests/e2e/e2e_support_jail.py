# SPDX-License-Identifier: Apache-2.0
"""The jail for the e2e client and process tests (test_clients.py, test_process.py, ...).

- `Jail`: runs `landjail [rules] --resolve … --upstream-ca CA --ca-dir … --audit-log … --
  COMMAND` as root or, through setpriv, as uid 65534, each run in its own directory (HOME,
  CA directory, audit log); `JailRun` is the finished run, `JailProcess` a running one.

Users and binaries live in e2e_support_env.py, directories, PKI and origins in
e2e_support_origins.py, audit helpers in e2e_support_audit.py, the standalone proxy in
e2e_support_proxy.py and the terminal in e2e_support_terminal.py.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True

from e2e_support_env import (READY_TIMEOUT, RUN_TIMEOUT, as_user, base_env)  # noqa: E402
from e2e_support_origins import (PKI, SharedDir)  # noqa: E402
from e2e_support_audit import read_audit  # noqa: E402


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
