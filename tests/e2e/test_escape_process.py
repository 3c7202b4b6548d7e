# SPDX-License-Identifier: Apache-2.0
"""Escapes that do not go through a new connection (issue 13, part C), judged by what arrived
outside the jail, never by what the attacker printed; as root and as uid 65534, at full
protection and in the Docker-like modes (conftest MODES: full, addfd, docker), each with a
control that shows the same attack works without the jail:

- the user's terminal: bytes pushed into its input with TIOCSTI run in the user's shell after
  landjail exits (judged by the file the injected command would create);
- descriptors inherited from outside: a connected TCP socket, a connected and an unconnected
  UDP socket, an io_uring whose SQPOLL thread runs in the process outside that made it
  (judged by their listeners); an inherited unix socket still works;
- resource limits and scheduling of processes outside the jail (an `escape victim`, and the
  proxy itself): prlimit, setpriority (also PRIO_USER), sched_setscheduler/-affinity,
  ioprio_set (judged by the target's /proc files and ioprio_get, read by the test);
- signals to processes outside the jail that share its terminal session: kill(0) to
  landjail's own process group, setpgid into another group then kill(0), kill(-pgid),
  pidfd_send_signal on open(/proc/PID) and on pidfd_open (also to a process group), a race
  that swaps the pidfd's descriptor, SIGIO through F_SETOWN (to a pid, to a group, to
  landjail's group), F_SETOWN_EX, FIOSETOWN and SIOCSPGRP (judged by `escape victim`s in
  landjail's session: one in its process group, one leading a group of its own); also with
  Landlock taken away while pidfd_getfd stays (the supervisor's own pidfd path).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import shlex
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from e2e_support_runner import MODES, LineReader, user_prefix
from e2e_support_audit import read_audit
from e2e_support_terminal import Terminal

PROMPT = rb"ljuser\$ "
MARKER = b"ESCAPED"


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


# ---- descriptors inherited from outside ------------------------------------------------------

# Runs outside the jail, as the user: opens a TCP connection and a connected UDP socket to the
# listeners, an unconnected UDP socket, and puts them (inheritable) on fds 10, 11 and 12; the
# test's unix socket is UNIX_FD. Then it becomes the rest of argv (landjail, or the control).
OPENER = r"""
import os, socket, sys
tcp = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.connect(("127.0.0.1", int(sys.argv[2])))
free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for s, fd in ((tcp, 10), (udp, 11), (free, 12)):
    os.dup2(s.fileno(), fd, inheritable=True)
