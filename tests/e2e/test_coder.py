# SPDX-License-Identifier: Apache-2.0
"""landjail inside Coder, for real (issue 15): `boundary -- claude -p …` the way Coder's
claude-code module starts it.

landjail is installed under the name `boundary` (real files in a bin directory ahead on PATH,
as `install.sh --as-boundary` makes them) and run with no flags of its own: the policy comes
only from ~/.config/coder_boundary/config.yaml, the rest from the environment Coder's agent
and modules set (CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH, CODER_AGENT_URL,
BOUNDARY_SESSION_CORRELATION_ENABLED). Claude Code's real binary talks to a fake Messages API
served under an AI-Gateway-like path (https://coder.fake.test/api/v2/aibridge/anthropic), and
a fake Coder workspace agent (tests/integration/coder_agent.py) decodes what landjail sends
to its socket with the protobuf runtime. As root and as uid 65534.

Checked by what the agent and the origin received:
- every decided request of the trail reached the agent (allowed ones with their rule, denied
  ones with their full URL and no rule), with the run's session id, `claude` as the confined
  process, and sequence numbers 0..N-1 without a gap, including the last ones before exit;
- Claude Code's denied calls to api.anthropic.com (no rule names that host) arrive with their
  method and full URL (the tunnel is intercepted, nothing is sent upstream);
- the AI-Gateway-like origin received the session id and the sequence number of its request's
  audit event in X-Coder-Agent-Firewall-Session-Id / X-Coder-Agent-Firewall-Sequence-Number.

The names Claude Code calls besides the API are never resolved: no rule allows them, and a
denied tunnel is intercepted without a DNS lookup (LANDJAIL_RESOLVE maps only the gateway).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

from coder_agent import FakeAgent  # noqa: E402
from e2e_support_audit import read_audit  # noqa: E402
from e2e_support_env import (  # noqa: E402
    NOBODY, USERS, as_user, base_env, landjail_path, proxy_path, require_binary)
from e2e_support_origins import SharedDir, make_pki  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402
from test_claude import CLAUDE, PROMPT, make_leaf, pinned_version  # noqa: E402

GATEWAY = "coder.fake.test"
PREFIX = "/api/v2/aibridge/anthropic"
API_KEY = "sk-ant-api03-landjail-e2e-coder-not-a-real-key-0123456789"
REPLY = "Hello from the fake AI Gateway, through boundary (e2e 7c41)"
RULE = "domain=%s path=%s/*" % (GATEWAY, PREFIX)
RUN_TIMEOUT = 120.0


class World:
    pass


@pytest.fixture(scope="module")
def world():
    w = World()
    landjail = require_binary(landjail_path(), "landjail")
    proxy = require_binary(proxy_path(), "landjail-proxy")
    w.shared = SharedDir("lj-e2e-coder.")
    w.pki = make_pki(w.shared.subdir("pki"))
    w.cert, w.key = make_leaf(w.pki.dir, GATEWAY)
    w.path = install_as_boundary(landjail, proxy, w.shared.subdir("install"))
    yield w
    w.shared.cleanup()


def install_as_boundary(landjail: Path, proxy: Path, root: Path) -> Path:
    """The layout `install.sh --as-boundary --boundary-dir ~/.local/bin` makes: PREFIX/bin
    with landjail and landjail-proxy, the shim in PREFIX/lib/landjail, and real copies named
    boundary and agent-firewall in another directory. Returns the PATH to use."""
    prefix_bin, lib, local_bin = root / "prefix" / "bin", root / "prefix" / "lib" / "landjail", \
        root / "local" / "bin"
    for d in (prefix_bin, lib, local_bin):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copy2(landjail, prefix_bin / "landjail")
    shutil.copy2(proxy, prefix_bin / "landjail-proxy")
    shutil.copy2(landjail.parent.parent / "lib" / "liblandjail-shim.so",
                 lib / "liblandjail-shim.so")
    for name in ("boundary", "agent-firewall"):
        shutil.copy2(landjail, local_bin / name)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.chmod(os.path.join(dirpath, n), 0o755)
    return "%s:%s:/usr/local/bin:/usr/bin:/bin" % (local_bin, prefix_bin)


@pytest.fixture
def gateway(world):
    f = FakeAnthropic(str(world.cert), str(world.key), REPLY, prefix=PREFIX)
    yield f
    f.stop()


@pytest.fixture
def agent(world):
    d = world.shared.subdir("agent")
    a = FakeAgent(d / "boundary-audit.sock")
    os.chmod(a.path, 0o777)  # the proxy runs as the user
    yield a
    a.stop()


def workdir_for(world, user: str) -> Path:
    d = world.shared.subdir("run")
    home = d / "home"
    cfg = home / ".config" / "coder_boundary"
    cfg.mkdir(parents=True)
    (cfg / "config.yaml").write_text(
        "# Coder's agent-firewall style config: boundary's keys only, plus the test CA\n"
        "allowlist:\n"
        "  - \"%s\"\n"
        "log_dir: %s\n"
        "log_level: WARN\n"
        "tls:\n"
        "  upstream_ca: %s\n" % (RULE, d / "logs", world.pki.ca_pem))
    ids = (0, 0) if user == "root" else (NOBODY, NOBODY)
    for p in [d, home, home / ".config", cfg, cfg / "config.yaml"]:
        os.chown(p, *ids)
    os.chmod(home, 0o700)
    return d


def run_boundary(world, user, gateway, agent):
    d = workdir_for(world, user)
    env = base_env(d / "home",
                   PATH=world.path,
                   ANTHROPIC_BASE_URL="https://%s%s" % (GATEWAY, PREFIX),
                   ANTHROPIC_API_KEY=API_KEY,
                   CLAUDE_CODE_MAX_RETRIES="0",
                   CODER_AGENT_URL="https://%s/" % GATEWAY,
                   CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH=agent.path,
                   BOUNDARY_SESSION_CORRELATION_ENABLED="true",
                   LANDJAIL_RESOLVE="%s:443:127.0.0.1:%d" % (GATEWAY, gateway.port))
    env.pop("LANDJAIL_PROXY", None)  # the installed copy finds its proxy itself
    argv = as_user(user, ["boundary", "--", str(CLAUDE), "-p", PROMPT])
    p = subprocess.run(argv, env=env, cwd=str(d), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=RUN_TIMEOUT)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    audit = read_audit(d / "logs" / "audit.jsonl")
    return p.returncode, out, err, audit


def decided(audit: list[dict]) -> list[dict]:
    return [x for x in audit if x.get("event") in ("http_request", "connect_denied",
                                                   "socket_denied")]


@pytest.mark.parametrize("user", USERS)
def test_boundary_claude_into_coder(world, gateway, agent, user):
    assert pinned_version()
    rc, out, err, audit = run_boundary(world, user, gateway, agent)
    why = "rc=%d\nstdout: %s\nstderr: %s\naudit:\n%s\nagent: %s %s" % (
        rc, out[-2000:], err[-3000:], "\n".join(json.dumps(x) for x in audit),
        agent.errors, agent.requests)
    print("agent received (seq allowed method url rule):")
    for x in sorted(agent.logs, key=lambda x: x["sequence_number"]):
        print("  %d %s %s %s %s" % (x["sequence_number"], x["allowed"], x["method"], x["url"],
                                    x["matched_rule"]))
    assert rc == 0 and out.strip() == REPLY, why
    events = decided(audit)
    assert events, why
    # Every decided request reached the agent, the last ones too: landjail flushed before
    # it exited (the agent's reader may be a moment behind).
    logs = agent.wait_logs(len(events), timeout=10)
    assert agent.errors == [], why
    assert sorted(x["sequence_number"] for x in logs) == list(range(len(events))), why
    by_seq = {x["sequence_number"]: x for x in logs}
    session = audit[0]["session_id"]
    for e in events:
        log = by_seq[e["sequence_number"]]
        assert log["session_id"] == session and log["confined_process_name"] == "claude", log
        assert log["allowed"] == (e["decision"] == "allow"), (e, log)
        if e["decision"] == "allow":
            assert log["matched_rule"] == e["matched_rule"] == RULE, (e, log)
        else:
            assert log["matched_rule"] == "", (e, log)
        if e["event"] == "http_request" and e["http_method"] != "CONNECT":
            assert log["method"] == e["http_method"], (e, log)
            assert log["url"].split("?")[0] == e["http_url"].split("?")[0], (e, log)
    # The Messages request: allowed, with both correlation headers naming its event.
    msgs = gateway.messages()
    assert len(msgs) == 1, why
    m = msgs[0]
    assert m.headers.get("x-coder-agent-firewall-session-id") == session, m.headers
    seq = int(m.headers.get("x-coder-agent-firewall-sequence-number", "-1"))
    assert by_seq[seq]["allowed"] and by_seq[seq]["method"] == "POST", (seq, by_seq.get(seq))
    assert urllib.parse.urlsplit(by_seq[seq]["url"]).path == PREFIX + "/v1/messages"
    # Claude Code's calls to Anthropic's own services are denied with their full URL (the
    # tunnel was intercepted), never just "CONNECT host:443".
    denied = [x for x in logs if not x["allowed"]]
    assert any(x["url"].startswith("https://api.anthropic.com/") and x["method"] != "CONNECT"
               for x in denied), why
