# SPDX-License-Identifier: Apache-2.0
"""Real clients through the jail (issue 4, item 8): curl, Python's urllib and requests,
`git clone` over HTTPS, and Node's https.get with a CONNECT agent built from HTTPS_PROXY.

Each client runs as `landjail --allow RULE --resolve NAME:443:127.0.0.1:PORT --upstream-ca
TEST_CA -- CLIENT …`, as root and as uid 65534, and as root on an imitated Docker host where
pidfd_getfd is refused (tests/e2e's outer-seccomp: the supervisor's ADDFD fallback), with
nothing but what the jail puts in its environment (HTTPS_PROXY, the CA bundle with the jail's
CA). For every client:
  - an allowed request reaches the origin and its body comes back intact;
  - a request the rules do not name (another path) is answered 403 by the proxy and never
    reaches the origin;
  - a host no rule names (evil.test): its tunnel is intercepted (tls.intercept_denied, issue
    15) and the request inside answered 403, audited with its full URL;
  - the audit log (--audit-log, JSON lines, DESIGN §6) has exactly those three decisions with
    decision, http_method, http_url and matched_rule.
The `control` runs give the same client the same environment pointing at a standalone
landjail-proxy, without the jail: they prove the client scripts, the git server and the
expectations, so that a failure of a `jail-*` run is the jail's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import (  # noqa: E402
    PYTHON, e2e_bin_dir, landjail_path, proxy_path, require_binary)
from e2e_support_origins import Origins, SharedDir, ca_bundle, make_pki, write_scripts  # noqa: E402
from e2e_support_audit import check_decision, http_events, read_audit  # noqa: E402
from e2e_support_jail import Jail  # noqa: E402
from e2e_support_proxy import StandaloneProxy  # noqa: E402
from gitserver import GitServer, make_bare_repo  # noqa: E402

# jail-addfd: root, under tests/e2e's outer-seccomp --pidfd-getfd-eperm (Docker's default profile
# without CAP_SYS_PTRACE): the supervisor falls back to connecting and installing with ADDFD.
RUNNERS = ("jail-root", "jail-nobody", "jail-addfd", "control")
ORIGIN_RULE = "domain=origin.test method=GET path=/path-echo/allowed/*"
GIT_RULE = "domain=git.test path=/repo.git/*"
REPO_FILES = {"README.md": "landjail e2e: cloned through the jail\n",
              "src/hello.txt": "hello from git.test\n"}
CLIENT_TIMEOUT = 30

# ---- the clients, as scripts the jailed process runs ---------------------------------------

# Each prints one JSON list: per URL {"url", "status", "body"} or {"url", "error"}.
URLLIB_SCRIPT = r'''
import json, sys, urllib.error, urllib.request
out = []
for url in sys.argv[1:]:
    r = {"url": url}
    try:
        with urllib.request.urlopen(url, timeout=%d) as resp:
            r["status"], r["body"] = resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        r["status"], r["body"] = e.code, e.read().decode(errors="replace")
    except Exception as e:
        r["error"] = "%%s: %%s" %% (type(e).__name__, e)
    out.append(r)
print(json.dumps(out))
''' % CLIENT_TIMEOUT

REQUESTS_SCRIPT = r'''
import json, sys, requests
out = []
for url in sys.argv[1:]:
    r = {"url": url}
    try:
        resp = requests.get(url, timeout=%d)
        r["status"], r["body"] = resp.status_code, resp.text
    except requests.RequestException as e:
        r["error"] = "%%s: %%s" %% (type(e).__name__, e)
    out.append(r)
print(json.dumps(out))
''' % CLIENT_TIMEOUT

# Node 20 ignores HTTP(S)_PROXY, so the script builds an agent from HTTPS_PROXY: a CONNECT
# request to the proxy (http.request, method CONNECT), then TLS over the tunnel's socket; the
# jail's CA comes from NODE_EXTRA_CA_CERTS, which Node reads at start-up.
NODE_SCRIPT = r'''
"use strict";
const http = require("http"), https = require("https"), tls = require("tls");
const proxy = new URL(process.env.HTTPS_PROXY);

class ConnectAgent extends https.Agent {
  createConnection(options, callback) {
    const target = `${options.host}:${options.port}`;
    const req = http.request({host: proxy.hostname, port: proxy.port, method: "CONNECT",
                              path: target, headers: {Host: target}});
    req.on("connect", (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        callback(new Error(`CONNECT ${target} answered ${res.statusCode}`));
        return;
      }
      callback(null, tls.connect({socket, servername: options.servername || options.host}));
    });
    req.on("error", callback);
    req.end();
  }
}

function get(url) {
  return new Promise((resolve) => {
    const req = https.get(url, {agent: new ConnectAgent({keepAlive: false})}, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { body += d; });
      res.on("end", () => resolve({url, status: res.statusCode, body}));
    });
    req.setTimeout(%d000, () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve({url, error: String(e.message)}));
  });
}

(async () => {
  const out = [];
  for (const url of process.argv.slice(2)) out.push(await get(url));
  console.log(JSON.stringify(out));
})();
''' % CLIENT_TIMEOUT

# curl: one line per URL after the body: "@@ HTTP_CODE CONNECT_CODE rc=N".
CURL_SCRIPT = r'''
for u; do
    curl -sS --max-time %d -w '\n@@ %%{http_code} %%{http_connect} ' "$u"
    echo "rc=$?"
done
''' % CLIENT_TIMEOUT

GIT_SCRIPT = r'''
git clone -q https://git.test/repo.git allowed-clone; echo "allowed rc=$?"
git clone -q https://git.test/secret.git denied-clone; echo "denied rc=$?"
'''


# ---- fixtures ------------------------------------------------------------------------------


class Env:
    pass


@pytest.fixture(scope="module")
def env():
    """The module's origins (HTTPS origin, git server), the test PKI and scripts, all in a
    directory uid 65534 can read."""
    shared = SharedDir("lj-e2e-clients.")
    e = Env()
    e.shared = shared
    e.pki = make_pki(shared.subdir("pki"))
    git_root = shared.subdir("git")
    e.commit = make_bare_repo(str(git_root), "repo", REPO_FILES)
    make_bare_repo(str(git_root), "secret", {"secret.txt": "must not leave\n"})
    e.git = GitServer(str(git_root), str(e.pki.cert), str(e.pki.key))
    e.origins = Origins(e.pki, git=e.git)
    e.scripts = write_scripts(shared.subdir("scripts"), {
        "client_urllib.py": URLLIB_SCRIPT,
        "client_requests.py": REQUESTS_SCRIPT,
        "https_get.js": NODE_SCRIPT,
        "curl.sh": CURL_SCRIPT,
        "git.sh": GIT_SCRIPT})
    yield e
    e.origins.stop()
    shared.cleanup()


class Outcome:
    """What one client run produced: rc, stdout, stderr, the audit lines, the run directory."""

    def __init__(self, rc, stdout, stderr, audit, workdir, argv):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.audit, self.workdir, self.argv = audit, workdir, argv

    def __repr__(self):
        return "Outcome(rc=%r, argv=%r,\nstdout=%s\nstderr=%s\naudit=%s)" % (
            self.rc, self.argv, self.stdout[-3000:], self.stderr[-3000:],
            "\n".join(json.dumps(x) for x in self.audit))


def run_client(env: Env, runner: str, command: list[str], allow: list[str]) -> Outcome:
    """Runs command under `runner`: the jail as root or as uid 65534, the jail as root under
    outer-seccomp --pidfd-getfd-eperm (jail-addfd), or (control) directly as root with the
    jail's environment pointed at a standalone landjail-proxy."""
    if runner.startswith("jail-"):
        jail = Jail(require_binary(landjail_path(), "landjail"), env.shared, env.pki, env.origins)
        if runner == "jail-addfd":
            outer = require_binary(e2e_bin_dir() / "outer-seccomp", "outer-seccomp")
            # The degraded-protection lines are info (issue 15): asked for, to check the level.
            r = jail.run(command, allow=allow, args=["--log-level", "info"],
                         wrapper=[str(outer), "--pidfd-getfd-eperm", "--"])
            # landjail names the lost layer, and keeps going with ADDFD.
            assert "degraded (level 2)" in r.stderr and "ADDFD" in r.stderr, r
        else:
            r = jail.run(command, user=runner[len("jail-"):], allow=allow)
        return Outcome(r.rc, r.stdout, r.stderr, r.audit(), r.workdir, r.argv)
    workdir = env.shared.subdir("control")
    proxy = StandaloneProxy(require_binary(proxy_path(), "landjail-proxy"), workdir,
                            sum((["--allow", a] for a in allow), []) + env.origins.resolve_args()
                            + ["--upstream-ca", str(env.pki.ca_pem)])
    try:
        bundle = ca_bundle(workdir / "bundle.pem", proxy.ca_pem)
        p = subprocess.run(command, env=proxy.client_env(workdir / "home", bundle),
                           cwd=str(workdir), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=120)
    finally:
        proxy.stop()
    return Outcome(p.returncode, p.stdout.decode(errors="replace"),
                   p.stderr.decode(errors="replace"), read_audit(proxy.audit_path), workdir,
                   command)


