"""Degradation without the supervisor, and --require (issue 4, item 5; DESIGN §3 levels 5
and 6), on this fully capable host made to look degraded by tests/e2e/outer-seccomp:
--no-notify takes seccomp user notification away, --landlock-enosys takes Landlock away.

- Level 5 (Landlock port rule, no supervisor) runs only with --allow-weak, says "weak" and
  what is lost, and still refuses other ports (judged by a listener) and UDP.
- Level 6 (neither) refuses to run even with --allow-weak.
- --require turns a missing layer into exit 125 naming it; doctor reports the same."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from e2e_support_env import (  # noqa: E402
    as_user, base_env, e2e_bin_dir, landjail_path, require_binary)
from e2e_support_origins import AcceptCounter, SharedDir  # noqa: E402

USERS = ["root", "nobody"]


@pytest.fixture(scope="module")
def shared():
    s = SharedDir("lj-e2e-degrade.")
    yield s
    s.cleanup()


def run(shared, user, outer, args, command, timeout=60):
    """landjail ARGS -- COMMAND under outer-seccomp OUTER, as USER; (rc, stdout, stderr)."""
    outer_bin = require_binary(e2e_bin_dir() / "outer-seccomp", "outer-seccomp")
    workdir = shared.subdir("run")
    home = workdir / "home"
    home.mkdir()
    home.chmod(0o777)
    argv = [str(require_binary(landjail_path(), "landjail")), "--ca-dir", str(workdir / "ca"),
            *args]
    if command is not None:
        argv += ["--", *command]
    p = subprocess.run([str(outer_bin), *outer, "--", *as_user(user, argv)],
                       env=base_env(home), cwd=str(workdir), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


ATTACK = """
import os, socket, sys
port = int(os.environ["HTTP_PROXY"].rsplit(":", 1)[1])
out = []
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
    out.append("forbidden:connected")