os.execvp(sys.argv[3], sys.argv[3:])
"""
INHERITED_FDS = (10, 11, 12)
UNIX_FD = 100  # above the test's own descriptors


def _inherited(jail, listener, mode: str | None):
    """Runs the attacker with the descriptors inherited (in landjail with `mode`, or without
    it for the control); returns (result, what each listener got, what the unix peer got)."""
    tcp, udp, free_udp, ring = (listener.tcp(), listener.udp(), listener.udp(), listener.tcp())
    script = "; ".join([
        "e=%s" % jail.bins.escape, "$e inherited 10", "$e inherited 11",
        "$e inherited 12 127.0.0.1 %d" % free_udp.port, "$e inherited %d" % UNIX_FD,
        '$e ring-inherited "$ESCAPE_RING_FD" "$ESCAPE_RING_PARAMS" "$ESCAPE_RING_SQES" 127.0.0.1 %d' % ring.port])
    wd = jail.workdir("inherited-%s" % (mode or "control"))
    command = ["sh", "-c", script]
    rest = jail.argv(command, wd, mode)[len(user_prefix(jail.user)):] if mode else command
    argv = (user_prefix(jail.user) + [str(jail.bins.escape), "sqpoll-parent", "python3", "-c",
                                      OPENER, str(tcp.port), str(udp.port)] + rest)
    ours, theirs = socket.socketpair()
    unix_fd = fcntl.fcntl(theirs.fileno(), fcntl.F_DUPFD, UNIX_FD)
    theirs.close()
    try:
        assert unix_fd == UNIX_FD, unix_fd
        p = subprocess.run(argv, env=jail.env(wd), cwd=str(wd), pass_fds=(unix_fd,),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    finally:
        os.close(unix_fd)
    ours.setblocking(False)
    try:
        unix = ours.recv(65536)
    except BlockingIOError:
        unix = b""
    ours.close()
    escaped = {"tcp": [d for _, d in tcp.collect() if MARKER in d], "udp": udp.collect(),
               "udp-sendto": free_udp.collect(), "io_uring": ring.collect()}
    return p, escaped, unix, wd


@pytest.mark.parametrize("mode", list(MODES))
def test_inherited_sockets_are_closed(jail, listener, mode):
    """Sockets opened before landjail started and inherited by the command (TCP, UDP, an
    SQPOLL io_uring run by a process outside) carry nothing out: landjail closes them, says
    so on stderr and audits each; an inherited unix socket is kept and works."""
    p, escaped, unix, wd = _inherited(jail, listener, mode)
    err = p.stderr.decode(errors="replace")
    assert not any(escaped.values()), "ESCAPED through an inherited descriptor (%s, %s): %r\n%s" % (
        jail.user, mode, escaped, err)
    assert MARKER in unix, (unix, err)
    notice = re.findall(r"landjail: warning: closed 4 inherited descriptor\(s\).*", err)
    assert len(notice) == 1, err
    for fd in INHERITED_FDS:
        assert "fd %d (socket(AF_INET" % fd in notice[0], notice
    assert "(io_uring)" in notice[0], notice
    closed = [e for e in read_audit(wd / "audit.jsonl") if e.get("reason") == "inherited_fd_closed"]
    assert len(closed) == 4 and all(e["event"] == "socket_denied" for e in closed), closed
    want = [r"fd 10: socket\(AF_INET, SOCK_STREAM, 6\) 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+",
            r"fd 11: socket\(AF_INET, SOCK_DGRAM, 17\) 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+",
            r"fd 12: socket\(AF_INET, SOCK_DGRAM, 17\)", r"fd \d: io_uring"]
    what = sorted(e["destination"] for e in closed)
    assert all(re.fullmatch(w, d) for w, d in zip(want, what)), what


def test_inherited_sockets_control(jail, listener):
    """The control: without the jail every one of them reaches its listener."""
    p, escaped, unix, _ = _inherited(jail, listener, None)
    assert all(escaped.values()) and MARKER in unix, (escaped, p)


@pytest.mark.parametrize("keep", [False, True])
def test_network_socket_on_stdout(jail, listener, keep):
    """A network socket on standard output cannot be closed (its number would go to the next
    open): landjail refuses to start (125, naming --keep-fd 1) unless --keep-fd 1 says the
    command may have it."""
    udp = listener.udp()
    wd = jail.workdir("stdout-socket")
    argv = jail.argv(["echo", "ESCAPED via stdout"], wd, "full",
                     args=["--keep-fd", "1"] if keep else [])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.connect(("127.0.0.1", udp.port))
        p = subprocess.run(argv, env=jail.env(wd), cwd=str(wd), stdin=subprocess.DEVNULL,
                           stdout=out.fileno(), stderr=subprocess.PIPE, timeout=120)
    err = p.stderr.decode(errors="replace")
    got = udp.collect()
    if keep:
        assert p.returncode == 0 and got, (p.returncode, got, err)
    else:
        assert p.returncode == 125 and not got, (p.returncode, got, err)
        assert "standard output (fd 1) is socket(AF_INET, SOCK_DGRAM, 17)" in err, err
        assert "--keep-fd 1" in err, err


# ---- signals to processes outside the jail -------------------------------------------------

# Outside the jail, as the user, in a new session whose leader becomes landjail: starts one
# victim in this process group (landjail's, which the command starts in) and one leading a
# group of its own, waits until the test has read both and written the case, then execs
# landjail (or, for the control, the case itself). The victims stay children of landjail's
# process (as the jobs of a shell that execs landjail would), outside the jail.
HARNESS = r"""
import os, subprocess, sys
e, a, b, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
subprocess.Popen([e, "victim"], stdout=a, stderr=a, stdin=subprocess.DEVNULL)
subprocess.Popen([e, "victim", "group"], stdout=b, stderr=b, stdin=subprocess.DEVNULL)
os.close(a)
os.close(b)
os.read(go, 16)
os.close(go)
os.execvp(sys.argv[5], sys.argv[5:])
"""
# conftest MODES, plus Landlock taken away while pidfd_getfd stays: the supervisor then
# performs pidfd_send_signal on its own copy of the descriptor.
SIGNAL_MODES = dict(MODES, nolandlock=["--landlock-enosys"])


class PipeVictim:
    """`escape victim` started by the harness, reporting on a pipe: an item is a signal it
    got (not the sentinel SIGUSR2); collect() as conftest's Victim."""

    def __init__(self, fd: int):
        self.out = LineReader(fd)
        self.pid = int(self.out.until(r"READY (\d+)", 20).group(1))
        self.seen = 0

    def collect(self) -> list:
        if not Path("/proc/%d" % self.pid).exists():
            return ["(gone)"]
        os.kill(self.pid, signal.SIGUSR2)
        self.out.until(r"SIG %d " % signal.SIGUSR2, 20)
        return [line for line in self.out.lines[1:] if not line.startswith("SIG 12 ")]

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# (name, arguments of `escape` given (pid of the victim in landjail's group, pgid of the
# other victim's group, landjail's pgid)).
SIGNAL_CASES = {
    "kill0": lambda vl, vg, lj: ["kill0"],
    "setpgid-kill0": lambda vl, vg, lj: ["kill0", vg],
    "killpg": lambda vl, vg, lj: ["killpg", vg],
    "pidfd-proc": lambda vl, vg, lj: ["pidfd-proc", vl],
    "pidfd-open": lambda vl, vg, lj: ["pidfd-open", vl],
    "pidfd-open-group": lambda vl, vg, lj: ["pidfd-open", vg, "group"],
    "pidfd-fdswap": lambda vl, vg, lj: ["pidfd-fdswap", vl, "20000"],
    "fsetown": lambda vl, vg, lj: ["fsetown", "setown", vl],
    "fsetown-group": lambda vl, vg, lj: ["fsetown", "setown", -vg],
    "fsetown-landjail-group": lambda vl, vg, lj: ["fsetown", "setown", -lj],
    "fsetown-ex-pid": lambda vl, vg, lj: ["fsetown", "ex-pid", vl],
    "fsetown-ex-pgrp": lambda vl, vg, lj: ["fsetown", "ex-pgrp", vg],
    "fsetown-ex-tid": lambda vl, vg, lj: ["fsetown", "ex-tid", vl],
    "fiosetown": lambda vl, vg, lj: ["fsetown", "fiosetown", vl],
    "siocspgrp": lambda vl, vg, lj: ["fsetown", "siocspgrp", vl],
}


