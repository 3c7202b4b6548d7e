# SPDX-License-Identifier: Apache-2.0
"""Escapes that do not go through a new connection (issue 13, part C), judged by what arrived
outside the jail, never by what the attacker printed; as root and as uid 65534, at full
protection and in the Docker-like modes (conftest MODES: full, addfd, docker), each with a
control that shows the same attack works without the jail:

- the user's terminal: bytes pushed into its input with TIOCSTI run in the user's shell after
  landjail exits (judged by the file the injected command would create);
- resource limits and scheduling of processes outside the jail (an `escape victim`, and the
  proxy itself): prlimit, setpriority (also PRIO_USER), sched_setscheduler/-affinity,
  ioprio_set (judged by the target's /proc files and ioprio_get, read by the test);
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import MODES, LineReader, user_prefix
from e2e_support_jail import Terminal, read_audit

PROMPT = rb"ljuser\$ "


# ---- the terminal: TIOCSTI -----------------------------------------------------------------


def _legacy_tiocsti() -> int | None:
    try:
        return int(Path("/proc/sys/dev/tty/legacy_tiocsti").read_text())
    except (OSError, ValueError):
        return None  # before Linux 6.2: always allowed


def _inject(jail, command: list[str], marker: Path) -> Terminal:
    """The user's interactive shell on a new terminal runs `command` (which pushes
    `touch MARKER` into the terminal's input), then one more line typed after it has exited:
    an injected line, queued before that, would run first."""
    wd = marker.parent
    env = jail.env(wd, PS1="ljuser$ ")
    t = Terminal(user_prefix(jail.user) + ["sh", "-i"], env, wd)
    t.expect(PROMPT)
    t.type(shlex.join(command).encode() + b"; echo LJ-EXIT=$?\r")
    t.expect(rb"LJ-EXIT=\d+", timeout=60)
    t.expect(PROMPT)
    t.type(b"echo SENTINEL-$((40+2))\r")
    t.expect(rb"SENTINEL-42")
    t.type(b"exit\r")
    t.wait()
    return t


@pytest.mark.parametrize("mode", list(MODES))
def test_terminal_injection_does_not_run(jail, mode):
    """A jailed program pushes `touch MARKER` into its terminal's input with TIOCSTI (and
    TIOCLINUX is refused the same way): the user's shell, which reads the terminal after
    landjail exits, never runs it."""
    wd = jail.workdir("tiocsti-" + mode)
    marker = wd / "INJECTED"
    argv = jail.argv([jail.bins.escape, "tiocsti", "touch %s" % marker], wd, mode)
    t = _inject(jail, argv[len(user_prefix(jail.user)):], marker)
    assert not marker.exists(), "ESCAPED: the injected command ran (%s, %s): %r" % (
        jail.user, mode, t.transcript)
    assert re.search(rb"tiocsti: ioctl\(TIOCSTI\): Operation not permitted", t.transcript), \
        t.transcript


def test_terminal_injection_control(jail):
    """The control: without the jail the same program's injected command does run."""
    legacy = _legacy_tiocsti()
    if jail.user != "root" and legacy == 0:
        pytest.skip("dev.tty.legacy_tiocsti = 0: the kernel refuses TIOCSTI to uid 65534 even "
                    "without the jail")
    wd = jail.workdir("tiocsti-control")
    marker = wd / "INJECTED"
    t = _inject(jail, [str(jail.bins.escape), "tiocsti", "touch %s" % marker], marker)
    assert marker.exists(), "the injection did not work without the jail: %r" % t.transcript


# ---- resource limits and scheduling of processes outside -----------------------------------


SYS_IOPRIO_GET = 252  # x86_64
IOPRIO_WHO_PROCESS = 1


