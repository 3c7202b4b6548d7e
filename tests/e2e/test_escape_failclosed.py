# SPDX-License-Identifier: Apache-2.0
"""Fail closed (issue 4 item 7): when landjail (the supervisor) is SIGKILLed, a grandchild that
outlives it can reach neither a listener nor the proxy's port; the control grandchild, without
the jail, does reach its listener.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
import pytest

from e2e_support_runner import (LineReader, user_ids, user_prefix)
from e2e_support_listeners import TcpListener


# ---- fail closed: the supervisor is killed ---------------------------------------------------


def _proc_children(pid: int) -> dict:
    """{child pid: comm} of pid."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            text = Path("/proc/%s/stat" % d).read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out[int(d)] = comm
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _release(fifo: Path, timeout: float = 10.0):
    """Opens the fifo for writing once the grandchild has it open for reading; writes "go"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if e.errno != 6 or time.monotonic() > deadline:  # ENXIO: no reader yet
                raise
            time.sleep(0.01)
    os.write(fd, b"go\n")
    os.close(fd)


@pytest.mark.parametrize("mode", ["full", "docker"])
def test_fail_closed_when_landjail_is_killed(jail, listener, mode):
    """A jailed process double-forks a grandchild (own session) that waits until the test has
    SIGKILLed landjail, then connects to a listener, to the proxy's port (where the test has
    put a listener of its own once the proxy is gone) and sends UDP: nothing arrives. The
    direct child dies with landjail (PDEATHSIG) and the proxy does not outlive it."""
    target = listener.tcp("127.0.0.1")
    udp = listener.udp("127.0.0.1", target.port)
    proxy_port, _ = listener.port_shared_by(["127.0.0.2"])
    wd = jail.workdir("failclosed-" + mode)
    fifo = wd / "go"
    os.mkfifo(fifo, 0o600)
    uid, gid = user_ids(jail.user)
    os.chown(fifo, uid, gid)
    p, _ = jail.popen([jail.bins.escape, "failclosed", fifo, "127.0.0.1", target.port,
                       "127.0.0.1", proxy_port], mode=mode, workdir=wd,
                      args=["--proxy-port", str(proxy_port)])
    out = LineReader(p.stdout)
    grandchild = None
    try:
        m = out.until(r"READY (\d+) (\d+)")
        direct, grandchild = int(m.group(1)), int(m.group(2))
        out.until(r"WAITING %d" % grandchild)
        proxies = [pid for pid, comm in _proc_children(p.pid).items()
                   if comm.startswith("landjail-proxy")]
        p.kill()
        p.wait()
        direct_died = _wait_dead(direct)
        proxy_gone = all(_wait_dead(pid) for pid in proxies)
        for pid in proxies:  # so that the test can take the port over
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                _wait_dead(pid)
        takeover = TcpListener("127.0.0.1", proxy_port)
        listener.open.append(takeover)
        _release(fifo)
        out.until(r"GRANDCHILD DONE")
        report = "\n".join(out.lines)
        got = {"listener": target.collect(), "udp": udp.collect(),
               "proxy port": takeover.collect()}
        assert not any(got.values()), "ESCAPED after landjail was killed (%s, %s): %r\n%s" % (
            jail.user, mode, got, report)
        assert "sent" not in report.replace("GRANDCHILD go", ""), report
        assert direct_died, "the jailed command %d outlived landjail (no PDEATHSIG?)" % direct
        assert proxies, "no landjail-proxy child found under landjail %d" % p.pid
        assert proxy_gone, "landjail-proxy %r outlived a SIGKILLed landjail" % proxies
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if grandchild and _alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_fail_closed_control_grandchild_escapes(jail, listener):
    """Control: the same grandchild, without a jail, reaches the listener once released."""
    target = listener.tcp("127.0.0.1")
    wd = jail.workdir("failclosed-control")
    fifo = wd / "go"
    os.mkfifo(fifo, 0o600)
    uid, gid = user_ids(jail.user)
    os.chown(fifo, uid, gid)
    p = subprocess.Popen(user_prefix(jail.user) + [str(jail.bins.escape), "failclosed",
                                                   str(fifo), "127.0.0.1", str(target.port),
                                                   "127.0.0.1", "9"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    out = LineReader(p.stdout)
    grandchild = None
    try:
        grandchild = int(out.until(r"READY (\d+) (\d+)").group(2))
        p.kill()
        p.wait()
        _release(fifo)
        out.until(r"GRANDCHILD DONE")
        assert target.collect(), out.lines
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if grandchild and _alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)
