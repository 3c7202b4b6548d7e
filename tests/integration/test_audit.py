"""The audit trail (DESIGN §6): exactly one line per decided request, with the right fields;
one ordered stream per session; flushed on SIGTERM; rules from a config file."""

import origin as om
from auditcheck import check_line, check_stream, requests_only
from clients import curl

ALLOW = "domain=origin.test method=GET,HEAD"
DENY = "domain=origin.test path=/secret"


def test_one_line_per_decided_request(proxy, origins):
    p = proxy(allow=[ALLOW], deny=[DENY])
    steps = [
        (curl(p, "http://origin.test/"), 200),
        (curl(p, "https://origin.test/path-echo/x?y=1"), 200),
        (curl(p, "http://origin.test/echo", "--data-binary", "no"), 403),
        (curl(p, "https://origin.test/secret"), 403),
        (curl(p, "https://other.test/"), 403),  # intercepted: denied inside
        (curl(p, "http://origin.test/", "-I"), 200),
    ]
    for r, status in steps:
        if status is not None:
            assert r.status == status, r
        else:
            assert r.connect_status == 403, r
    assert [(x["method"], x["target"]) for x in origins.received()] == [
        ("GET", "/"), ("GET", "/path-echo/x?y=1"), ("HEAD", "/")]
    p.stop()  # SIGTERM flushes: from here the file is final
    every = p.audit()
    check_stream(every)
    lines = requests_only(every)
    assert len(lines) == 6, every
    check_line(lines[0], decision="allow", method="GET", url="http://origin.test/",
               host="origin.test", rule=ALLOW, reason="allow_rule_matched", status=200)
    check_line(lines[1], decision="allow", method="GET", url="https://origin.test/path-echo/x?y=1",
               host="origin.test", rule=ALLOW, reason="allow_rule_matched", status=200)
    check_line(lines[2], decision="deny", method="POST", url="http://origin.test/echo",
               host="origin.test", rule=None, reason="no_rule_matched", status=403)
    check_line(lines[3], decision="deny", method="GET", url="https://origin.test/secret",
               host="origin.test", rule=DENY, reason="deny_rule_matched", status=403)
    check_line(lines[4], decision="deny", method="GET", url="https://other.test/",
               host="other.test", rule=None, reason="no_rule_matched", status=403)
    check_line(lines[5], decision="allow", method="HEAD", url="http://origin.test/",
               host="origin.test", rule=ALLOW, reason="allow_rule_matched", status=200)


def test_first_matching_rule_is_named(proxy, origins):
    rules = ["domain=origin.test path=/nothing-here", "domain=origin.test method=GET",
             "domain=origin.test"]
    p = proxy(allow=rules)
    assert curl(p, "http://origin.test/").body == om.HELLO
    line = p.audit(1)[0]
    assert line["matched_rule"] == "domain=origin.test method=GET", line


def test_audit_lines_written_while_running(proxy, origins):
    """Lines appear without a shutdown (the writer does not wait for SIGTERM)."""
    p = proxy()
    assert curl(p, "http://origin.test/").status == 200
    lines = p.audit(1, timeout=10)
    assert lines[0]["decision"] == "allow" and lines[0]["http_url"] == "http://origin.test/"


def test_sigterm_flushes_every_line(proxy, origins):
    p = proxy(allow=["domain=origin.test method=GET"])
    n = 20
    for i in range(n):
        method = "GET" if i % 2 == 0 else "POST"
        r = curl(p, "http://origin.test/path-echo/%d" % i, "-X", method)
        assert r.status == (200 if method == "GET" else 403), r
    p.stop()
    lines = requests_only(p.audit())
    assert [x["http_url"] for x in lines] == ["http://origin.test/path-echo/%d" % i
                                              for i in range(n)]
    assert [x["decision"] for x in lines] == ["allow", "deny"] * (n // 2)
    check_stream(lines)


def test_502_and_504_are_audited_as_allowed_with_status(proxy, origins):
    p = proxy(allow=["domain=closed.test", "domain=origin.test"], args=["--upstream-timeout", "1"])
    assert curl(p, "http://closed.test/").status == 502
    assert curl(p, "http://origin.test/slow-headers?delay=5").status == 504
    p.stop()
    lines = requests_only(p.audit())
    assert len(lines) == 2, lines
    check_line(lines[0], decision="allow", method="GET", url="http://closed.test/",
               host="closed.test", rule="domain=closed.test", reason="allow_rule_matched",
               status=502)
    check_line(lines[1], decision="allow", method="GET",
               url="http://origin.test/slow-headers?delay=5", host="origin.test",
               rule="domain=origin.test", reason="allow_rule_matched", status=504)


def test_rules_from_config_file(proxy, origins):
    config = ("allowlist:\n"
              "  - domain=origin.test method=GET\n"
              "denylist:\n"
              "  - domain=origin.test path=/secret\n")
    p = proxy(allow=["domain=other.test"], config=config)  # --allow adds to the file's rules
    assert curl(p, "https://origin.test/").body == om.HELLO
    assert curl(p, "https://other.test/").body == om.HELLO
    assert curl(p, "https://origin.test/secret").status == 403
    assert curl(p, "https://origin.test/", "-X", "POST").status == 403
    assert [x.header("Host") for x in origins.received()] == ["origin.test", "other.test"]
    p.stop()
    lines = requests_only(p.audit())
    assert [(x["decision"], x["matched_rule"]) for x in lines] == [
        ("allow", "domain=origin.test method=GET"), ("allow", "domain=other.test"),
        ("deny", "domain=origin.test path=/secret"), ("deny", None)]
