# SPDX-License-Identifier: Apache-2.0
"""Escape by TOCTOU (issue 4 item 7): a thread flips the sockaddr between the proxy's address
and a forbidden one while the supervisor decides the connect; no connection may reach the
forbidden listener, while the same attacker does reach it without the jail (the control).
"""
from __future__ import annotations

import re
import pytest

from e2e_support_runner import JailRunner
from e2e_support_listeners import Listeners


TOCTOU_TRIES = 20000


# ---- TOCTOU: the address changes while the connect is decided --------------------------------


def _toctou(runner: JailRunner, listeners: Listeners, mode: str | None):
    port, (other,) = listeners.port_shared_by(["127.0.0.2"])
    cmd = [str(runner.bins.escape), "toctou", "127.0.0.1", "127.0.0.2", str(port),
           str(TOCTOU_TRIES)]
    if mode is None:
        r = runner.run_plain(cmd)
    else:
        r = runner.run(cmd, mode=mode, args=["--proxy-port", str(port)])
    m = re.search(r"(\d+) tries: (\d+) to the proxy, (\d+) refused, (\d+) other errors", r.stderr
                  + r.stdout)
    assert m, r
    return r, other.collect(), [int(x) for x in m.groups()]


@pytest.mark.parametrize("user_mode", [("root", "full"), ("nobody", "full"), ("root", "docker")],
                         ids=lambda um: "-".join(um))
def test_toctou_address_flip_does_not_escape(bins, shared_root, listener, user_mode):
    """One thread flips the sockaddr between the proxy (127.0.0.1:P) and a listener on
    127.0.0.2:P while the other calls connect() 20 000 times: the supervisor decides on its
    own copy, so the listener gets nothing, while both the proxy and refusals were hit (the
    race really raced)."""
    user, mode = user_mode
    r, got, (tries, to_proxy, refused, _) = _toctou(JailRunner(bins, user, shared_root),
                                                     listener, mode)
    assert got == [], "ESCAPED via TOCTOU (%s, %s): %r\n%r" % (user, mode, got, r)
    assert tries == TOCTOU_TRIES, r
    assert to_proxy > 0 and refused > 0, "the flip never changed the outcome: %r" % r


def test_toctou_escapes_without_the_jail(jail, listener):
    """Control: without the jail the same race reaches the 127.0.0.2 listener."""
    r, got, _ = _toctou(jail, listener, None)
    assert got, r
