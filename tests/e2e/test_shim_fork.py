# SPDX-License-Identifier: Apache-2.0
"""The LD_PRELOAD shim across fork and exec (issue 5).

Every client runs in the real jail (`landjail --allow domain=origin.test --allow
domain=other.test --resolve NAME:PORT:127.0.0.1:P --upstream-ca TEST_CA -- CLIENT`) against the
local origins of e2e_support_origins (HTTPS on 443 and plain HTTP on 80 for origin.test and
other.test), as root and as uid 65534 (`nobody`), some also as root under outer-seccomp
--pidfd-getfd-eperm (`addfd`: the supervisor's ADDFD fallback); e2e_support_shim.py holds the
programs they run and the `env` fixture.

- fork and exec: a name resolved in the parent is connected by a forked child and by an exec'd
  program, a name resolved in a child is connected by the parent.
"""
from __future__ import annotations

import json
import os
import sys

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import PYTHON  # noqa: E402
from e2e_support_shim import (HELLO, USERS, run, last_json, is_placeholder)  # noqa: E402
from e2e_support_shim import env  # noqa: E402,F401  (the fixture)


# ---- fork and exec ---------------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_fork_and_exec_share_the_table(env, user):
    env.origins.state.clear()
    r = run(env, user, [PYTHON, env.scripts["fork.py"]])
    out = last_json(r)
    assert r.rc == 0, r
    assert is_placeholder(out["parent_addr"]), r
    assert out["child_get"].get("response", "").endswith(HELLO), r
    assert is_placeholder(out["child_addr"]["addr"]), r
    assert out["child_addr"]["addr"] != out["parent_addr"], r
    assert out["parent_get"].get("response", "").endswith(HELLO), r
    ex = out["exec"]
    assert ex["rc"] == 0, r
    got = json.loads(ex["stdout"].strip().splitlines()[-1])
    assert got["response"].endswith(HELLO), r
    assert got["other"] == out["child_addr"]["addr"], r
    snis = sorted(x["sni"] for x in env.origins.received("/", "GET"))
    assert snis == ["origin.test", "origin.test", "other.test"], env.origins.received()
