# SPDX-License-Identifier: Apache-2.0
"""Escapes that do not go through a new connection (issue 13, part C), judged by what arrived
outside the jail, never by what the attacker printed; as root and as uid 65534, at full
protection and in the Docker-like modes (conftest MODES: full, addfd, docker), each with a
control that shows the same attack works without the jail:

- the user's terminal: bytes pushed into its input with TIOCSTI run in the user's shell after
  landjail exits (judged by the file the injected command would create);
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from conftest import MODES, user_prefix
from e2e_support_jail import Terminal

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
