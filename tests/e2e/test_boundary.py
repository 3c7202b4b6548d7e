# SPDX-License-Identifier: Apache-2.0
"""coder/boundary drop-in (issue 6, item 4): a boundary `config.yaml`, unchanged, runs a jail.

The config is the one boundary documents: jail_type, log_dir, proxy_port, log_level and an
allowlist of `key=value` rules, plus the boundary keys landjail accepts without effect
(no_user_namespace, use_real_dns, pprof_*). It is found the two ways boundary finds it:
~/.config/coder_boundary/config.yaml and $BOUNDARY_CONFIG, and the jail runs with no landjail
flag but the test's name mapping (--resolve, --upstream-ca, --ca-dir). For each, as root and
as uid 65534, curl inside the jail:
  - gets the allowed URL's body from the origin (judged by what the origin received);
  - gets 403 for a path the rules do not name, which never reaches the origin;
  - talks to the proxy on `proxy_port` (HTTPS_PROXY names it);
and the audit trail is in `log_dir`/audit.jsonl. `jail_type: nsjail` prints one warning and
runs landjail's jail; BOUNDARY_ALLOW adds a rule as boundary's --allow variable does.
The keys newer boundary releases add (upstream_proxy, log_proxy_socket_path, session
correlation), at their defaults, load silently.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support_env import landjail_path  # noqa: E402
from e2e_support_origins import origin_world  # noqa: E402
from e2e_support_audit import check_decision, http_events, read_audit  # noqa: E402
from e2e_support_jail import Jail  # noqa: E402

USERS = ("root", "nobody")
ALLOWED = "https://origin.test/path-echo/allowed/boundary"
DENIED = "https://origin.test/path-echo/secret"
OTHER = "https://other.test/path-echo/via-boundary-allow"
ALLOW_RULE = "domain=origin.test method=GET path=/path-echo/allowed/*"

# Prints the proxy URL the jail gave, then "got URL STATUS BODY" per URL, the body on one line.
CLIENT = r'''
echo "proxy=$HTTPS_PROXY"
for url in "$@"; do
    code=$(curl -sS --max-time 20 -o "$HOME/body" -w '%{http_code}' "$url" 2>/dev/null)
    echo "got $url $code $(tr '\n' ' ' <"$HOME/body" 2>/dev/null | sed 's/ *$//')"
    rm -f "$HOME/body"
done
'''


@pytest.fixture(scope="module")
def world():
    with origin_world("lj-boundary-") as w:
        yield w


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What newer boundary releases add to their config.yaml, at boundary's defaults.
NEWER_KEYS = textwrap.dedent("""\
    upstream_proxy: ""
    log_proxy_socket_path: ""
    disable_audit_logs: false
    session_correlation_enabled: false
    session_id_inject_targets: []
    """)


def boundary_config(log_dir, port: int, jail_type: str, extra: str = "") -> str:
    return extra + textwrap.dedent("""\
        # boundary's config.yaml, as boundary reads it
        jail_type: %s
        log_dir: %s
        proxy_port: %d
        log_level: warn
        no_user_namespace: false
        use_real_dns: false
        pprof_enabled: false
        pprof_port: 6060
        allowlist:
          - "%s"
          - "method=GET,HEAD domain=example.com"
        """) % (jail_type, log_dir, port, ALLOW_RULE)


def run_boundary(world, user: str, how: str, jail_type: str, extra_env=None, extra=""):
    shared, pki, origins = world
    jail = Jail(landjail_path(), shared, pki, origins)
    workdir = shared.subdir("run")
    log_dir = workdir / "logs"  # boundary's log_dir need not exist yet
    port = free_port()
    text = boundary_config(log_dir, port, jail_type, extra)
    env = dict(extra_env or {})
    if how == "home":
        cfg_dir = workdir / "home" / ".config" / "coder_boundary"
        cfg_dir.mkdir(parents=True)
        (cfg_dir / "config.yaml").write_text(text)
        for d in (workdir / "home", workdir / "home" / ".config", cfg_dir):
            os.chmod(d, 0o777)
    else:
        (workdir / "boundary.yaml").write_text(text)
        env["BOUNDARY_CONFIG"] = str(workdir / "boundary.yaml")
    urls = [ALLOWED, DENIED, OTHER]
    run = jail.run(["sh", "-c", CLIENT, "client"] + urls, user=user, allow=(), audit=False,
                   env=env, workdir=workdir)
    return run, port, log_dir


def lines_of(run) -> dict:
    """{url: (status, body)} and the proxy URL from the client's output."""
    got = {}
    for line in run.stdout.splitlines():
        if line.startswith("got "):
            _, url, status, body = (line + " ").split(" ", 3)
            got[url] = (status, body.strip())
    proxy = next((x[len("proxy="):] for x in run.stdout.splitlines()
                  if x.startswith("proxy=")), None)
    return {"urls": got, "proxy": proxy}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("how,extra", [("home", ""), ("BOUNDARY_CONFIG", ""),
                                       ("home", NEWER_KEYS)],
                         ids=["home", "BOUNDARY_CONFIG", "home-newer-keys"])
