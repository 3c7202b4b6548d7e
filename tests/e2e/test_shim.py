# SPDX-License-Identifier: Apache-2.0
"""The LD_PRELOAD shim (issue 5): programs that ignore HTTP_PROXY work through the proxy.

Every client runs in the real jail (`landjail --allow domain=origin.test --allow
domain=other.test --resolve NAME:PORT:127.0.0.1:P --upstream-ca TEST_CA -- CLIENT`) against the
local origins of e2e_support_jail (HTTPS on 443 and plain HTTP on 80 for origin.test and
other.test), as root and as uid 65534 (`nobody`), some also as root under outer-seccomp
--pidfd-getfd-eperm (`addfd`: the supervisor's ADDFD fallback). None of the clients reads the
proxy variables, and most runs remove them (`env -u`, or `del os.environ[...]` inside the
program): what connects them is the shim's placeholder addresses and CONNECT tunnels.

- linkage: `ldd` shows only vdso/libc/ld-linux, no libstdc++ symbols, the exported symbols
  are the hooks (nothing named lj_*);
- environment: LD_PRELOAD names the shim first and keeps an existing entry,
  LANDJAIL_SHIM_TABLE names the shared table; --no-shim leaves both out;
- Node 20 fetch (the acceptance command) and its --no-shim control, Node net.connect + TLS,
  Python http.client.HTTPSConnection, `openssl s_client`;
- C clients (tests/e2e/shim_clients/, built into build/tests/e2e/): non-blocking connect +
  poll + SO_ERROR with the socket flags restored, a blocking connect keeping errno, a second
  connect() on the connected socket, 8 threads x 125 connects;
- lookups (lookup_probe, every hooked function): placeholders for names, libc's own answers
  (the same program with --no-shim) for localhost and literals, inet_aton forms included;
  AI_CANONNAME names the name; strings that are not host names are refused;
- Python sockets: AF_INET6 to the v4-mapped placeholder, a socket with a timeout, a literal
  address (tunnelled, refused by the policy), the proxy itself (left alone);
- a denied host: ECONNREFUSED, one stderr line, exactly one deny audit line;
- fork and exec: a name resolved in the parent is connected by a forked child and by an exec'd
  program, a name resolved in a child is connected by the parent;
- UDP (the shim preloaded by hand outside the jail, as seccomp refuses UDP sockets in it):
  sendto/connect/sendmsg to a non-loopback address fail with EACCES and one line each;
  loopback UDP still works.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import (  # noqa: E402
    PYTHON, SETPRIV, base_env, e2e_bin_dir, landjail_path, require_binary)
from e2e_support_origins import origin_world, write_scripts  # noqa: E402
from e2e_support_jail import Jail  # noqa: E402

HELLO = "hello from origin"  # tests/integration/origin.py answers GET / with it
ALLOW = ("domain=origin.test", "domain=other.test")
PLACEHOLDERS = ipaddress.ip_network("198.18.0.0/15")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
              "all_proxy")
UNSET_PROXY = ["env"] + [a for v in PROXY_VARS for a in ("-u", v)]
NODE_FETCH = "fetch('https://origin.test/').then(r=>r.text()).then(console.log)"
REFUSED_LINE = re.compile(r"^landjail: CONNECT (\S+) refused by the proxy: (\d{3})\b.*$", re.M)
USERS = ("root", "nobody")
RUNNERS = ("root", "nobody", "addfd")
HOOKS = {"connect", "getaddrinfo", "gethostbyname", "gethostbyname2", "gethostbyname_r",
         "gethostbyname2_r", "sendto", "sendmsg", "freeaddrinfo", "getnameinfo"}
REQUIRED_HOOKS = HOOKS - {"freeaddrinfo", "getnameinfo"}

# ---- scripts the jailed programs run ---------------------------------------------------------

# Node: net.connect to origin.test:443, then TLS over that socket, then a GET.
NODE_NET_TLS = r'''
"use strict";
const net = require("net"), tls = require("tls");
const out = {};
const done = (code) => { console.log(JSON.stringify(out)); process.exit(code); };
setTimeout(() => { out.error = "timeout"; done(1); }, 30000).unref();
const sock = net.connect({host: "origin.test", port: 443}, () => {
  out.remote = sock.remoteAddress;
  const t = tls.connect({socket: sock, servername: "origin.test"}, () => {
    out.authorized = t.authorized;
    t.write("GET / HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");
  });
  let data = "";
  t.setEncoding("utf8");
  t.on("data", (d) => { data += d; });
  t.on("close", () => { out.data = data; done(0); });
  t.on("error", (e) => { out.error = String(e); out.data = data; done(1); });
});
sock.on("lookup", (err, address) => { out.looked_up = address; });
sock.on("error", (e) => { out.error = String(e); out.code = e.code; done(1); });
'''

# Python http.client, the proxy variables deleted inside the program first: the shim read
# them when it was loaded.
PY_HTTP_CLIENT = r'''
import http.client, json, os
for k in [k for k in os.environ if k.lower().endswith("_proxy")]:
    del os.environ[k]
c = http.client.HTTPSConnection("origin.test", timeout=30)
c.request("GET", "/")
r = c.getresponse()
print(json.dumps({"status": r.status, "body": r.read().decode(errors="replace"),
                  "env": sorted(k for k in os.environ if "proxy" in k.lower()),
                  "peer": c.sock.getpeername()[0] if c.sock else None}))
'''

# Python sockets: the placeholder over an AF_INET6 socket (v4-mapped), a timeout (CPython's
# non-blocking connect + poll + SO_ERROR), a literal address (CONNECT 127.0.0.1:P, which no
# rule allows), and the proxy itself (passed through untouched: a hand-made CONNECT works).
PY_SOCKETS = r'''
import errno, fcntl, json, os, socket, sys, urllib.parse
http_port = int(sys.argv[1])
proxy = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
out = {}

def http_get(s, host):
    s.sendall(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            return data.decode(errors="replace")
        data += d

def attempt(name, fn):
    try:
        out[name] = fn()
    except OSError as e:
        out[name] = {"errno": errno.errorcode.get(e.errno, str(e.errno)), "error": str(e)}

def v6():
    ai = socket.getaddrinfo("origin.test", 80, socket.AF_INET6, socket.SOCK_STREAM, 0,
                            socket.AI_V4MAPPED)
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.connect(ai[0][4])
        return {"addr": ai[0][4][0], "response": http_get(s, "origin.test")}

def timeout():
    with socket.create_connection(("origin.test", 80), timeout=20) as s:
        # CPython keeps a socket with a timeout O_NONBLOCK and waits with poll
        return {"o_nonblock": bool(fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK),
                "response": http_get(s, "origin.test")}

def literal():
    with socket.create_connection(("127.0.0.1", http_port)) as s:
        return {"response": http_get(s, "origin.test")}

def the_proxy():
    with socket.create_connection((proxy.hostname, proxy.port)) as s:
        s.sendall(b"CONNECT origin.test:80 HTTP/1.1\r\nHost: origin.test:80\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(1)
            if not d:
                break
            head += d
        return {"reply": head.decode(errors="replace").split("\r\n")[0],
                "response": http_get(s, "origin.test")}

attempt("v6", v6)
attempt("timeout", timeout)
attempt("literal", literal)
attempt("proxy", the_proxy)
print(json.dumps(out))
'''

# A denied host: the client sees ECONNREFUSED.
PY_DENIED = r'''
import errno, json, socket
out = {}
try:
    socket.create_connection(("evil.test", 443), timeout=30).close()
    out["result"] = "connected"
except OSError as e:
    out["result"] = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps(out))
'''

# Names that are not host names: libc's resolver refuses them; so must the shim (it would
# put them on the CONNECT request line).
PY_BAD_NAMES = r'''
import json, socket
out = {}
for n in ["bad name.test", "evil.test\r\nX-Injected: 1", "tab\tname.test"]:
    try:
        out[n] = socket.getaddrinfo(n, 443, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror as e:
        out[n] = "gaierror"
print(json.dumps(out))
'''

# fork and exec: the table is shared by the whole jail.
PY_FORK = r'''
import ipaddress, json, os, socket, ssl, subprocess, sys

def get(addr, sni):
    ctx = ssl.create_default_context()
    data = b""
    with socket.create_connection(addr, timeout=30) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            t.sendall(b"GET / HTTP/1.1\r\nHost: " + sni.encode() + b"\r\nConnection: close\r\n\r\n")
            try:
                while True:
                    d = t.recv(65536)
                    if not d:
                        break
                    data += d
            except ssl.SSLEOFError:
                pass
    return data.decode(errors="replace")

def in_child(fn):
    """Runs fn() in a forked child; returns what it printed (JSON) to the pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            res = fn()
        except Exception as e:
            res = {"error": "%s: %s" % (type(e).__name__, e)}
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        d = os.read(r, 65536)
        if not d:
            break
        data += d
    os.waitpid(pid, 0)
    return json.loads(data)

