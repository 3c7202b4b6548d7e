# SPDX-License-Identifier: Apache-2.0
"""The LD_PRELOAD shim's name lookups (issue 5).

Every client runs in the real jail (`landjail --allow domain=origin.test --allow
domain=other.test --resolve NAME:PORT:127.0.0.1:P --upstream-ca TEST_CA -- CLIENT`) against the
local origins of e2e_support_origins (HTTPS on 443 and plain HTTP on 80 for origin.test and
other.test), as root and as uid 65534 (`nobody`), some also as root under outer-seccomp
--pidfd-getfd-eperm (`addfd`: the supervisor's ADDFD fallback); e2e_support_shim.py holds the
programs they run and the `env` fixture.

- lookups (lookup_probe, every hooked function): placeholders for names, libc's own answers
  (the same program with --no-shim) for localhost and literals, inet_aton forms included;
  AI_CANONNAME names the name; strings that are not host names are refused.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import PYTHON  # noqa: E402
from e2e_support_shim import (USERS, client_bin, run, last_json, is_placeholder)  # noqa: E402
from e2e_support_shim import env  # noqa: E402,F401  (the fixture)


# ---- lookups ---------------------------------------------------------------------------------

NAMES = ("origin.test", "ORIGIN.Test.", "other.test")
LIBC_NAMES = ("localhost", "127.0.0.1", "::1", "LOCALHOST")


def probe(lines: str) -> dict:
    out = {}
    for line in lines.splitlines():
        parts = line.split("|")
        if len(parts) == 4:
            out[tuple(parts[:3])] = parts[3]
    return out


@pytest.mark.parametrize("user", USERS)
def test_lookups_answer_placeholders(env, user):
    """Every hooked lookup function: a name gets one placeholder (198.18.0.0/15, or
    ::ffff:198.18.x.y for AF_INET6), the same from every function and for every spelling of
    the name; another name another one; AI_NUMERICHOST still refuses names; hostent carries
    the name; a too-small gethostbyname_r buffer gives ERANGE. Numeric hosts and localhost get
    exactly what libc answers without the shim."""
    bin_ = client_bin("lookup_probe")
    r = run(env, user, [bin_, *NAMES, *LIBC_NAMES])
    assert r.rc == 0, r
    got = probe(r.stdout)
    v4 = {}
    for name in NAMES:
        rows = {k: v for k, v in got.items() if k[1] == name}
        assert len(rows) == 13, rows
        addrs = set()
        for (fn, _, variant), res in rows.items():
            if variant == "numerichost":
                assert res == "err EAI_NONAME", (fn, name, res)
                continue
            if variant == "small":
                assert res == "rc ERANGE result=null", (fn, name, res)
                continue
            assert res.startswith("ok "), (fn, name, variant, res)
            addr_list = res.split()[1].split(",")
            assert len(addr_list) == 1 and is_placeholder(addr_list[0]), (fn, name, variant, res)
            six = variant.startswith("inet6")
            assert addr_list[0].startswith("::ffff:") == six, (fn, name, variant, res)
            addrs.add(addr_list[0].replace("::ffff:", ""))
            if fn.startswith("gethostbyname"):
                assert ("canon=" + name.lower().rstrip(".")) in res, (fn, name, res)
                assert ("len=%d" % (16 if six else 4)) in res, (fn, name, res)
        assert len(addrs) == 1, (name, rows)
        v4[name.lower().rstrip(".")] = addrs.pop()
    assert v4["origin.test"] != v4["other.test"], v4
    # libc's own answers: the same program in the jail without the shim
    plain = run(env, user, [bin_, *LIBC_NAMES], args=["--no-shim"])
    want = probe(plain.stdout)
    assert plain.rc == 0 and len(want) == 13 * len(LIBC_NAMES), plain
    for key, res in want.items():
        assert got.get(key) == res, (key, got.get(key), res)


@pytest.mark.parametrize("user", USERS)
def test_lookup_inet_aton_forms_stay_numeric(env, user):
    """glibc takes the inet_aton forms of IPv4 literals as numeric hosts, not names:
    getaddrinfo all of them ("127.1", "2130706433", "0x7f.1"), the gethostbyname family the
    digits-and-dots ones. With the shim they must give libc's answers, not placeholders."""
    bin_ = client_bin("lookup_probe")
    names = ("127.1", "2130706433", "0x7f.1")
    got = probe(run(env, user, [bin_, *names]).stdout)
    want = probe(run(env, user, [bin_, *names], args=["--no-shim"]).stdout)
    assert len(want) == 13 * len(names), want
    want = {k: v for k, v in want.items() if k[0] == "getaddrinfo" or k[1] != "0x7f.1"}
    diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    assert not diff, "with the shim / without:\n" + "\n".join(
        "%s: %s / %s" % ("|".join(k), a, b) for k, (a, b) in sorted(diff.items()))


@pytest.mark.parametrize("user", USERS)
def test_lookup_refuses_names_that_are_not_host_names(env, user):
    """A name with a space, a tab or CR LF gets an error, as from libc (--no-shim), not a
    placeholder that would later be written into `CONNECT NAME:PORT HTTP/1.1`."""
    plain = run(env, user, [PYTHON, env.scripts["bad_names.py"]], args=["--no-shim"])
    assert set(last_json(plain).values()) == {"gaierror"}, plain
    r = run(env, user, [PYTHON, env.scripts["bad_names.py"]])
    assert last_json(r) == last_json(plain), r


@pytest.mark.parametrize("user", USERS)
def test_lookup_canonname_is_the_name(env, user):
    """getaddrinfo(AI_CANONNAME) reports the name looked up (as libc does for a name), not the
    placeholder's text."""
    r = run(env, user, [client_bin("lookup_probe"), "origin.test"])
    got = probe(r.stdout)
    assert got[("getaddrinfo", "origin.test", "canonname")].endswith(" canon=origin.test"), r