def urls(tag: str) -> tuple[str, str, str]:
    """(allowed, denied by path, denied host) for one client run."""
    return ("https://origin.test/path-echo/allowed/" + tag,
            "https://origin.test/inspect/" + tag,
            "https://evil.test/steal/" + tag)


def check_origin_and_audit(env: Env, out: Outcome, tag: str):
    """The origin got the allowed request and not the denied one; the audit has exactly the
    three decisions."""
    allowed, denied, evil = urls(tag)
    assert len(env.origins.received("/path-echo/allowed/" + tag)) == 1, out
    assert env.origins.received("/inspect/" + tag) == [], "a denied request reached the origin"
    lines = http_events(out.audit)
    check_decision(lines, "allow", "GET", ORIGIN_RULE, url=allowed)
    check_decision(lines, "deny", "GET", None, url=denied)
    check_decision(lines, "deny", "GET", None, url=evil)
    assert len(lines) == 3, out


def check_json_results(out: Outcome, tag: str, evil_error: str):
    """The JSON list a script client printed: 200 with the echoed path, 403 from the proxy
    naming the request, and 403 from the proxy for evil.test, inside its intercepted tunnel
    (before issue 15: an error containing evil_error, the CONNECT's refusal)."""
    assert out.rc == 0, out
    got = json.loads(out.stdout.strip().splitlines()[-1])
    allowed, denied, evil = got
    assert allowed.get("status") == 200, out
    assert allowed["body"] == "/path-echo/allowed/" + tag, out
    assert denied.get("status") == 403, out
    assert "GET" in denied["body"] and "/inspect/" + tag in denied["body"], out
    assert evil.get("status") == 403, (evil_error, out)
    assert "evil.test" in evil["body"], out


