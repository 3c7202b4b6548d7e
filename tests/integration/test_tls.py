"""CONNECT and TLS interception: the local CA, leaf certificates, SNI/Host checks (421), plain
HTTP inside a tunnel, denials inside a tunnel, WebSocket through CONNECT+TLS."""

import os
import stat
import subprocess

import pytest

import origin as om
from clients import connect, curl, tls_tunnel, tunnel, ws_handshake

# ---- the CA ----------------------------------------------------------------------------------


def test_ca_created_at_start_with_private_key_0600(proxy):
    """ca.pem must exist once the proxy is ready: landjail puts it in the child's CA bundle
    before the command starts."""
    p = proxy()
    assert p.ca_pem.is_file() and p.ca_key.is_file()
    assert stat.S_IMODE(os.stat(p.ca_key).st_mode) == 0o600
    text = subprocess.run(["openssl", "x509", "-in", str(p.ca_pem), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "CA:TRUE" in text, text
    assert "PRIVATE KEY" not in p.ca_pem.read_text()


def test_ca_reused_by_next_start(proxy, origins, tmp_path):
    ca_dir = tmp_path / "shared-ca"
    p1 = proxy(ca_dir=ca_dir)
    first = p1.ca_pem.read_bytes()
    p1.stop()
    p2 = proxy(ca_dir=ca_dir)
    assert p2.ca_pem.read_bytes() == first
    # a client that trusted the first run's CA still works with the second run
    (tmp_path / "first.pem").write_bytes(first)
    r = curl(p2, "https://origin.test/", ca=str(tmp_path / "first.pem"))
    assert r.rc == 0 and r.body == om.HELLO, r


@pytest.mark.parametrize("host", ["origin.test", "other.test"])
def test_leaf_certificate_for_connect_host(proxy, origins, host):
    p = proxy(allow=["domain=origin.test", "domain=other.test"])
    with tls_tunnel(p, host) as c:  # verifies chain to the proxy CA and the host name
        cert = c.sock.getpeercert()
        sans = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        assert host in sans, cert
        issuer = dict(x[0] for x in cert["issuer"])
        assert "landjail integration test CA" not in issuer.get("commonName", ""), cert
        r = c.request("GET", "/", host)
        assert r.status == 200 and r.body == om.HELLO
    got = origins.received()
    assert len(got) == 1 and got[0]["sni"] == host and got[0].header("Host") == host


# ---- SNI and Host must name the CONNECT host (421) --------------------------------------------


def test_sni_mismatch_python_421(proxy, origins):
    """CONNECT origin.test:443, then TLS with SNI other.test (both hosts allowed). The test
    expects the proxy to finish the handshake and answer 421 Misdirected Request (it could also
    refuse the handshake; this suite asks for the 421, which tells the client why)."""
    p = proxy(allow=["domain=origin.test", "domain=other.test"])
    with tls_tunnel(p, "origin.test", sni="other.test", check_hostname=False) as c:
        r = c.request("GET", "/", "other.test")
        assert r.status == 421, r
    assert origins.received() == []


def test_sni_mismatch_openssl_s_client_421(proxy, origins):
    p = proxy(allow=["domain=origin.test", "domain=other.test"])
    proc = subprocess.run(
        ["openssl", "s_client", "-proxy", "127.0.0.1:%d" % p.port, "-connect", "origin.test:443",
         "-servername", "other.test", "-CAfile", str(p.ca_pem), "-quiet", "-ign_eof"],
        input=b"GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=30)
    assert proc.stdout.startswith(b"HTTP/1.1 421"), (proc.stdout, proc.stderr)
    assert origins.received() == []


def test_inner_host_mismatch_421(proxy, origins):
    p = proxy(allow=["domain=origin.test", "domain=other.test"])
    with tls_tunnel(p, "origin.test") as c:
        r = c.request("GET", "/", "other.test")
        assert r.status == 421, r
    assert origins.received() == []


def test_second_request_with_other_host_in_tunnel_421(proxy, origins):
    """Every inner Host is checked, not only the first."""
    p = proxy(allow=["domain=origin.test", "domain=other.test"])
    with tls_tunnel(p, "origin.test") as c:
        r1 = c.request("GET", "/path-echo/one", "origin.test")
        assert r1.status == 200 and r1.body == b"/path-echo/one"
        c.send(b"GET /path-echo/two HTTP/1.1\r\nHost: other.test\r\n\r\n")
        r2 = c.response()
        assert r2.status == 421, r2
    assert [x["target"] for x in origins.received()] == ["/path-echo/one"]


def test_openssl_s_client_through_proxy(proxy, origins):
    p = proxy()
    proc = subprocess.run(
        ["openssl", "s_client", "-proxy", "127.0.0.1:%d" % p.port, "-connect", "origin.test:443",
         "-servername", "origin.test", "-CAfile", str(p.ca_pem), "-verify_hostname",
         "origin.test", "-verify_return_error", "-quiet", "-ign_eof"],
        input=b"GET /path-echo/s_client HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=30)
    # s_client exits 1 on "unexpected eof": the proxy must end TLS with close_notify
    assert proc.stdout.startswith(b"HTTP/1.1 200"), (proc.stdout, proc.stderr)
    assert proc.stdout.endswith(b"/path-echo/s_client"), (proc.stdout, proc.stderr)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)


# ---- inside a tunnel -------------------------------------------------------------------------


def test_plain_http_inside_connect(proxy, origins):
    """CONNECT origin.test:80 then plain HTTP: decided and forwarded like any request."""
    p = proxy(allow=["domain=origin.test method=GET"])
    c, r = tunnel(p, "origin.test", 80)
    with c:
        assert r.status == 200, r
        g = c.request("GET", "/path-echo/plain-in-tunnel", "origin.test")
        assert g.status == 200 and g.body == b"/path-echo/plain-in-tunnel", g
        d = c.request("POST", "/echo", "origin.test", body=b"no")
        assert d.status == 403 and d.header("X-Landjail-Decision") == "deny", d
    got = origins.received()
    assert [(x["method"], x["target"], x["listener"]) for x in got] == [
        ("GET", "/path-echo/plain-in-tunnel", "http")]


def test_deny_then_allow_in_same_tunnel(proxy, origins):
    p = proxy(allow=["domain=origin.test method=GET"])
    with tls_tunnel(p, "origin.test") as c:
        d = c.request("DELETE", "/path-echo/x", "origin.test")
        assert d.status == 403 and d.header("X-Landjail-Decision") == "deny", d
        assert b"DELETE" in d.body and b"https://origin.test/path-echo/x" in d.body
        g = c.request("GET", "/path-echo/y", "origin.test")
        assert g.status == 200 and g.body == b"/path-echo/y", g
    assert [x["method"] for x in origins.received()] == ["GET"]


def test_connect_refused_for_unmatchable_host_is_immediate(proxy, origins):
    p = proxy(allow=["domain=origin.test"], config="tls:\n  intercept_denied: false\n")
    c, r = tunnel(p, "other.test", 443)
    with c:
        assert r.status == 403, r
        assert r.header("X-Landjail-Decision") == "deny", r
    assert origins.received() == []


def test_connect_to_ip_literal_not_matching_is_refused(proxy, origins):
    p = proxy(allow=["domain=origin.test"])
    c, r = tunnel(p, "127.0.0.1", origins.https.port)
    with c:
        assert r.status == 403, r
    assert origins.received() == []


# ---- WebSocket -------------------------------------------------------------------------------


def _ws_echo(c, target, host):
    h = ws_handshake(c, target, host)
    assert h.status == 101, h
    assert h.header("Sec-WebSocket-Accept") == om.ws_accept("dGhlIHNhbXBsZSBub25jZQ==")
    assert (h.header("Upgrade") or "").lower() == "websocket"
    for payload, op in ((b"hello over websocket", om.WS_TEXT), (bytes(range(256)) * 300, om.WS_BINARY)):
        c.send(om.ws_encode(op, payload, mask=True))
        fin, rop, masked, got = om.ws_read_frame(c.f)
        assert (fin, rop, masked) == (True, op, False)
        assert got == payload
    c.send(om.ws_encode(om.WS_PING, b"p", mask=True))
    assert om.ws_read_frame(c.f)[1:] == (om.WS_PONG, False, b"p")
    c.send(om.ws_encode(om.WS_CLOSE, b"\x03\xe8", mask=True))
    assert om.ws_read_frame(c.f)[1] == om.WS_CLOSE


def test_websocket_through_connect_tls(proxy, origins):
    p = proxy(allow=["domain=origin.test method=GET"])
    with tls_tunnel(p, "origin.test") as c:
        _ws_echo(c, "/ws", "origin.test")
    rec = origins.received("/ws")[0]
    assert rec.header("Upgrade").lower() == "websocket" and rec["tls"] is True
    assert rec["ws_frames"] == 4 and rec["ws_last_masked"] is True


def test_websocket_plain_absolute_form(proxy, origins):
    p = proxy(allow=["domain=origin.test method=GET"])
    with connect(p) as c:
        _ws_echo(c, "http://origin.test/ws", "origin.test")
    assert origins.received("/ws")[0]["ws_frames"] == 4


def test_websocket_upgrade_denied(proxy, origins):
    p = proxy(allow=["domain=origin.test path=/"])
    with tls_tunnel(p, "origin.test") as c:
        h = ws_handshake(c, "/ws", "origin.test")
        assert h.status == 403, h
    assert origins.received() == []


# ---- tls.passthrough ---------------------------------------------------------------------------


def test_passthrough_host_is_tunnelled_untouched(proxy, origins, pki):
    """A tls.passthrough host is not intercepted: the client sees the origin's own certificate
    (so only the test CA, not the proxy CA, verifies it), and the tunnel is audited once."""
    p = proxy(allow=(),
              config="allowlist:\n  - domain=origin.test\ntls:\n  passthrough:\n    - origin.test\n")
    intercepted = curl(p, "https://origin.test/path-echo/pt")  # trusts only the proxy CA
    assert intercepted.status == 0 and intercepted.rc != 0, intercepted
    r = curl(p, "https://origin.test/path-echo/pt", ca=str(pki.ca_pem))
    assert r.status == 200 and r.body == b"/path-echo/pt", r
    got = origins.received("/path-echo/pt")
    assert got and got[-1]["sni"] == "origin.test"
    events = p.audit(2, where=lambda x: x["http_method"] == "CONNECT")
    assert all(e["reason"] == "passthrough" and e["decision"] == "allow" for e in events), events
    assert [e["status"] for e in events] == [200, 200]


def test_passthrough_still_needs_an_allow_rule(proxy, origins, pki):
    p = proxy(allow=(),
              config="allowlist:\n  - domain=other.test\ntls:\n  passthrough:\n    - origin.test\n")
    r = curl(p, "https://origin.test/path-echo/pt", ca=str(pki.ca_pem))
    # Intercepted (tls.intercept_denied), not passed through: the client, which trusts only
    # the origin's CA, refuses the proxy's certificate; nothing reaches the origin.
    assert r.connect_status == 200 and r.status == 0, r
    assert origins.received("/path-echo/pt") == []
    p.stop()
    e = [x for x in p.audit() if x["event"] == "http_request"]
    assert [(x["http_method"], x["decision"], x.get("outcome")) for x in e] == [
        ("CONNECT", "deny", "no_request")], e