def test_boundary_config_runs_unchanged(world, user, how, extra):
    _, _, origins = world
    run, port, log_dir = run_boundary(world, user, how, "landjail", extra=extra)
    assert run.rc == 0, run
    out = lines_of(run)
    assert out["proxy"] == "http://127.0.0.1:%d" % port, run
    status, body = out["urls"][ALLOWED]
    assert (status, body) == ("200", "/path-echo/allowed/boundary"), run
    status, body = out["urls"][DENIED]
    assert status == "403" and "--allow" in body, run
    assert origins.received("/path-echo/secret") == [], "a denied request reached the origin"
    assert origins.received("/path-echo/allowed/boundary"), "the allowed request never arrived"
    # other.test is named by no rule: its CONNECT is refused (curl prints no body).
    assert out["urls"][OTHER][0] in ("000", "403"), run
    audit = read_audit(log_dir / "audit.jsonl")
    events = http_events(audit)
    check_decision(events, "allow", "GET", ALLOW_RULE, url=ALLOWED)
    check_decision(events, "deny", "GET", None, url=DENIED)
    assert "warning" not in run.stderr, run


@pytest.mark.parametrize("user", USERS)
def test_nsjail_warns_and_runs_landjail(world, user):
    run, port, log_dir = run_boundary(world, user, "BOUNDARY_CONFIG", "nsjail",
                                      extra_env={"BOUNDARY_ALLOW": "domain=other.test"})
    assert run.rc == 0, run
    warnings = [x for x in run.stderr.splitlines() if "nsjail" in x]
    assert len(warnings) == 1 and "landjail" in warnings[0], run
    out = lines_of(run)
    assert out["urls"][ALLOWED][0] == "200", run
    # BOUNDARY_ALLOW added domain=other.test, so that request now goes through.
    assert out["urls"][OTHER] == ("200", "/path-echo/via-boundary-allow"), run
    events = http_events(read_audit(log_dir / "audit.jsonl"))
    check_decision(events, "allow", "GET", "domain=other.test", url=OTHER)


def test_check_reads_boundary_config(world, tmp_path):
    """`landjail check` shows where each boundary setting came from."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(boundary_config(tmp_path / "logs", 18080, "nsjail"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "BOUNDARY_CONFIG": str(cfg)}
    p = subprocess.run([str(landjail_path()), "check"], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "[BOUNDARY_CONFIG]" in p.stdout
    assert "18080" in p.stdout and "logs/audit.jsonl" in p.stdout, p.stdout
    assert ALLOW_RULE in p.stdout
    assert "config.yaml:12:5]" in p.stdout, p.stdout  # the rule's line:column
    assert "nsjail" in p.stderr
