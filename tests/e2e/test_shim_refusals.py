# SPDX-License-Identifier: Apache-2.0
"""The LD_PRELOAD shim's refusals (issue 5): a denied host and UDP.

Every client runs in the real jail (`landjail --allow domain=origin.test --allow
domain=other.test --resolve NAME:PORT:127.0.0.1:P --upstream-ca TEST_CA -- CLIENT`) against the
local origins of e2e_support_origins (HTTPS on 443 and plain HTTP on 80 for origin.test and
other.test), as root and as uid 65534 (`nobody`), some also as root under outer-seccomp
--pidfd-getfd-eperm (`addfd`: the supervisor's ADDFD fallback); e2e_support_shim.py holds the
programs they run and the `env` fixture.

- a denied host: ECONNREFUSED, one stderr line, exactly one deny audit line;
- UDP (the shim preloaded by hand outside the jail, as seccomp refuses UDP sockets in it):
  sendto/connect/sendmsg to a non-loopback address fail with EACCES and one line each;
  loopback UDP still works.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import (PYTHON, SETPRIV, base_env)  # noqa: E402
from e2e_support_shim import (  # noqa: E402
    UNSET_PROXY, REFUSED_LINE, USERS, require_shim, client_bin, run, last_json, refused_lines)
from e2e_support_shim import env  # noqa: E402,F401  (the fixture)


# ---- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_denied_host(env, user):
    """evil.test (no rule): the client gets ECONNREFUSED, stderr has exactly one line naming
    the host and the 403, the audit exactly one deny line (the CONNECT), and the supervisor
    refused nothing (the connect to the proxy itself was fine)."""
    env.origins.state.clear()
    r = run(env, user, UNSET_PROXY + [PYTHON, env.scripts["denied.py"]])
    assert r.rc == 0 and last_json(r)["result"] == "ECONNREFUSED", r
    lines = [x for x in r.stderr.splitlines() if x.startswith("landjail: CONNECT ")]
    assert len(lines) == 1, r
    assert REFUSED_LINE.fullmatch(lines[0]) and "evil.test:443" in lines[0], r
    assert "refused by the proxy: 403" in lines[0], r
    denies = [x for x in r.audit() if x.get("decision") == "deny"]
    assert len(denies) == 1, r.audit()
    assert denies[0]["event"] == "http_request" and denies[0]["http_method"] == "CONNECT", denies
    assert "evil.test" in denies[0]["http_url"], denies
    assert not [x for x in r.audit() if x.get("event") in ("connect_denied", "socket_denied")]
    assert env.origins.received() == []


@pytest.mark.parametrize("user", USERS)
def test_denied_host_nonblocking_c_client(env, user):
    """The same refusal seen by a non-blocking client: ECONNREFUSED from connect() or from
    SO_ERROR after poll, the socket flags intact."""
    r = run(env, user, [client_bin("nonblock_connect"), "evil.test", "80"])
    assert r.rc == 2 and re.search(r"refused=(connect|so_error)", r.stdout), r
    m = re.search(r"flags before=(\S+) after=(\S+)", r.stdout)
    assert m and m.group(1) == m.group(2), r
    assert refused_lines(r) == [("evil.test:80", "403")], r


# ---- UDP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_udp_refused_with_a_message(env, user):
    """sendto/sendmsg/connect of a UDP socket to a non-loopback address: EACCES and one line
    each on stderr; loopback UDP is untouched. The shim preloaded by hand (the jail would
    refuse the UDP socket itself)."""
    shim = require_shim()
    e = base_env(Path("/tmp"), LD_PRELOAD=str(shim), HTTP_PROXY="http://127.0.0.1:9")
    p = subprocess.run((SETPRIV if user == "nobody" else []) + [PYTHON, env.scripts["udp.py"]],
                       capture_output=True, text=True, env=e, timeout=60)
    assert p.returncode == 0, p
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert {k: out[k] for k in ("sendto", "sendmsg", "sendto6", "connect")} == {
        "sendto": "EACCES", "sendmsg": "EACCES", "sendto6": "EACCES", "connect": "EACCES"}, p
    assert out["loopback"] == "ok" and out["received"] == "loopback datagram", p
    lines = [x for x in p.stderr.splitlines() if x.startswith("landjail: ")]
    assert len(lines) == 4, p
    assert all(x.startswith("landjail: UDP to ") for x in lines), p
    assert sum("192.0.2.1:53" in x for x in lines) == 3, p
    assert sum("[2001:db8::1]:53" in x for x in lines) == 1, p