def _signal_case(jail, case: str, mode: str | None):
    """Runs one case in landjail (mode) or without it; {victim: signals it got}, the result."""
    wd = jail.workdir("signal-%s-%s" % (case, mode or "control"))
    script = wd / "case.sh"
    command = ["sh", str(script)]
    prefix = user_prefix(jail.user)
    rest = command
    if mode:
        wrap = [str(jail.bins.outer_seccomp), *SIGNAL_MODES[mode], "--"] if SIGNAL_MODES[mode] \
            else []
        rest = wrap + jail.argv(command, wd, "full")[len(prefix):]
    r3, w3 = os.pipe()
    r4, w4 = os.pipe()
    r5, w5 = os.pipe()
    victims = []
    p = subprocess.Popen(prefix + ["python3", "-c", HARNESS, str(jail.bins.escape),
                                   str(w3), str(w4), str(r5)] + rest,
                         pass_fds=(w3, w4, r5), start_new_session=True, env=jail.env(wd),
                         cwd=str(wd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        for fd in (w3, w4, r5):
            os.close(fd)
        victims = [PipeVictim(r3), PipeVictim(r4)]
        args = SIGNAL_CASES[case](victims[0].pid, victims[1].pid, p.pid)
        script.write_text("trap '' USR1\n%s\n" % shlex.join(
            [str(jail.bins.escape)] + [str(a) for a in args]))
        os.write(w5, b"go\n")
        out, err = p.communicate(timeout=120)
        got = {"in landjail's group": victims[0].collect(),
               "in a group of its own": victims[1].collect()}
    finally:
        os.close(w5)
        if p.poll() is None:
            p.kill()
            p.wait()
        for v in victims:
            v.close()
    return got, (p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


@pytest.mark.parametrize("mode", list(SIGNAL_MODES))
@pytest.mark.parametrize("case", list(SIGNAL_CASES))
def test_signal_does_not_escape(jail, case, mode):
    """No victim outside the jail gets a signal from it, whichever way it is sent, and
    landjail (in the victim's process group) returns the case's own status (0 when its calls
    succeeded, 1 when one was refused): it got nothing either."""
    got, r = _signal_case(jail, case, mode)
    assert not any(got.values()), "ESCAPED: a victim got a signal (%s, %s, %s): %r\n%r" % (
        case, jail.user, mode, got, r)
    assert r[0] in (0, 1), r


# The victim each case reaches without the jail.
SIGNAL_TARGET = {"kill0": "in landjail's group", "setpgid-kill0": "in a group of its own",
                 "killpg": "in a group of its own", "pidfd-open-group": "in a group of its own",
                 "fsetown-group": "in a group of its own",
                 "fsetown-ex-pgrp": "in a group of its own"}


@pytest.mark.parametrize("case", list(SIGNAL_CASES))
def test_signal_escapes_without_the_jail(jail, case):
    """The control: without the jail, the case's victim gets SIGUSR1."""
    got, r = _signal_case(jail, case, None)
    target = SIGNAL_TARGET.get(case, "in landjail's group")
    assert any(line.startswith("SIG 10 ") for line in got[target]), (got, r)