# ---- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("runner", RUNNERS)
def test_curl(env, runner):
    """curl, using only the jail's HTTPS_PROXY and CURL_CA_BUNDLE: allowed GET intercepted and
    answered by the origin, another path 403 from the proxy, evil.test 403 inside its tunnel."""
    tag = "curl-" + runner
    out = run_client(env, runner, ["sh", env.scripts["curl.sh"], *urls(tag)],
                     [ORIGIN_RULE])
    assert out.rc == 0, out
    results = re.findall(r"(.*?)\n@@ (\d+) (\d+) rc=(\d+)\n", out.stdout, re.S)
    assert len(results) == 3, out
    (body1, code1, conn1, rc1), (body2, code2, _, rc2), (body3, code3, conn3, rc3) = results
    assert (rc1, code1, conn1) == ("0", "200", "200") and body1 == "/path-echo/allowed/" + tag, out
    assert (rc2, code2) == ("0", "403") and "/inspect/" + tag in body2, out
    assert (rc3, code3, conn3) == ("0", "403", "200") and "evil.test" in body3, out
    check_origin_and_audit(env, out, tag)


@pytest.mark.parametrize("runner", RUNNERS)
def test_python_urllib(env, runner):
    """Python's urllib (proxy from HTTPS_PROXY, CA bundle from SSL_CERT_FILE)."""
    tag = "urllib-" + runner
    out = run_client(env, runner, [PYTHON, env.scripts["client_urllib.py"], *urls(tag)],
                     [ORIGIN_RULE])
    check_json_results(out, tag, "403")
    check_origin_and_audit(env, out, tag)


