# SPDX-License-Identifier: Apache-2.0
"""The LD_PRELOAD shim (issue 5), its shared object and how the jail preloads it.

Every client runs in the real jail (`landjail --allow domain=origin.test --allow
domain=other.test --resolve NAME:PORT:127.0.0.1:P --upstream-ca TEST_CA -- CLIENT`) against the
local origins of e2e_support_origins (HTTPS on 443 and plain HTTP on 80 for origin.test and
other.test), as root and as uid 65534 (`nobody`), some also as root under outer-seccomp
--pidfd-getfd-eperm (`addfd`: the supervisor's ADDFD fallback); e2e_support_shim.py holds the
programs they run and the `env` fixture.

- linkage: `ldd` shows only vdso/libc/ld-linux, no libstdc++ symbols, the exported symbols
  are the hooks (nothing named lj_*);
- environment: LD_PRELOAD names the shim first and keeps an existing entry,
  LANDJAIL_SHIM_TABLE names the shared table; --no-shim leaves both out.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_shim import (  # noqa: E402
    USERS, HOOKS, REQUIRED_HOOKS, SH_ENV, shim_path, require_shim, run)
from e2e_support_shim import env  # noqa: E402,F401  (the fixture)


# ---- the shared object -----------------------------------------------------------------------


def test_shim_links_only_libc():
    """ldd: only linux-vdso, libc and the loader; no C++ runtime symbols."""
    shim = require_shim()
    ldd = subprocess.run(["ldd", str(shim)], capture_output=True, text=True)
    assert ldd.returncode == 0, ldd
    libs = [line.split()[0] for line in ldd.stdout.strip().splitlines()]
    for lib in libs:
        assert (lib.startswith("linux-vdso.so") or lib.startswith("libc.so")
                or "ld-linux" in lib), "unexpected dependency %r:\n%s" % (lib, ldd.stdout)
    assert any(x.startswith("libc.so") for x in libs), ldd.stdout
    undef = subprocess.run(["nm", "-D", "--undefined-only", str(shim)], capture_output=True,
                           text=True)
    assert undef.returncode == 0, undef
    cxx = [line for line in undef.stdout.splitlines()
           if re.search(r"GLIBCXX|CXXABI|\b_Z|__cxa_(?!finalize)|__gxx", line)]
    assert not cxx, "C++ runtime symbols: %s" % cxx


def test_shim_exports_only_the_hooks():
    shim = require_shim()
    nm = subprocess.run(["nm", "-D", "--defined-only", str(shim)], capture_output=True, text=True)
    assert nm.returncode == 0, nm
    names = {line.split()[-1].split("@")[0] for line in nm.stdout.splitlines() if line.strip()}
    assert not [n for n in names if n.startswith("lj_")], names
    assert REQUIRED_HOOKS <= names, "missing hooks: %s" % (REQUIRED_HOOKS - names)
    assert names <= HOOKS, "exported beyond the hooks: %s" % sorted(names - HOOKS)


# ---- the jail's environment ------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_environment_preloads_the_shim(env, user):
    """LD_PRELOAD starts with the shim and keeps an entry the caller had; the table file
    exists and the jailed user can read and write it. --no-shim: neither."""
    other = "/lib/x86_64-linux-gnu/libdl.so.2"  # a harmless glibc stub library
    if not os.path.exists(other):
        pytest.skip("%s not found" % other)
    # The outer LD_PRELOAD also applies to landjail itself: an ASan build (make asan) must be
    # told that its runtime need not come first.
    r = run(env, user, ["sh", "-c", SH_ENV],
            env={"LD_PRELOAD": other, "ASAN_OPTIONS": "verify_asan_link_order=0"})
    assert r.rc == 0, r
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    preload = got["LD_PRELOAD"].replace(" ", ":").split(":")
    assert preload[0] == str(shim_path()) and preload[-1] == other, r
    assert got["LANDJAIL_SHIM_TABLE"] and got["table"] == "rw", r
    r = run(env, user, ["sh", "-c", SH_ENV], args=["--no-shim"])
    assert r.rc == 0, r
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert "liblandjail-shim" not in got["LD_PRELOAD"], r
    assert got["LANDJAIL_SHIM_TABLE"] == "", r