if sys.argv[1:2] == ["exec"]:
    # 3b. the exec'd program: the parent's placeholder, and a lookup of its own
    print(json.dumps({"response": get((sys.argv[2], 443), "origin.test"),
                      "other": socket.getaddrinfo("other.test", 443, socket.AF_INET,
                                                  socket.SOCK_STREAM)[0][4][0]}))
    sys.exit(0)

out = {}
# 1. resolved in the parent, connected by a forked child
a = socket.getaddrinfo("origin.test", 443, socket.AF_INET, socket.SOCK_STREAM)[0][4]
out["parent_addr"] = a[0]
out["child_get"] = in_child(lambda: {"response": get(a, "origin.test")})
# 2. resolved in a forked child (a name the parent never looked up), connected by the parent
c = in_child(lambda: {"addr": socket.getaddrinfo("other.test", 443, socket.AF_INET,
                                                 socket.SOCK_STREAM)[0][4][0]})
out["child_addr"] = c
try:
    out["parent_get"] = {"response": get((c["addr"], 443), "other.test")}
except Exception as e:
    out["parent_get"] = {"error": "%s: %s" % (type(e).__name__, e)}
# 3. an exec'd program connects the parent's placeholder and resolves other.test itself
p = subprocess.run([sys.executable, __file__, "exec", a[0]], capture_output=True, text=True,
                   timeout=60)
