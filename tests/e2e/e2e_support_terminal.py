# SPDX-License-Identifier: Apache-2.0
"""A terminal for the e2e tests: `Terminal`, a program started on a new pseudo-terminal that
the test types into.
"""
from __future__ import annotations

import errno
import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True


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
