"""The Coder audit sink (issue 15 item 1): landjail-proxy forwards every decided request to the
Coder workspace agent's unix socket in boundary's framing, and a fake agent (coder_agent.py)
decodes what it received with the protobuf runtime. Judged by what the agent received."""

from __future__ import annotations

import http.client
import os
import signal
import time
import uuid

import pytest

from coder_agent import MAX_PAYLOAD, FakeAgent

ALLOW = "domain=origin.test path=/path-echo/*"
SESSION = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def request(p, method: str, url: str, host: str = "origin.test") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
    try:
        conn.request(method, url, headers={"Host": host})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def get_many(p, n: int, path: str = "/path-echo/r") -> list[int]:
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
    statuses = []
    try:
        for i in range(n):
            conn.request("GET", "http://origin.test%s%d" % (path, i),
                         headers={"Host": "origin.test"})
            r = conn.getresponse()
            r.read()
            statuses.append(r.status)
    finally:
        conn.close()
    return statuses


@pytest.fixture
def agent(tmp_path):
    a = FakeAgent(tmp_path / "boundary-audit.sock")
    yield a
    a.stop()


def start(proxy, agent_path, *extra, deny=(), allow=(ALLOW,)):
    return proxy(allow=allow, deny=deny,
                 args=["--log-proxy-socket-path", str(agent_path), "--session-id", SESSION,
                       "--command-name", "claude", *extra])


def test_fields_of_allowed_and_denied_requests(proxy, agent):
    p = start(proxy, agent.path, deny=("domain=origin.test path=/path-echo/secret",))
    assert request(p, "GET", "http://origin.test/path-echo/a?x=1&y=two") == 200
    assert request(p, "POST", "http://origin.test/elsewhere?q=1") == 403
    assert request(p, "GET", "http://origin.test/path-echo/secret") == 403
    p.stop()
    logs = agent.wait_logs(3)
    assert len(logs) == 3, logs
    by_seq = {x["sequence_number"]: x for x in logs}
    assert sorted(by_seq) == [0, 1, 2]
    allowed, denied, deny_rule = by_seq[0], by_seq[1], by_seq[2]
    assert allowed["allowed"] and allowed["method"] == "GET"
    assert allowed["url"] == "http://origin.test/path-echo/a?x=1&y=two"
    assert allowed["matched_rule"] == ALLOW
    assert allowed["kind"] == "http_request"
    assert not denied["allowed"] and denied["method"] == "POST"
    assert denied["url"] == "http://origin.test/elsewhere?q=1"
    # coderd counts a log as allowed exactly when it names a rule: never on a denial, even
    # when a deny rule decided it (the local trail keeps that rule).
    assert denied["matched_rule"] == "" and deny_rule["matched_rule"] == ""
    assert not deny_rule["allowed"]
    for x in logs:
        assert x["session_id"] == SESSION and x["confined_process_name"] == "claude"
        assert abs(x["time"] - time.time()) < 120
    trail = [e for e in p.audit() if e["event"] == "http_request"]
    assert sorted(e["sequence_number"] for e in trail) == [0, 1, 2]
    local = {e["sequence_number"]: e for e in trail}
    assert local[2]["matched_rule"] == "domain=origin.test path=/path-echo/secret"
    assert agent.frames and all(tag == 1 for tag, _ in agent.frames), agent.frames
    assert agent.errors == []


def test_many_events_fit_frames_without_gaps(proxy, agent):
    """700 requests, 120 with 5 KiB URLs: every frame ≤ 32 KiB and ≤ 1000 logs, numbers
    0..N-1 across many batches (frames of more than 1000 logs: the unit tests of frames())."""
    p = start(proxy, agent.path)
    n_short, n_long = 580, 120
    assert get_many(p, n_short) == [200] * n_short
    long_path = "/path-echo/" + "x" * 5000 + "/"
    assert get_many(p, n_long, long_path) == [200] * n_long
    p.stop()
    total = n_short + n_long
    logs = agent.wait_logs(total)
    assert agent.sequence_numbers() == list(range(total))
    assert all(size <= MAX_PAYLOAD for _, size in agent.frames), max(agent.frames)
    assert all(r["logs"] <= 1000 for r in agent.requests)
    assert len(agent.requests) >= 3  # the long URLs alone need several frames
    assert sum(1 for x in logs if len(x["url"]) > 5000) == n_long  # not cut: they fit
    assert agent.errors == []


def test_agent_absent_at_start(proxy, tmp_path):
    """No socket at the path: one warning naming it, the proxy works, nothing is kept."""
    path = tmp_path / "nobody.sock"
    p = start(proxy, path)
    assert request(p, "GET", "http://origin.test/path-echo/a") == 200
    assert p.stderr.count(str(path)) == 1, p.stderr
    assert "does not exist" in p.stderr
    p.stop()
    # Events carry no Coder numbers when nothing is forwarded.
    assert all("sequence_number" not in e for e in p.audit())


