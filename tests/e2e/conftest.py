"""Fixtures and helpers for the landjail end-to-end tests (tests/e2e, see README.md there).

The suite runs as root and switches to uid 65534 with setpriv for the unprivileged runs.

Fixtures (general):
- `bins`: paths of landjail, landjail-proxy and the e2e programs (escape, escape-static,
  outer-seccomp); missing binaries skip the tests, or fail them with LANDJAIL_REQUIRE_PROXY=1.
- `user`: "root" or "nobody" (uid/gid 65534); every test that uses it runs once for each.
- `jail`: a `JailRunner` for `user`: `jail.run(["cmd", ...], mode="full")` runs
  `landjail --audit-log ... --ca-dir ... -- cmd ...` as that user, optionally under
  outer-seccomp (`MODES`), in a fresh work directory the user owns, and returns a
  `JailResult` (exit status, output, audit events). `jail.run_plain()` runs the same command
  as the same user without landjail (the control), `jail.popen()` starts landjail without
  waiting.
- `listener`: a `Listeners` factory for loopback listeners that record what they receive:
  TCP and UDP on IPv4/IPv6 (any 127/8 address, any port), an HTTP sink that answers 204
  while the attacker runs, abstract unix stream/datagram
  sockets, an ICMP sniffer, a capture on lo by destination address, a signal victim.
  Judging is by `collect()`: it sends a sentinel through the same path *after* the attacker
  has finished and returns everything that came in before the sentinel, so "nothing
  arrived" is decided by ordering, not by a sleep.
- `PlainProxy`: landjail-proxy started by hand, for controls that attack a proxy.
- `pki`, `origin`: a test CA and an HTTPS origin (tests/integration/origin.py) for the
  acceptance commands, in a directory 65534 can read.

The helpers behind the fixtures live in support modules that test modules import directly:
e2e_support_runner.py (users, kernel probes, `Binaries`, `JailRunner`, `PlainProxy`,
`LineReader`) and e2e_support_listeners.py (`Listeners` and the listeners it makes).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
INTEGRATION = REPO / "tests" / "integration"
sys.path.insert(0, str(INTEGRATION))

import origin as origin_mod  # noqa: E402  (tests/integration/origin.py)
sys.path.insert(0, str(HERE))
from e2e_support_listeners import Listeners  # noqa: E402
from e2e_support_runner import USERS, Binaries, JailRunner, user_prefix  # noqa: E402


def _load_integration_conftest():
    """tests/integration/conftest.py under another module name (its PKI helpers); loading it
    as `conftest` would clash with this file."""
    spec = importlib.util.spec_from_file_location("lj_integration_conftest",
                                                  INTEGRATION / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_integration = _load_integration_conftest()


@pytest.fixture(scope="session")
def bins() -> Binaries:
    if os.geteuid() != 0:
        pytest.skip("the e2e suite runs as root (it switches to uid 65534 with setpriv)")
    b = Binaries()
    missing = [str(p) for p in b.all() if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        msg = ("not built: %s (run `make test-e2e`, or set LANDJAIL, LANDJAIL_PROXY and "
               "LANDJAIL_E2E_BIN)" % ", ".join(missing))
        if os.environ.get("LANDJAIL_REQUIRE_PROXY") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    # uid 65534 must be able to reach them (a checkout under a 0700 home cannot be used).
    probe = subprocess.run(user_prefix("nobody") + ["sh", "-c", 'for f; do test -x "$f" || '
                                                    'echo "$f"; done', "sh"] +
                           [str(p) for p in b.all()], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip():
        pytest.fail("uid 65534 cannot execute %s: make the checkout world-readable"
                    % (probe.stdout.strip() or probe.stderr))
    return b


# ---- work directories ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_root():
    """A root-owned 0755 directory under /tmp for this session (pytest's own tmp_path sits
    under a 0700 directory that uid 65534 cannot enter)."""
    d = Path(tempfile.mkdtemp(prefix="landjail-e2e-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=USERS)
def user(request) -> str:
    """The user the jail (and the attacker) runs as: root, then nobody (uid 65534)."""
    return request.param


@pytest.fixture
def jail(bins, user, shared_root) -> JailRunner:
    return JailRunner(bins, user, shared_root)


@pytest.fixture
def listener(bins) -> Listeners:
    """A factory for recording listeners (see Listeners); all closed at teardown."""
    ls = Listeners(bins)
    yield ls
    ls.close_all()


# ---- PKI and an HTTPS origin (for the acceptance commands) -----------------------------------


class PKI:
    pass


@pytest.fixture(scope="session")
def pki(shared_root) -> PKI:
    """A test CA and a certificate for origin.test (openssl CLI, as tests/integration does),
    readable by uid 65534 (landjail-proxy reads ca.pem as --upstream-ca)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl CLI not found (Debian package: openssl)")
    d = shared_root / "pki"
    d.mkdir(mode=0o755)
    _integration._make_ca(d, "ca", "landjail e2e test CA")
    _integration._make_leaf(d, "origin", "ca", "origin.test",
                            "DNS:origin.test,DNS:evil.test,IP:127.0.0.1")
    (d / "ca.pem").chmod(0o644)
    p = PKI()
    p.dir = d
    p.ca_pem = d / "ca.pem"
    p.origin_cert, p.origin_key = d / "origin.pem", d / "origin.key"
    return p


class HttpsOrigin:
    def __init__(self, pki: PKI):
        self.state = origin_mod.Origin()
        self.https = self.state.listen("https", "127.0.0.1", certfile=str(pki.origin_cert),
                                       keyfile=str(pki.origin_key))
        self.port = self.https.port

    def resolve_args(self, *names: str) -> list[str]:
        out = []
        for n in names:
            out += ["--resolve", "%s:443:127.0.0.1:%d" % (n, self.port)]
        return out

    def received(self):
        return self.state.received()

    def clear(self):
        self.state.clear()


@pytest.fixture(scope="session")
def origin_session(pki):
    o = HttpsOrigin(pki)
    yield o
    o.state.stop()


@pytest.fixture
def origin(origin_session) -> HttpsOrigin:
    """The session's HTTPS origin (answers GET / with origin.HELLO), its record cleared."""
    origin_session.clear()
    return origin_session
