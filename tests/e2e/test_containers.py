# SPDX-License-Identifier: Apache-2.0
"""landjail inside real Docker containers (issue 16 item 1), with a dockerd the tests start
(tests/e2e/docker_support.py: own data root and socket, --iptables=false, no bridge, an image
made with `docker import` from the host's files, nothing pulled).

Three containers, each with --network none (and IPv6 enabled on its loopback):
- `default`: Docker's default seccomp profile (pidfd_getfd refused without CAP_SYS_PTRACE):
  protection level 2;
- `nolandlock`: a profile that also refuses the Landlock system calls, as profiles older than
  Landlock do (seccomp/nolandlock.json here: EPERM for landlock_* and pidfd_getfd): level 4;
- `hardened`: --cap-drop ALL --security-opt no-new-privileges --read-only --tmpfs /tmp, HOME
  read-only: level 2, the CA directory falls back to /tmp.
In each, as root and as uid 65534: doctor's level and the process facts it names; then one
landjail run whose script does every functional check (allow, deny with 403 and audit, a
direct connect refused with connect_denied, UDP refused with socket_denied, the shim path:
node's fetch without proxy variables, the exit status). In `default` and `nolandlock`, the
escape suite's main attacks (e2e_support_escape.CASES) in one landjail; the control runs the same
attackers in the same container without landjail, and they do reach their listeners.

The origin and every listener are the test's own sockets opened in the container's network
namespace (docker_support.netns): on the container's loopback, outside the jail and outside
the attacker. Judged by what they received, as in test_escape.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

import docker_support as ds
from e2e_support_runner import REPO
from e2e_support_listeners import Listeners
from conftest import HttpsOrigin
from e2e_support_escape import CASES_BY_NAME, Ctx, _sh_quote

HERE = Path(__file__).resolve().parent
OPT = "/opt/landjail-e2e"  # the test programs in the image
UPSTREAM_CA = "/tmp/upstream-ca.pem"  # the origin's CA, for --upstream-ca (/tmp: writable)
IPV6 = ["--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
        "--sysctl", "net.ipv6.conf.lo.disable_ipv6=0"]
HARDENED = ["--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only",
            "--tmpfs", "/tmp:mode=1777,exec"]
SETUPS = {  # name: (docker run options, protection level expected)
    "default": (IPV6, 2),
    "nolandlock": (IPV6 + ["--security-opt", "seccomp=%s" % (HERE / "seccomp" /
                                                            "nolandlock.json")], 4),
    "hardened": (IPV6 + HARDENED, 2),
}
HOMES = {"root": "/root", "nobody": "/home/nobody"}
PATH = "/usr/local/bin:/usr/bin:/bin"
RULE = "domain=origin.test method=GET path=/path-echo/allowed/*"
# The escape cases run in containers: direct TCP in every form, the proxy's port elsewhere,
# TCP Fast Open, MPTCP, UDP, raw/packet/ICMP, the i386 ABI, io_uring, abstract unix sockets,
# source routes, and the static attacker. (proxymem needs a proxy started by hand and signal a
# victim in the container; both stay on the host's suite.)
ESCAPES = ["tcp", "tcp-other-addr", "tcp6", "tcp-v4-mapped", "tcp-proxy-port-other-addr",
           "tcp6-proxy-port", "tcp-nonblock", "tcp-thread", "tcp-vfork", "lsrr",
           "tfo-sendto", "tfo-connect", "mptcp", "udp-sendto", "udp-sendmsg", "udp6-sendto",
           "raw", "raw6", "packet", "raw-icmp", "ping", "i386-socketcall", "i386-connect",
           "io_uring", "io_uring-udp", "abstract", "abstract-dgram", "static-tcp",
           "static-tcp6", "static-tcp-proxy-port-other-addr", "static-udp-sendto",
           "static-io_uring"]
NEEDS_NET_RAW = {"raw", "raw6", "packet", "raw-icmp", "lsrr"}


# ---- the daemon, the image, the containers --------------------------------------------------


@pytest.fixture(scope="session")
def dockerd(bins):
    reason = ds.unavailable_reason()
    if reason:
        pytest.skip("no Docker daemon: " + reason)
    root = Path(tempfile.mkdtemp(prefix="landjail-docker-", dir="/tmp"))
    daemon = ds.DockerDaemon(root)
    try:
        daemon.start()
        ds.build_image(daemon, image_files(bins), root)
        yield daemon
    finally:
        daemon.stop()


def image_files(bins) -> dict:
    """The landjail binaries in the installed layout, and the attackers."""
    build = bins.landjail.parent.parent
    files = {"/usr/local/bin/landjail": bins.landjail,
             "/usr/local/bin/landjail-proxy": bins.proxy_path(),
             "/usr/local/lib/landjail/liblandjail-shim.so": build / "lib" /
             "liblandjail-shim.so",
             OPT + "/escape": bins.escape, OPT + "/escape-static": bins.escape_static}
    for p in (build / "share" / "landjail" / "profiles").glob("*.yaml"):
        files["/usr/local/share/landjail/profiles/" + p.name] = p
    return files


class World:
    """One container, its HTTPS origin (in its network namespace) and a counter of work
    directories."""

    def __init__(self, daemon: ds.DockerDaemon, name: str, options, level: int, pki):
        self.name, self.level = name, level
        self.c = daemon.run_container("landjail-" + name, *options)
        with ds.netns(self.c.pid):
            self.origin = HttpsOrigin(pki)
        self.c.write(UPSTREAM_CA, pki.ca_pem.read_bytes())
        self.n = 0

    def netns(self):
        return ds.netns(self.c.pid)

    def workdir(self, user: str) -> str:
        self.n += 1
        d = "/tmp/work-%s-%d" % (user, self.n)
        self.c.exec(["mkdir", "-p", d], user=user, check=True)
        return d

    def env(self, user: str) -> dict:
        return {"PATH": PATH, "HOME": HOMES[user]}

    def landjail(self, user: str, wd: str, script: str, allow=(RULE,), args=()):
        """`landjail … -- sh SCRIPT` in the container as `user` (SCRIPT written to wd)."""
        self.c.write(wd + "/script.sh", script.encode(), 0o755, user)
        argv = ["landjail", "--audit-log", wd + "/audit.jsonl", "--upstream-ca",
                UPSTREAM_CA, "--resolve",
                "origin.test:443:127.0.0.1:%d" % self.origin.port]
        for rule in allow:
            argv += ["--allow", rule]
        return self.c.exec(argv + list(args) + ["--", "sh", wd + "/script.sh"], user=user,
                           env=self.env(user), workdir=wd)

    def audit(self, wd: str, user: str) -> list[dict]:
        """The audit trail (read as its owner: root in `hardened` has no capabilities)."""
        return [json.loads(line) for line in self.c.read(wd + "/audit.jsonl", user).splitlines()
                if line.strip()]

    def stop(self):
        self.origin.state.stop()


@pytest.fixture(scope="session")
def worlds(dockerd, pki):
    made: dict[str, World] = {}

    def get(name: str) -> World:
        if name not in made:
            options, level = SETUPS[name]
            made[name] = World(dockerd, name, options, level, pki)
        return made[name]

    yield get
    for w in made.values():
        w.stop()


@pytest.fixture(params=sorted(SETUPS))
def setup(request) -> str:
    return request.param


# ---- doctor ---------------------------------------------------------------------------------


def test_doctor_in_container(worlds, setup, user):
    """The level each container reaches, and the process facts that explain it."""
    w = worlds(setup)
    r = w.c.exec(["landjail", "doctor"], user=user, env=w.env(user))
    print(r.stdout)
    assert r.returncode == 0, r
    out = r.stdout
    assert re.search(r"^protection: +degraded \(level %d\)" % w.level, out, re.M), out
    assert re.search(r"^seccomp \(this process\): filter \(1 filter", out, re.M), out
    assert re.search(r"^pidfd_getfd: +no \(EPERM\)", out, re.M), out
    assert "pidfd_getfd is refused by the seccomp filter above" in out
    assert re.search(r"^container: +docker", out, re.M), out
    nnp = "yes" if setup == "hardened" else "no"
    assert re.search(r"^no_new_privs: +%s$" % nnp, out, re.M), out
    eff = re.search(r"^capabilities effective: (.*)$", out, re.M).group(1)
    bnd = re.search(r"^capabilities bounding: +(.*)$", out, re.M).group(1)
    if setup == "hardened":
        assert (eff, bnd) == ("none", "none"), out
    else:
        # Docker's default set: no sys_ptrace or sys_admin; root keeps it, 65534 has none.
        assert "net_raw" in bnd and "sys_ptrace" not in bnd and "sys_admin" not in bnd, out
        assert eff == (bnd if user == "root" else "none"), out
    if setup == "nolandlock":
        assert re.search(r"^landlock: +no Landlock \(EPERM", out, re.M), out
        assert "Landlock's system calls are refused" in out
    else:
        assert re.search(r"^landlock: +Landlock ABI \d", out, re.M), out


# ---- the functional checks, in one jail -------------------------------------------------------

NODE_FETCH = ("fetch('https://origin.test/path-echo/allowed/node-shim')"
              ".then(r => r.text()).then(t => console.log('node: ' + t))"
              ".catch(e => { console.log('node error: ' + e.cause); process.exit(3); })")


def functional_script(tcp_port: int, udp_port: int) -> str:
    unset = "env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u ALL_PROXY " \
            "-u NODE_USE_ENV_PROXY"
    return "\n".join([
        "#!/bin/sh",
        'echo "@@ allowed $(curl -sS https://origin.test/path-echo/allowed/curl)"',
        'echo "@@ denied $(curl -sS -o /dev/null -w %{http_code} '
        'https://origin.test/path-echo/denied)"',
        "%s/escape-static tcp 127.0.0.1 %d; echo \"@@ direct rc=$?\"" % (OPT, tcp_port),
        "%s/escape-static udp-sendto 127.0.0.1 %d; echo \"@@ udp rc=$?\"" % (OPT, udp_port),
        "%s node -e %s" % (unset, _sh_quote(NODE_FETCH)),
        "exit 7", ""])


def test_jail_in_container(worlds, setup, user):
    """Allow, deny (403, audited), a direct connect refused (connect_denied), UDP refused
    (socket_denied), node's fetch through the shim, and the command's exit status."""
    w = worlds(setup)
    w.origin.clear()
    with w.netns():
        ls = Listeners(None)
        try:
            tcp, udp = ls.tcp("127.0.0.1"), ls.udp("127.0.0.1")
            wd = w.workdir(user)
            r = w.landjail(user, wd, functional_script(tcp.port, udp.port))
            got = {"tcp": tcp.collect(), "udp": udp.collect()}
        finally:
            ls.close_all()
    print(r.stdout, r.stderr)
    assert r.returncode == 7, r
    assert "@@ allowed /path-echo/allowed/curl" in r.stdout, r
    assert "@@ denied 403" in r.stdout, r
    assert "node: /path-echo/allowed/node-shim" in r.stdout, r
    assert got == {"tcp": [], "udp": []}, got
    paths = sorted(x["target"] for x in w.origin.received())
    assert paths == ["/path-echo/allowed/curl", "/path-echo/allowed/node-shim"], paths
    events = w.audit(wd, user)
    http = {(e["decision"], e["http_url"]) for e in events if e["event"] == "http_request"}
    assert http == {("allow", "https://origin.test/path-echo/allowed/curl"),
                    ("deny", "https://origin.test/path-echo/denied"),
                    ("allow", "https://origin.test/path-echo/allowed/node-shim")}, events
    assert any(e["event"] == "connect_denied" and e["destination"] == "127.0.0.1:%d" % tcp.port
               for e in events), events
    assert any(e["event"] == "socket_denied" for e in events), events
    warns = [x for x in r.stderr.splitlines() if "cannot be written" in x]
    if setup == "hardened":
        # a read-only HOME: one message naming the CA directory landjail uses instead
        assert len(warns) == 1 and "/tmp/landjail-ca-" in warns[0], r.stderr
    else:
        assert warns == [], r.stderr


# ---- the escape suite's main attacks ------------------------------------------------------------


class ContainerBatch:
    """The cases' listeners (in the container's network namespace) and the script that runs
    each attacker once, bracketed by @@ begin/end lines (as e2e_support_escape.Batch)."""

    def __init__(self, ls: Listeners, user: str, names: list[str]):
        self.proxy_port, pls = ls.port_shared_by(["127.0.0.2", "127.0.0.3", "127.0.0.4",
                                                  "::1"])
        ctx = Ctx(ls, user, self.proxy_port,
                  dict(zip(["127.0.0.2", "127.0.0.3", "127.0.0.4", "::1"], pls)), [], [])
        self.listener = {}
        lines = ["#!/bin/sh"]
        unset = " ".join("-u %s" % v for v in ("LD_PRELOAD", "HTTP_PROXY", "HTTPS_PROXY",
                                               "http_proxy", "https_proxy", "ALL_PROXY"))
        for name in names:
            case = CASES_BY_NAME[name]
            lst, args = case.make(ctx)
            self.listener[name] = lst
            prog = ("env %s %s/escape-static" % (unset, OPT)) if case.static else \
                OPT + "/escape"
            lines.append('echo "@@ begin %s"; %s %s 2>&1; echo "@@ end %s rc=$?"'
                         % (name, prog, " ".join(_sh_quote(a) for a in args), name))
        self.script = "\n".join(lines) + "\n"

    def collect(self) -> dict:
        return {name: lst.collect() for name, lst in self.listener.items()}


def control_unavailable(user: str) -> set[str]:
    """Cases that cannot escape even without a jail in these containers: raw sockets and IP
    options need CAP_NET_RAW, which root in the container has (Docker's default set) and
    65534 has not. Docker sets ping_group_range to every gid, so ping works for both."""
    return set() if user == "root" else NEEDS_NET_RAW


@pytest.mark.parametrize("where", ["default", "nolandlock"])
def test_escapes_in_container(worlds, where, user):
    """No attacker gets anything out of landjail at levels 2 and 4: nothing reaches a
    listener; the refusals are audited with the attacker's pid."""
    w = worlds(where)
    with w.netns():
        ls = Listeners(None)
        try:
            batch = ContainerBatch(ls, user, ESCAPES)
            wd = w.workdir(user)
            r = w.landjail(user, wd, batch.script, args=["--proxy-port",
                                                         str(batch.proxy_port)])
            got = batch.collect()
        finally:
            ls.close_all()
    print(r.stdout[-6000:], r.stderr[-3000:])
    assert r.returncode == 0, r
    for name in ESCAPES:
        assert "@@ end %s rc=" % name in r.stdout, "case %s did not run:\n%s" % (name, r.stdout)
    escaped = {name: recv for name, recv in got.items() if recv}
    assert escaped == {}, escaped
    kinds = {e["event"] for e in w.audit(wd, user)}
    assert {"connect_denied", "socket_denied"} <= kinds, kinds


def test_escapes_without_the_jail_in_container(worlds, user):
    """The control: the same attackers in the same container, without landjail, do reach
    their listeners (all but what the user cannot do at all: control_unavailable)."""
    w = worlds("default")
    skip = control_unavailable(user)
    with w.netns():
        ls = Listeners(None)
        try:
            batch = ContainerBatch(ls, user, ESCAPES)
            wd = w.workdir(user)
            w.c.write(wd + "/script.sh", batch.script.encode(), 0o755, user)
            r = w.c.exec(["sh", wd + "/script.sh"], user=user, env=w.env(user), workdir=wd)
            got = batch.collect()
        finally:
            ls.close_all()
    missed = sorted(n for n in ESCAPES if n not in skip and not got[n])
    print("cannot escape without a jail here (%s): %s" % (user, sorted(skip)))
    assert missed == [], "these did not reach their listener without the jail: %s\n%s" % (
        missed, r.stdout[-6000:])
