# SPDX-License-Identifier: Apache-2.0
"""A standalone proxy and process probes for the e2e tests.

- `StandaloneProxy`: a landjail-proxy started on its own (--ready-fd), for --proxy-addr and for
  the control runs that give a client the jail's environment without the jail.
- process and socket probes: who listens on a port, whether a pid is alive and its exe, whether
  a port refuses connections, the proxy port in an environment line.
"""
from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True

from e2e_support_env import (READY_TIMEOUT, as_user, base_env)  # noqa: E402


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
