"""The issue's acceptance, each with its own proxy so that "exactly one audit line" is exact:
with --allow 'domain=origin.test method=GET'
  - curl -x PROXY --cacert CA https://origin.test/ succeeds through TLS interception;
  - curl -X POST … gets 403 and exactly one `deny` audit line;
  - https://other.test/ gets a refused CONNECT and exactly one `deny` audit line.
"""

import origin as om
from auditcheck import check_line, denies, requests_only
from clients import curl

RULE = "domain=origin.test method=GET"


def test_get_https_intercepted(proxy, origins, pki):
    p = proxy(allow=[RULE])
    r = curl(p, "https://origin.test/")
    assert r.rc == 0 and r.connect_status == 200 and r.status == 200, r
    assert r.body == om.HELLO, r
    # The origin got exactly this request, over TLS with SNI, from the proxy.
    got = origins.received()
    assert len(got) == 1, got
    assert got[0]["method"] == "GET" and got[0]["target"] == "/" and got[0]["tls"] is True
    assert got[0]["sni"] == "origin.test" and got[0].header("Host") == "origin.test"
    # Trusting only the CA that signed the origin's certificate, the client refuses what it
    # is shown: the proxy (with a leaf from its own CA) terminated TLS, not the origin.
    r2 = curl(p, "https://origin.test/", ca=str(pki.ca_pem))
    assert r2.rc == 60 and r2.body == b"", r2
    assert len(origins.received()) == 1
    p.stop()
    lines = requests_only(p.audit())
    assert len(lines) == 1, lines
    check_line(lines[0], decision="allow", method="GET", url="https://origin.test/",
               host="origin.test", rule=RULE, reason="allow_rule_matched", status=200)


def test_post_https_denied_with_one_audit_line(proxy, origins):
    p = proxy(allow=[RULE])
    r = curl(p, "https://origin.test/", "-X", "POST")
    assert r.connect_status == 200, r  # the tunnel is accepted: GET could be allowed
    assert r.status == 403, r
    assert r.header("X-Landjail-Decision") == "deny", r
    assert r.header("Content-Type").startswith("text/plain"), r
    text = r.body.decode()
    assert "POST" in text and "https://origin.test/" in text and "--allow" in text, text
    assert origins.received() == [], "a denied request reached the origin"
    p.stop()
    lines = p.audit()
    d = denies(lines)
    assert len(d) == 1, lines
    check_line(d[0], decision="deny", method="POST", url="https://origin.test/",
               host="origin.test", rule=None, reason="no_rule_matched", status=403)
    assert len(requests_only(lines)) == 1, lines


def test_other_host_request_denied_inside_with_one_audit_line(proxy, origins):
    """tls.intercept_denied (issue 15): the tunnel to a host no rule names is intercepted and
    its request denied, with the full URL in the one audit line."""
    p = proxy(allow=[RULE])
    r = curl(p, "https://other.test/x?y=1")
    assert r.rc == 0 and r.connect_status == 200 and r.status == 403, r
    assert origins.received() == [], "a denied request reached the origin"
    p.stop()
    lines = p.audit()
    assert len(lines) == 1, lines
    check_line(lines[0], decision="deny", method="GET", url="https://other.test/x?y=1",
               host="other.test", rule=None, reason="no_rule_matched", status=403)


def test_other_host_connect_refused_with_one_audit_line(proxy, origins):
    """tls.intercept_denied: false keeps the refusal at CONNECT."""
    p = proxy(allow=[RULE], config="tls:\n  intercept_denied: false\n")
    r = curl(p, "https://other.test/")
    assert r.rc == 56 and r.connect_status == 403, r
    assert "CONNECT tunnel failed, response 403" in r.stderr, r
    assert r.body == b"", r
    assert origins.received() == [], "a refused CONNECT reached the origin"
    p.stop()
    lines = p.audit()
    assert len(lines) == 1, lines
    check_line(lines[0], decision="deny", method="CONNECT", url_contains="other.test",
               host="other.test", rule=None, reason="no_rule_matched", status=403)
