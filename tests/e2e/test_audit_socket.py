# SPDX-License-Identifier: Apache-2.0
"""`landjail --audit-socket PATH` (DESIGN §6 and §8): the jail's audit trail reaches a
collector listening on a unix stream socket, as the same JSON lines the file gets.

A collector (a listening unix socket owned by the test) accepts the proxy's connection and
reads until it closes. The jailed curl makes one allowed and one denied request; a static
connect to a loopback listener is refused by the supervisor. Judged by what the collector
received: the same events, in the same order and with the same seq numbers as the audit
file, including the supervisor's connect_denied event. A collector that only starts
listening after the run began still gets the events written after it appeared.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import landjail_path  # noqa: E402
from e2e_support_origins import origin_world  # noqa: E402
from e2e_support_audit import check_decision, http_events  # noqa: E402
from e2e_support_jail import Jail  # noqa: E402

ALLOWED = "https://origin.test/path-echo/allowed/socket"
DENIED = "https://origin.test/path-echo/denied"


class Collector:
    """A unix stream socket at `path`; every connection's bytes are kept."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.listen(4)
        self.data = b""
        self.connections = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            with conn:
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    with self._lock:
                        self.data += chunk

    def lines(self) -> list[dict]:
        with self._lock:
            text = self.data.decode()
        return [json.loads(x) for x in text.split("\n") if x.strip()]

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def world():
    with origin_world("lj-auditsock-") as w:
        yield w


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_audit_socket_gets_the_trail(world, user):
    shared, pki, origins = world
    jail = Jail(landjail_path(), shared, pki, origins)
    workdir = shared.subdir("run")
    collector = Collector(str(workdir / "audit.sock"))
    try:
        # curl (allowed, then denied), then a direct connect with the shim off for this one
        # process: the supervisor refuses it and writes connect_denied.
        script = ("curl -sS -o /dev/null %s; curl -sS -o /dev/null %s; "
                  "env -u LD_PRELOAD python3 -c 'import socket; s=socket.socket(); "
                  "s.settimeout(5); s.connect_ex((\"127.0.0.1\", 9))' ; true" % (ALLOWED, DENIED))
        run = jail.run(["sh", "-c", script], user=user,
                       allow=("domain=origin.test path=/path-echo/allowed/*",),
                       args=["--audit-socket", collector.path])
        assert run.rc == 0, run
        file_lines = run.audit()
        assert wait_for(lambda: len(collector.lines()) >= len(file_lines)), (
            "the collector got %d lines, the file has %d" % (len(collector.lines()),
                                                               len(file_lines)))
        got = collector.lines()
        assert got == file_lines, "socket and file differ:\n%s\n---\n%s" % (got, file_lines)
        events = http_events(got)
        check_decision(events, "allow", "GET", "domain=origin.test path=/path-echo/allowed/*",
                       url=ALLOWED)
        check_decision(events, "deny", "GET", None, url=DENIED)
        denied = [x for x in got if x.get("event") == "connect_denied"]
        assert len(denied) == 1 and "127.0.0.1" in json.dumps(denied[0]), got
        assert [x["seq"] for x in got] == sorted(x["seq"] for x in got)
    finally:
        collector.close()


def test_late_collector(world):
    """The proxy starts before the collector listens: events after it appears arrive."""
    shared, pki, origins = world
    jail = Jail(landjail_path(), shared, pki, origins)
    workdir = shared.subdir("run")
    path = str(workdir / "late.sock")
    # The jailed script waits for the socket file, then sleeps past the proxy's reconnect
    # interval (one second) and makes its request.
    script = ("i=0; while [ ! -S %s ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; "
              "sleep 1.2; curl -sS -o /dev/null %s" % (path, ALLOWED))
    proc = jail.popen(["sh", "-c", script], user="root",
                      allow=("domain=origin.test",), args=["--audit-socket", path],
                      workdir=workdir)
    collector = Collector(path)
    try:
        run = proc.finish()
        assert run.rc == 0, run
        assert wait_for(lambda: any(x.get("http_url") == ALLOWED for x in collector.lines())), (
            "the late collector never got the request: %r" % collector.lines())
    finally:
        collector.close()
