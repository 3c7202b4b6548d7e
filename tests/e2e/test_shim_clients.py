# SPDX-License-Identifier: Apache-2.0
"""The LD_PRELOAD shim (issue 5): programs that ignore HTTP_PROXY work through the proxy.

Every client runs in the real jail (`landjail --allow domain=origin.test --allow
domain=other.test --resolve NAME:PORT:127.0.0.1:P --upstream-ca TEST_CA -- CLIENT`) against the
local origins of e2e_support_origins (HTTPS on 443 and plain HTTP on 80 for origin.test and
other.test), as root and as uid 65534 (`nobody`), some also as root under outer-seccomp
--pidfd-getfd-eperm (`addfd`: the supervisor's ADDFD fallback); e2e_support_shim.py holds the
programs they run and the `env` fixture.

- Node 20 fetch (the acceptance command) and its --no-shim control, Node net.connect + TLS,
  Python http.client.HTTPSConnection, `openssl s_client`;
- Python sockets: AF_INET6 to the v4-mapped placeholder, a socket with a timeout, a literal
  address (tunnelled, refused by the policy), the proxy itself (left alone);
- C clients (tests/e2e/shim_clients/, built into build/tests/e2e/): non-blocking connect +
  poll + SO_ERROR with the socket flags restored, a blocking connect keeping errno, a second
  connect() on the connected socket, 8 threads x 125 connects.
"""
from __future__ import annotations

import os
import re
import sys

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import PYTHON  # noqa: E402
from e2e_support_shim import (  # noqa: E402
    HELLO, UNSET_PROXY, NODE_FETCH, USERS, RUNNERS, OPENSSL_GET, client_bin, node, run, last_json,
    is_placeholder, http_events, refused_lines)
from e2e_support_shim import env  # noqa: E402,F401  (the fixture)


# ---- Node ------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_acceptance_node_fetch(env, user):
    """Issue 5's acceptance: `landjail --allow domain=origin.test … -- node -e
    "fetch('https://origin.test/')…"` with HTTPS_PROXY unset inside prints the origin's body."""
    env.origins.state.clear()
    r = run(env, user, ["env", "-u", "HTTPS_PROXY", node(), "-e", NODE_FETCH],
            allow=("domain=origin.test",))
    assert r.rc == 0 and r.stdout == HELLO + "\n", r
    assert len(env.origins.received("/", "GET")) == 1, env.origins.received()
    ev = http_events(r)
    assert [(x["decision"], x["http_method"], x["http_url"]) for x in ev] == [
        ("allow", "GET", "https://origin.test/")], r.audit()


@pytest.mark.parametrize("runner", RUNNERS)
def test_node_fetch_without_proxy_variables(env, runner):
    """fetch with every *_PROXY variable removed (env -u): the shim still knows the proxy
    (landjail also hands it LANDJAIL_SHIM_PROXY)."""
    r = run(env, runner, UNSET_PROXY + ["NODE_USE_ENV_PROXY=0", node(), "-e", NODE_FETCH])
    assert r.rc == 0 and r.stdout == HELLO + "\n", r


@pytest.mark.parametrize("user", USERS)
def test_node_fetch_fails_with_no_shim(env, user):
    """The control: the same fetch with --no-shim never reaches the origin."""
    env.origins.state.clear()
    r = run(env, user, ["env", "-u", "HTTPS_PROXY", node(), "-e", NODE_FETCH],
            allow=("domain=origin.test",), args=["--no-shim"])
    assert r.rc != 0 and HELLO not in r.stdout, r
    assert "fetch failed" in r.stderr, r
    assert env.origins.received() == [], env.origins.received()


@pytest.mark.parametrize("user", USERS)
def test_node_net_connect_and_tls(env, user):
    r = run(env, user, UNSET_PROXY + [node(), env.scripts["node_net_tls.js"]])
    out = last_json(r)
    assert r.rc == 0 and "error" not in out, r
    assert out["authorized"] is True, r
    assert out["data"].startswith("HTTP/1.1 200") and out["data"].endswith(HELLO), r
    assert is_placeholder(out["looked_up"]), r


# ---- Python and openssl ----------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_python_http_client(env, user):
    """http.client.HTTPSConnection (no proxy support), after the program deleted every proxy
    variable from its own environment: the shim read them when it was loaded."""
    r = run(env, user, [PYTHON, env.scripts["http_client.py"]])
    out = last_json(r)
    assert r.rc == 0 and out["status"] == 200 and out["body"] == HELLO, r
    assert out["env"] == [], r