def test_agent_restarted_mid_run(proxy, agent):
    p = start(proxy, agent.path)
    assert get_many(p, 20) == [200] * 20
    assert len(agent.wait_logs(20)) == 20
    agent.vanish()
    assert get_many(p, 30, "/path-echo/gone") == [200] * 30  # while the agent is away
    time.sleep(1.5)
    agent.start()
    assert get_many(p, 25, "/path-echo/back") == [200] * 25
    logs = agent.wait_logs(75, timeout=20)
    p.stop()
    assert agent.sequence_numbers() == list(range(75)), agent.sequence_numbers()
    assert agent.connections >= 2
    assert sum(1 for x in logs if "/gone" in x["url"]) == 30


def test_agent_stalled_does_not_block_proxying(proxy, agent):
    agent.stall(True)
    p = start(proxy, agent.path)
    long_path = "/path-echo/" + "y" * 4000 + "/"
    t0 = time.monotonic()
    assert get_many(p, 300, long_path) == [200] * 300  # ~1.2 MB of logs: more than buffers hold
    assert time.monotonic() - t0 < 60
    agent.stall(False)
    logs = agent.wait_logs(300, timeout=30)
    p.stop()
    assert len(logs) >= 300
    assert sorted(set(agent.sequence_numbers())) == list(range(300))


def test_last_events_before_exit_are_delivered(proxy, agent):
    p = start(proxy, agent.path)
    assert get_many(p, 7) == [200] * 7  # fewer than a batch, within its interval
    p.proc.send_signal(signal.SIGTERM)
    p.stop()
    agent.wait_logs(7, timeout=5)  # the agent's reader may be behind the proxy's exit
    assert agent.sequence_numbers() == list(range(7))


def test_drop_counts_in_tag_2_frames(proxy, agent):
    p = start(proxy, agent.path, "--log-proxy-drop-counts")
    assert get_many(p, 5) == [200] * 5
    p.stop()
    agent.wait_logs(5)
    assert agent.sequence_numbers() == list(range(5)), (agent.frames, agent.errors, p.stderr)
    assert agent.frames and all(tag == 2 for tag, _ in agent.frames)
    assert agent.errors == []


def test_disable_audit_logs_stops_only_the_forwarding(proxy, agent):
    p = start(proxy, agent.path, "--disable-audit-logs")
    assert request(p, "GET", "http://origin.test/path-echo/a") == 200
    p.stop()
    time.sleep(0.2)
    assert agent.logs == [] and agent.connections == 0
    assert [e["http_url"] for e in p.audit() if e["event"] == "http_request"] == [
        "http://origin.test/path-echo/a"]


def test_default_path_under_tmpdir(proxy, tmp_path):
    """Without a flag the agent's socket is $TMPDIR/boundary-audit.sock, used when it exists."""
    tmp = tmp_path / "t"
    tmp.mkdir()
    a = FakeAgent(tmp / "boundary-audit.sock")
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)
    try:
        p = proxy(allow=(ALLOW,), args=["--session-id", SESSION])
    finally:
        if old is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = old
    try:
        assert request(p, "GET", "http://origin.test/path-echo/d") == 200
        p.stop()
        assert [x["url"] for x in a.wait_logs(1)] == ["http://origin.test/path-echo/d"]
    finally:
        a.stop()


def test_config_key_names_the_socket(proxy, agent):
    # (clean_env() drops CODER_* variables; CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH is
    # covered by the settings' unit tests and the e2e test of `boundary`.)
    p = proxy(allow=(ALLOW,), args=["--session-id", SESSION],
              config="log_proxy_socket_path: %s\n" % agent.path)
    assert request(p, "GET", "http://origin.test/path-echo/e") == 200
    p.stop()
    assert [x["url"] for x in agent.wait_logs(1)] == ["http://origin.test/path-echo/e"]


def test_a_session_id_that_is_a_uuid(proxy, agent):
    p = proxy(allow=(ALLOW,), args=["--log-proxy-socket-path", agent.path])
    assert request(p, "GET", "http://origin.test/path-echo/u") == 200
    p.stop()
    logs = agent.wait_logs(1)
    uuid.UUID(logs[0]["session_id"])
    assert logs[0]["session_id"] == p.audit()[0]["session_id"]


def test_not_a_socket_is_a_warning(proxy, tmp_path):
    path = tmp_path / "plain-file"
    path.write_text("")
    p = start(proxy, path)
    assert request(p, "GET", "http://origin.test/path-echo/a") == 200
    assert "is not a unix socket" in p.stderr


def test_agent_gone_at_exit_is_counted_in_the_trail(proxy, agent):
    """The agent vanished before exit: the proxy retries once, then counts what it could not
    deliver: an audit_dropped event (sink coder, reason undelivered) in the local trail."""
    p = start(proxy, agent.path)
    assert get_many(p, 3) == [200] * 3
    assert len(agent.wait_logs(3)) == 3
    agent.vanish()
    assert get_many(p, 4, "/path-echo/late") == [200] * 4
    t0 = time.monotonic()
    p.stop()
    print("proxy stopped %.2f s after SIGTERM" % (time.monotonic() - t0))
    dropped = [e for e in p.audit() if e["event"] == "audit_dropped"]
    assert [(e["sink"], e["reason"], e["count"]) for e in dropped] == [
        ("coder", "undelivered", 4)], (dropped, p.stderr)
    assert "not delivered" in p.stderr, p.stderr