out["exec"] = {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr[-2000:]}
print(json.dumps(out))
'''

# UDP, the shim preloaded by hand (no jail: the jail's seccomp filter refuses UDP sockets).
PY_UDP = r'''
import errno, json, socket
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 0))
r.settimeout(5)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
attempt("sendto", lambda: s.sendto(b"x", ("192.0.2.1", 53)))
attempt("sendmsg", lambda: s.sendmsg([b"x"], [], 0, ("192.0.2.1", 53)))
attempt("sendto6", lambda: s6.sendto(b"x", ("2001:db8::1", 53)))
attempt("connect", lambda: s.connect(("192.0.2.1", 53)))
attempt("loopback", lambda: s.sendto(b"loopback datagram", r.getsockname()))
try:
    out["received"] = r.recv(100).decode()
except OSError as e:
    out["received"] = str(e)
print(json.dumps(out))
'''

SH_ENV = 'printf "%s\\n" "LD_PRELOAD=$LD_PRELOAD" "LANDJAIL_SHIM_TABLE=$LANDJAIL_SHIM_TABLE"; ' \
         'if [ -n "$LANDJAIL_SHIM_TABLE" ] && [ -r "$LANDJAIL_SHIM_TABLE" ] && ' \
         '[ -w "$LANDJAIL_SHIM_TABLE" ]; then echo table=rw; else echo table=missing; fi'

OPENSSL_GET = ('printf "GET / HTTP/1.1\\r\\nHost: origin.test\\r\\nConnection: close\\r\\n\\r\\n" '
               '| timeout 30 openssl s_client -connect origin.test:443 -servername origin.test '
               '-quiet -verify_return_error -CAfile "$SSL_CERT_FILE"')


# ---- fixtures and helpers --------------------------------------------------------------------


def shim_path() -> Path:
    env = os.environ.get("LANDJAIL_SHIM")
    if env:
        return Path(env).resolve()
    return landjail_path().parent.parent / "lib" / "liblandjail-shim.so"


def require_shim() -> Path:
    p = shim_path()
    if p.is_file():
        return p
    msg = "the shim is not built at %s (make shim)" % p
    if os.environ.get("LANDJAIL_REQUIRE_PROXY") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def client_bin(name: str) -> str:
    return str(require_binary(e2e_bin_dir() / name, name + " (tests/e2e/shim_clients)"))


def node() -> str:
    n = shutil.which("node")
    if n is None:
        pytest.fail("node not found (Debian package: nodejs)")
    return n


class Env:
    pass


@pytest.fixture(scope="module")
def env():
    with origin_world("lj-e2e-shim.") as (shared, pki, origins):
        e = Env()
        e.shared, e.pki, e.origins = shared, pki, origins
        e.scripts = write_scripts(shared.subdir("scripts"), {
            "node_net_tls.js": NODE_NET_TLS,
            "http_client.py": PY_HTTP_CLIENT,
            "sockets.py": PY_SOCKETS,
            "denied.py": PY_DENIED,
            "fork.py": PY_FORK,
            "udp.py": PY_UDP,
            "bad_names.py": PY_BAD_NAMES})
        yield e


def run(e: Env, runner: str, command: list[str], allow=ALLOW, args=(), **kw):
    """landjail around command as runner (root, nobody, or root with the ADDFD fallback);
    kw: Jail.run's (env= is landjail's own environment)."""
    require_shim()
    jail = Jail(require_binary(landjail_path(), "landjail"), e.shared, e.pki, e.origins)
    if runner == "addfd":
        outer = require_binary(e2e_bin_dir() / "outer-seccomp", "outer-seccomp")
        r = jail.run(command, allow=allow, args=args,
                     wrapper=[str(outer), "--pidfd-getfd-eperm", "--"], **kw)
        assert "ADDFD" in r.stderr, r
        return r
    return jail.run(command, user=runner, allow=allow, args=args, **kw)


def last_json(r):
    lines = [x for x in r.stdout.strip().splitlines() if x.startswith("{")]
    assert lines, r
    return json.loads(lines[-1])


def is_placeholder(addr: str) -> bool:
    a = ipaddress.ip_address(addr)
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    return isinstance(a, ipaddress.IPv4Address) and a in PLACEHOLDERS


def http_events(r) -> list[dict]:
    return [x for x in r.audit() if x.get("event") == "http_request"
            and not (x.get("http_method") == "CONNECT" and x.get("decision") == "allow")]


def refused_lines(r) -> list[tuple[str, str]]:
    return REFUSED_LINE.findall(r.stderr)


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
