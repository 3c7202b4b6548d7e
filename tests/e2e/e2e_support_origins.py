# SPDX-License-Identifier: Apache-2.0
"""Directories, PKI and origins for the e2e client and process tests.

- `SharedDir`: a scratch directory under /tmp that uid 65534 can use (pytest's own tmp_path
  lives under a 0700 directory of root's).
- `make_pki`: a throw-away test CA and one origin certificate (openssl CLI, EC P-256) for the
  made-up names origin.test, other.test and git.test.
- `Origins` / `origin_world`: the HTTPS origins (tests/integration/origin.py) with the
  --resolve arguments that map their names to 127.0.0.1; `AcceptCounter` counts connections;
  `write_scripts` writes small executable scripts.

Only loopback is used: the origins listen on 127.0.0.1 and every name is mapped there with
--resolve; nothing is looked up in DNS.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import tempfile
import time
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import origin as origin_mod  # noqa: E402  (tests/integration/origin.py)

from e2e_support_env import SYSTEM_CA_BUNDLE  # noqa: E402


# ---- directories and PKI -------------------------------------------------------------------


class SharedDir:
    """A directory under /tmp, mode 0777 all the way down, removed by cleanup()."""

    def __init__(self, prefix: str):
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        os.chmod(self.path, 0o777)
        self._n = 0

    def subdir(self, name: str) -> Path:
        """A new, unique, world-writable directory NAME-<n> inside."""
        self._n += 1
        d = self.path / ("%s-%d" % (name, self._n))
        d.mkdir()
        os.chmod(d, 0o777)
        return d

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class PKI:
    """ca_pem: the test CA (what the proxy trusts upstream with --upstream-ca); cert/key: the
    origins' certificate for origin.test, other.test, git.test and 127.0.0.1."""

    def __init__(self, d: Path):
        self.dir = d
        self.ca_pem, self.ca_key = d / "ca.pem", d / "ca.key"
        self.cert, self.key = d / "origin.pem", d / "origin.key"


def _openssl(cwd: Path, *args: str):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr))


def make_pki(d: Path) -> PKI:
    if shutil.which("openssl") is None:
        pytest.fail("openssl CLI not found (Debian package: openssl)")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
             "-subj", "/CN=landjail e2e test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash")
    _openssl(d, "req", "-new", *ec, "-keyout", "origin.key", "-out", "origin.csr",
             "-subj", "/CN=origin.test")
    (d / "origin.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        "subjectAltName=DNS:origin.test,DNS:other.test,DNS:git.test,IP:127.0.0.1\n")
    _openssl(d, "x509", "-req", "-in", "origin.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "origin.ext",
             "-out", "origin.pem")
    for name in ("ca.pem", "origin.pem"):
        os.chmod(d / name, 0o644)
    return PKI(d)


def ca_bundle(path: Path, extra_ca: Path) -> Path:
    """The system roots plus extra_ca in one PEM file (what the jail gives its child)."""
    with open(path, "wb") as out:
        out.write(Path(SYSTEM_CA_BUNDLE).read_bytes())
        out.write(b"\n" + extra_ca.read_bytes())
    os.chmod(path, 0o644)
    return path


# ---- origins -------------------------------------------------------------------------------


class Origins:
    """An HTTPS origin (tests/integration/origin.py) on 127.0.0.1 for origin.test and
    other.test, and optionally the git server for git.test; resolve_args() maps the names."""

    def __init__(self, pki: PKI, git=None):
        self.state = origin_mod.Origin()
        self.https = self.state.listen("https", "127.0.0.1", certfile=str(pki.cert),
                                       keyfile=str(pki.key))
        self.http = self.state.listen("http", "127.0.0.1")
        self.git = git

    def resolve_args(self) -> list[str]:
        m = []
        for name in ("origin.test", "other.test"):
            m += ["--resolve", "%s:443:127.0.0.1:%d" % (name, self.https.port)]
            m += ["--resolve", "%s:80:127.0.0.1:%d" % (name, self.http.port)]
        if self.git is not None:
            m += ["--resolve", "git.test:443:127.0.0.1:%d" % self.git.port]
        return m

    def received(self, path_prefix=None, method=None):
        return self.state.received(path_prefix, method)

    def stop(self):
        self.state.stop()
        if self.git is not None:
            self.git.stop()


@contextlib.contextmanager
def origin_world(prefix: str):
    """(shared, pki, origins): a SharedDir, the test PKI in it and the HTTPS origins, all
    stopped and removed at the end (a module fixture's body)."""
    shared = SharedDir(prefix)
    origins = None
    try:
        pki = make_pki(shared.subdir("pki"))
        origins = Origins(pki)
        yield shared, pki, origins
    finally:
        if origins is not None:
            origins.stop()
        shared.cleanup()


class AcceptCounter:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts (and closes them):
    a place the jail must never reach, or a weak-mode control's target."""

    def __init__(self, port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.peers: list = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer)
            self.accepted += 1
            c.close()

    def settled(self, timeout: float = 10.0) -> int:
        """The connections accepted before now, decided by ordering: a sentinel connection is
        accepted after every connection made before it (the listen queue is FIFO)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            me = s.getsockname()
            deadline = time.monotonic() + timeout
            while me not in self.peers:
                assert time.monotonic() < deadline, "the sentinel connection was not accepted"
                time.sleep(0.01)
        return self.peers.index(me)

    def close(self):
        self.sock.close()


def write_scripts(d: Path, scripts: dict) -> dict:
    """Writes each {name: text} into d, readable by uid 65534; returns {name: path}."""
    paths = {}
    for name, text in scripts.items():
        (d / name).write_text(text)
        os.chmod(d / name, 0o644)
        paths[name] = str(d / name)
    return paths
