# SPDX-License-Identifier: Apache-2.0
"""Users, binaries and environment for the e2e client and process tests (the e2e_support_*
modules and the test modules that use them).

- the users (root and uid 65534 through `SETPRIV`), the test programs' paths (`landjail_path`,
  `proxy_path`, `e2e_bin_dir`, skipped or failed when missing), `as_user` and `base_env`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

NOBODY = 65534
USERS = ("root", "nobody")
SETPRIV = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]
PYTHON = "/usr/bin/python3"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
READY_TIMEOUT = 20.0
RUN_TIMEOUT = 120.0
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---- binaries ------------------------------------------------------------------------------


def landjail_path() -> Path:
    env = os.environ.get("LANDJAIL")
    return Path(env).resolve() if env else REPO / "build" / "bin" / "landjail"


def proxy_path() -> Path:
    env = os.environ.get("LANDJAIL_PROXY")
    return Path(env).resolve() if env else REPO / "build" / "bin" / "landjail-proxy"


def e2e_bin_dir() -> Path:
    env = os.environ.get("LANDJAIL_E2E_BIN")
    return Path(env).resolve() if env else REPO / "build" / "tests" / "e2e"


def require_binary(path: Path, what: str) -> Path:
    """The binary, or a skip (a failure with LANDJAIL_REQUIRE_PROXY=1, as in CI)."""
    if path.is_file() and os.access(path, os.X_OK):
        return path
    msg = "%s not found at %s (build it with `make`)" % (what, path)
    if os.environ.get("LANDJAIL_REQUIRE_PROXY") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def as_user(user: str, argv: list[str]) -> list[str]:
    """argv run as root (unchanged) or as uid/gid 65534 with no supplementary groups."""
    if user == "root":
        return list(argv)
    assert user == "nobody", user
    return SETPRIV + list(argv)


def base_env(home: Path, **extra) -> dict:
    """A small, explicit environment: nothing of the developer's proxies, CA bundles or
    landjail settings leaks into a test (LANDJAIL_PROXY is kept: it names the binary)."""
    env = {"PATH": PATH, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "LANG": "C.UTF-8", "TERM": os.environ.get("TERM", "dumb") or "dumb",
           "GIT_CONFIG_NOSYSTEM": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if os.environ.get("LANDJAIL_PROXY"):
        env["LANDJAIL_PROXY"] = str(proxy_path())
    env.update(extra)
    return env