except OSError as e:
    out.append("forbidden:%s" % e.errno)
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.append("udp:created")
except OSError as e:
    out.append("udp:%s" % e.errno)
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET http://denied.test/ HTTP/1.1\\r\\nHost: denied.test\\r\\nConnection: close\\r\\n\\r\\n")
out.append("proxy:" + s.recv(12).decode())
print(" ".join(out))
"""


@pytest.mark.parametrize("user", USERS)
def test_weak_mode_needs_allow_weak(shared, user):
    """Without user notification, the only protection left is the Landlock port rule: landjail
    refuses (125, naming --allow-weak) unless asked, and the command does not run."""
    rc, out, err = run(shared, user, ["--no-notify"], [], ["echo", "RAN"])
    assert rc == 125, (rc, out, err)
    assert "--allow-weak" in err and "notification" in err, err
    assert "RAN" not in out


@pytest.mark.parametrize("user", USERS)
def test_weak_mode_with_allow_weak(shared, user):
    """Level 5 says it is weak and what is lost, and still holds: another port is refused by
    Landlock (EACCES) and the listener receives nothing, UDP is refused, the proxy answers."""
    listener = AcceptCounter()
    # --no-shim: the Landlock layer itself answers (the shim would tunnel the connect).
    rc, out, err = run(shared, user, ["--no-notify"], ["--allow-weak", "--no-shim"],
                       ["/usr/bin/python3", "-c", ATTACK, str(listener.port)])
    assert rc == 0, (rc, out, err)
    assert "protection is weak (level 5)" in err and "proxy's port" in err, err
    assert "forbidden:13" in out and "udp:13" in out and "proxy:HTTP/1.1 403" in out, out
    assert listener.accepted == 0


@pytest.mark.parametrize("user", USERS)
def test_no_layer_left_refuses_even_weak(shared, user):
    """Neither notification nor Landlock (level 6): the shim alone is not a boundary."""
    rc, out, err = run(shared, user, ["--no-notify", "--landlock-enosys"], ["--allow-weak"],
                       ["echo", "RAN"])
    assert rc == 125, (rc, out, err)
    assert "cannot jail" in err and "RAN" not in out, err


@pytest.mark.parametrize("outer,layer,word", [
    (["--no-notify"], "seccomp", "seccomp"),
    (["--landlock-enosys"], "landlock", "Landlock"),
    (["--landlock-enosys"], "landlock,seccomp", "Landlock"),
])
def test_require_turns_a_missing_layer_into_an_error(shared, outer, layer, word):
    """--require LAYER: a missing layer is exit 125 naming it (and the command never runs),
    where without --require landjail would degrade and run."""
    rc, out, err = run(shared, "root", outer, ["--allow-weak", "--require", layer],
                       ["echo", "RAN"])
    assert rc == 125, (rc, out, err)
    assert "--require" in err and word in err and "RAN" not in out, err


def test_require_holds_on_a_full_host(shared):
    rc, out, err = run(shared, "root", [], ["--require=landlock,seccomp"], ["echo", "RAN"])
    assert rc == 0 and "RAN" in out and "warning" not in err, (rc, out, err)


@pytest.mark.parametrize("outer,args,rc_want,line", [
    (["--no-notify"], [], 1, "protection:             none"),
    (["--no-notify"], ["--allow-weak"], 0, "protection:             weak (level 5)"),
    (["--landlock-enosys"], [], 0, "protection:             degraded (level 4)"),
    (["--no-notify", "--landlock-enosys"], ["--allow-weak"], 1, "protection:             none"),
])
def test_doctor_reports_the_level(shared, outer, args, rc_want, line):
    rc, out, err = run(shared, "root", outer, ["doctor", *args], None)
    assert rc == rc_want, (rc, out, err)
    assert line in out, out


CONTROL = """
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
print("forbidden:connected udp:created")
"""


@pytest.mark.parametrize("user", USERS)
def test_weak_mode_control_without_the_jail(user):
    """The control for test_weak_mode_with_allow_weak: the same user without landjail reaches
    the listener and creates a UDP socket, so the refusals above are the jail's."""
    listener = AcceptCounter()
    p = subprocess.run(as_user(user, ["/usr/bin/python3", "-c", CONTROL, str(listener.port)]),
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 0 and "forbidden:connected udp:created" in p.stdout, p
    deadline = time.monotonic() + 10
    while listener.accepted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the accept thread counts it
    assert listener.accepted == 1


# What doctor must list as lost at each level, one pattern per item (each item once).
DOCTOR_LOST = {
    "full": [],
    "addfd": [r"pidfd_getfd is refused \(EPERM\).*SECCOMP_IOCTL_NOTIF_ADDFD.*socket options"],
    "no-landlock": [
        r"no Landlock \(ENOSYS.*/proc/PID/mem",
        r"no signal scope.*by pid.*kill\(0\) and kill\(-PGID\).*only the jail's members",
        r"pidfd_send_signal is performed by the supervisor on its own copy",
        r"F_SETOWN to a process or group outside.*setpgid.*F_SETOWN_EX, FIOSETOWN and SIOCSPGRP",
        r"no abstract unix socket scope.*abstract unix sockets \(EPERM\).*datagram"],
    "docker": [
        r"pidfd_getfd is refused \(EPERM\)",
        r"no Landlock \(ENOSYS.*/proc/PID/mem",
        r"no signal scope.*by pid",
        r"pidfd_send_signal is refused \(EPERM\)",
        r"F_SETOWN to a process or group outside",
        r"no abstract unix socket scope"],
}
DOCTOR_OUTER = {"full": [], "addfd": ["--pidfd-getfd-eperm"], "no-landlock": ["--landlock-enosys"],
                "docker": ["--landlock-enosys", "--pidfd-getfd-eperm"]}


@pytest.mark.parametrize("mode", list(DOCTOR_LOST))
def test_doctor_lists_exactly_what_is_lost(shared, mode):
    """`landjail doctor` lists each thing the level loses against full protection, once:
    with Landlock gone, what the filter and the supervisor do instead of its signal and
    abstract-unix scopes (and what that costs), and the pidfd_send_signal path with and
    without pidfd_getfd; nothing at full protection."""
    rc, out, err = run(shared, "root", DOCTOR_OUTER[mode], ["doctor"], None)
    assert rc == 0, (rc, out, err)
    lost = [line[len("  lost: "):] for line in out.splitlines() if line.startswith("  lost: ")]
    want = DOCTOR_LOST[mode]
    assert len(lost) == len(want), "\n".join(lost)
    for pattern in want:
        assert sum(bool(re.search(pattern, item)) for item in lost) == 1, (pattern, lost)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("level,shown", [(None, False), ("warn", False), ("info", True),
                                         ("INFO", True), ("debug", True), ("error", False)])
def test_degraded_level_is_info_not_a_warning(shared, user, level, shown):
    """Docker's default profile degrades every start (issue 15): the levels lost are printed
    at --log-level info or debug only, never as a warning and never at error; doctor (above)
    lists them whatever the level. Judged on the Docker-like host (no Landlock, no
    pidfd_getfd)."""
    args = ["--log-level", level] if level else []
    rc, out, err = run(shared, user, DOCTOR_OUTER["docker"], args, ["echo", "RAN"])
    assert rc == 0 and "RAN" in out, (rc, out, err)
    lines = re.findall(r"^landjail: (?:warning: )?protection is .*$", err, re.M)
    assert "warning: protection is" not in err, err
    if shown:
        assert lines and all(l.startswith("landjail: protection is degraded (level") for l in lines)
        assert any("pidfd_getfd" in l for l in lines) and any("Landlock" in l for l in lines)
    else:
        assert not lines, err