@pytest.mark.parametrize("runner", RUNNERS)
def test_python_requests(env, runner):
    """requests (proxy from HTTPS_PROXY, CA bundle from REQUESTS_CA_BUNDLE)."""
    tag = "requests-" + runner
    out = run_client(env, runner, [PYTHON, env.scripts["client_requests.py"], *urls(tag)],
                     [ORIGIN_RULE])
    check_json_results(out, tag, "403")
    check_origin_and_audit(env, out, tag)


@pytest.mark.parametrize("runner", RUNNERS)
def test_node_https_get(env, runner):
    """Node's https.get with a CONNECT agent built from HTTPS_PROXY, trusting the jail's CA
    through NODE_EXTRA_CA_CERTS."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found (Debian package: nodejs)")
    tag = "node-" + runner
    out = run_client(env, runner, [node, env.scripts["https_get.js"], *urls(tag)],
                     [ORIGIN_RULE])
    check_json_results(out, tag, "answered 403")
    check_origin_and_audit(env, out, tag)


@pytest.mark.parametrize("runner", RUNNERS)
def test_git_clone(env, runner):
    """`git clone https://git.test/repo.git` through the jail (smart HTTP: GET info/refs, POST
    git-upload-pack) gets the commit and its files; cloning secret.git, which no rule names,
    fails with 403 and the server never sees it."""
    env.git.clear()
    out = run_client(env, runner, ["sh", env.scripts["git.sh"]], [GIT_RULE])
    assert out.rc == 0, out
    assert "allowed rc=0" in out.stdout, out
    assert re.search(r"denied rc=(?!0)\d+", out.stdout), out
    assert "403" in out.stderr, out
    clone = out.workdir / "allowed-clone"
    for rel, text in REPO_FILES.items():
        assert (clone / rel).read_text() == text, out
    head = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(clone), "rev-parse",
                           "HEAD"], capture_output=True, text=True)
    assert head.stdout.strip() == env.commit, (head, out)
    assert not (out.workdir / "denied-clone").exists(), out
    # The server: the clone's requests, nothing for secret.git.
    assert env.git.received("/repo.git/info/refs"), env.git.received()
    assert env.git.received("/repo.git/git-upload-pack"), env.git.received()
    assert env.git.received("/secret.git") == [], env.git.received()
    lines = http_events(out.audit)
    check_git_audit(lines, out)


def check_git_audit(lines: list[dict], out: Outcome):
    def pick(decision, method, fragment):
        return [x for x in lines if x.get("decision") == decision
                and x.get("http_method") == method and fragment in str(x.get("http_url"))]

    refs = pick("allow", "GET", "https://git.test/repo.git/info/refs")
    packs = pick("allow", "POST", "https://git.test/repo.git/git-upload-pack")
    denied = pick("deny", "GET", "https://git.test/secret.git/info/refs")
    assert len(refs) == 1 and packs and len(denied) == 1, out
    assert all(x["matched_rule"] == GIT_RULE for x in refs + packs), out
    assert denied[0]["matched_rule"] is None, out
    assert packs[0]["http_url"] == "https://git.test/repo.git/git-upload-pack", out
    assert len(lines) == len(refs) + len(packs) + len(denied), out