@pytest.mark.parametrize("user", USERS)
def test_python_sockets(env, user):
    """An AF_INET6 socket to the v4-mapped placeholder; a socket with a timeout (non-blocking
    connect inside CPython); a literal address, tunnelled as CONNECT 127.0.0.1:P and refused
    by the policy; and a connect to the proxy itself, left alone."""
    r = run(env, user, [PYTHON, env.scripts["sockets.py"], str(env.origins.http.port)])
    out = last_json(r)
    assert r.rc == 0, r
    assert is_placeholder(out["v6"]["addr"]) and out["v6"]["addr"].startswith("::ffff:"), r
    assert out["v6"]["response"].endswith(HELLO), r
    assert out["timeout"]["response"].endswith(HELLO), r
    assert out["timeout"]["o_nonblock"] is True, r
    assert out["literal"].get("errno") == "ECONNREFUSED", r
    assert ("127.0.0.1:%d" % env.origins.http.port, "403") in refused_lines(r), r
    assert out["proxy"]["reply"].startswith("HTTP/1.1 200"), r
    assert out["proxy"]["response"].endswith(HELLO), r


@pytest.mark.parametrize("user", USERS)
def test_openssl_s_client(env, user):
    r = run(env, user, UNSET_PROXY + ["sh", "-c", OPENSSL_GET])
    assert r.rc == 0, r
    assert "HTTP/1.1 200" in r.stdout and r.stdout.rstrip().endswith(HELLO), r


# ---- C clients -------------------------------------------------------------------------------


@pytest.mark.parametrize("runner", RUNNERS)
def test_c_nonblocking_connect(env, runner):
    """socket(SOCK_NONBLOCK) with O_APPEND too; connect() = -1/EINPROGRESS, poll(POLLOUT),
    SO_ERROR 0, the flags as they were, then plain HTTP in the tunnel."""
    env.origins.state.clear()
    r = run(env, runner, [client_bin("nonblock_connect"), "origin.test", "80", "/"])
    assert r.rc == 0, r
    assert "connect rc=-1 errno=EINPROGRESS" in r.stdout, r
    m = re.search(r"flags before=(\S+) after=(\S+)", r.stdout)
    assert m and m.group(1) == m.group(2), r
    assert "so_error=0" in r.stdout and "status=200" in r.stdout, r
    assert ("body=" + HELLO) in r.stdout, r
    assert is_placeholder(re.search(r"address=(\S+)", r.stdout).group(1)), r
    assert len(env.origins.received("/", "GET")) == 1


@pytest.mark.parametrize("user", USERS)
def test_c_blocking_connect_keeps_errno_and_flags(env, user):
    r = run(env, user, [client_bin("nonblock_connect"), "--blocking", "origin.test", "80"])
    assert r.rc == 0, r
    assert "connect rc=0 errno=EXDEV" in r.stdout, r  # errno set before the call is kept
    m = re.search(r"flags before=(\S+) after=(\S+)", r.stdout)
    assert m and m.group(1) == m.group(2), r
    assert ("body=" + HELLO) in r.stdout, r


@pytest.mark.parametrize("user", USERS)
def test_c_connect_again_on_connected_socket(env, user):
    """After a non-blocking connect completed, connect() again (how Ruby's connect_nonblock
    and some event loops learn the outcome) answers EISCONN (or 0), as the kernel does, and
    the tunnel stays intact: no second CONNECT goes down it."""
    r = run(env, user, [client_bin("nonblock_connect"), "--again", "origin.test", "80"])
    m = re.search(r"again rc=(-?\d+) errno=(\S+)", r.stdout)
    assert m and (m.group(1) == "0" or m.group(2) == "EISCONN"), r
    assert r.rc == 0 and ("body=" + HELLO) in r.stdout, r
    assert not refused_lines(r), r


@pytest.mark.parametrize("runner", RUNNERS)
def test_c_threads_1000_connects(env, runner):
    """8 threads x 125 connections, each with its own getaddrinfo: all succeed, the origin
    gets 1000 requests, the audit has 1000 allowed GETs."""
    env.origins.state.clear()
    r = run(env, runner, [client_bin("threads_connect"), "-t", "8", "-n", "125", "origin.test",
                          "80", "/"], timeout=180)
    assert r.rc == 0 and "ok 1000 fail 0" in r.stdout, r
    assert len(env.origins.received("/", "GET")) == 1000
    allowed = [x for x in http_events(r) if x["decision"] == "allow"
               and x["http_url"] in ("http://origin.test/", "http://origin.test:80/")]
    assert len(allowed) == 1000 and len(http_events(r)) == 1000, r
