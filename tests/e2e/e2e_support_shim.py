# SPDX-License-Identifier: Apache-2.0
"""Support for the LD_PRELOAD shim's e2e tests (test_shim_*.py): the programs the jailed
clients run (Node, Python, shell), the `env` fixture (origins, PKI and those scripts, once per
test module), `run` (landjail around a command as root, nobody or root with the ADDFD
fallback) and the checks on its output (placeholder addresses, http_request events, the
shim's refusal lines).

None of the clients reads the proxy variables, and most runs remove them (`env -u`, or `del
os.environ[...]` inside the program): what connects them is the shim's placeholder addresses
and CONNECT tunnels.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import (e2e_bin_dir, landjail_path, require_binary)  # noqa: E402
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
        # The degraded-protection lines are info (issue 15): asked for, to check the level.
        r = jail.run(command, allow=allow, args=["--log-level", "info", *args],
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