def _ioprio(pid: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(ctypes.c_long(SYS_IOPRIO_GET), ctypes.c_int(IOPRIO_WHO_PROCESS),
                        ctypes.c_int(pid))


def process_state(pid: int) -> dict:
    """What the tampering cases change, read by the test from outside: the limits the attacker
    lowers, niceness and scheduling policy (/proc/PID/stat fields 19 and 41), the CPUs it may
    run on, its I/O priority."""
    limits = {}
    for line in Path("/proc/%d/limits" % pid).read_text().splitlines():
        if line.startswith(("Max open files", "Max file size")):
            limits[line[:26].strip()] = line[26:].split()[:2]
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    status = Path("/proc/%d/status" % pid).read_text()
    cpus = re.search(r"Cpus_allowed_list:\s*(\S+)", status).group(1)
    return {"limits": limits, "nice": fields[16], "policy": fields[38], "cpus": cpus,
            "ioprio": _ioprio(pid)}


def _tamper_script(escape, target: str, user: str) -> str:
    cmds = ["%s prlimit %s" % (escape, target), "%s sched %s" % (escape, target)]
    if user != "root":  # as root, PRIO_USER 0 would renice every root process of the host
        cmds.append("%s renice-user" % escape)
    return "; ".join(cmds)


def _changed(before: dict, after: dict) -> dict:
    return {k: (before[k], after[k]) for k in before if before[k] != after[k]}


@pytest.mark.parametrize("mode", list(MODES))
def test_outside_process_keeps_its_limits(jail, listener, mode):
    """The jail lowers RLIMIT_NOFILE/RLIMIT_FSIZE of a process of the same user outside it,
    renices it (also with PRIO_USER), makes it SCHED_IDLE on one CPU with idle I/O: none of it
    happens."""
    victim = listener.victim(jail.user)
    before = process_state(victim.pid)
    r = jail.run(["sh", "-c", _tamper_script(jail.bins.escape, str(victim.pid), jail.user)],
                 mode=mode)
    after = process_state(victim.pid)
    assert not _changed(before, after), "ESCAPED: the victim was changed (%s, %s): %r\n%r" % (
        jail.user, mode, _changed(before, after), r)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r


def test_outside_process_limits_control(jail, listener):
    """The control: without the jail every one of these changes the victim."""
    victim = listener.victim(jail.user)
    before = process_state(victim.pid)
    r = jail.run_plain(["sh", "-c", _tamper_script(jail.bins.escape, str(victim.pid),
                                                    jail.user)])
    changed = _changed(before, process_state(victim.pid))
    assert set(changed) == {"limits", "nice", "policy", "cpus", "ioprio"}, (changed, r)


REQUEST = """
import os, urllib.request as u
h = u.ProxyHandler({"http": os.environ["HTTP_PROXY"]})
try:
    u.build_opener(h).open("http://limits.test/", timeout=30)
except u.HTTPError as e:
    print("STATUS", e.code, flush=True)
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_proxy_keeps_its_limits_and_audits(jail, mode):
    """The same attack on landjail's own proxy (`escape ... proxy`): the proxy and
    landjail keep the limits and scheduling they inherited from the test, and a request after
    the attack is still answered and audited."""
    wd = jail.workdir("proxy-limits-" + mode)
    (wd / "request.py").write_text(REQUEST)
    script = "%s; echo ATTACKED; read go; python3 request.py" % _tamper_script(
        jail.bins.escape, "proxy", jail.user)
    p, _ = jail.popen(["sh", "-c", script], mode=mode, workdir=wd, stdin=subprocess.PIPE)
    try:
        out = LineReader(p.stdout)
        out.until(r"ATTACKED")
        proxies = [pid for pid in _children(p.pid) if _comm(pid) == "landjail-proxy"]
        assert len(proxies) == 1, proxies
        baseline = process_state(os.getpid())
        changed = {who: _changed(baseline, process_state(pid))
                   for who, pid in (("proxy", proxies[0]), ("landjail", p.pid))}
        p.stdin.write(b"go\n")
        p.stdin.close()
        out.until(r"STATUS 403")
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not any(changed.values()), "ESCAPED: changed outside the jail (%s, %s): %r" % (
        jail.user, mode, changed)
    assert rc == 0, rc
    events = [e for e in read_audit(wd / "audit.jsonl") if e.get("event") == "http_request"]
    assert [e.get("http_url") for e in events] == ["http://limits.test/"], events


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(d.name))
    return out


def _comm(pid: int) -> str:
    try:
        return Path("/proc/%d/comm" % pid).read_text().strip()
    except OSError:
        return ""
