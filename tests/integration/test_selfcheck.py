"""Self-checks of the test origin and PKI, talking to the origins directly (no proxy). They run
always, so a failure in the proxy tests is not a broken fixture."""

import hashlib
import json
import socket
import subprocess
import time

import pytest

import origin as om
from clients import Conn, client_tls_context, curl, read_head, ws_handshake

pytestmark = pytest.mark.selfcheck


def direct(origins, pki, path, *args, name="origin.test", tls=True, **kw):
    srv = origins.https if tls else origins.http
    scheme = "https" if tls else "http"
    port = 443 if tls else 80
    return curl(None, "%s://%s%s" % (scheme, name, path),
                "--resolve", "%s:%d:127.0.0.1" % (name, port),
                "--connect-to", "%s:%d:127.0.0.1:%d" % (name, port, srv.port), *args,
                ca=str(pki.ca_pem), **kw)


def tls_conn(origins, pki, srv=None, server_hostname="origin.test"):
    srv = srv or origins.https
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return Conn(client_tls_context(pki.ca_pem).wrap_socket(s, server_hostname=server_hostname))


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_origin_get_and_head(origins, pki, tls):
    r = direct(origins, pki, "/", tls=tls)
    assert r.rc == 0 and r.status == 200 and r.body == om.HELLO, r
    h = direct(origins, pki, "/", "-I", tls=tls)
    # with -I curl writes the head to the output file: nothing may follow it
    assert h.status == 200 and h.body.endswith(b"\r\n\r\n") and om.HELLO not in h.body, h
    assert h.header("Content-Length") == "17", h
    rec = origins.received("/")
    assert [x["method"] for x in rec] == ["GET", "HEAD"]
    if tls:
        assert rec[0]["sni"] == "origin.test" and rec[0]["tls"] is True


def test_origin_cert_names(origins, pki):
    for name in ("origin.test", "other.test"):
        r = direct(origins, pki, "/", name=name)
        assert r.rc == 0 and r.body == om.HELLO, r
    # IP SAN 127.0.0.1
    r = curl(None, "https://127.0.0.1:%d/" % origins.https.port, ca=str(pki.ca_pem))
    assert r.rc == 0 and r.body == om.HELLO, r


def test_wrong_and_untrusted_certs_fail_verification(origins, pki):
    for srv, name in ((origins.wrong, "wrong.test"), (origins.untrusted, "untrusted.test")):
        r = curl(None, "https://%s/" % name, "--connect-to",
                 "%s:443:127.0.0.1:%d" % (name, srv.port), ca=str(pki.ca_pem))
        assert r.rc == 60 and r.status == 0, r  # curl: peer certificate cannot be authenticated
    # ...while each is a working server for its own name and CA
    r = curl(None, "https://unrelated.test/", "--connect-to",
             "unrelated.test:443:127.0.0.1:%d" % origins.wrong.port, ca=str(pki.ca_pem))
    assert r.rc == 0 and r.body == om.HELLO, r
    r = curl(None, "https://untrusted.test/", "--connect-to",
             "untrusted.test:443:127.0.0.1:%d" % origins.untrusted.port, ca=str(pki.other_ca_pem))
    assert r.rc == 0 and r.body == om.HELLO, r


@pytest.mark.parametrize("chunked", [False, True], ids=["fixed", "chunked"])
def test_origin_echo(origins, pki, tmp_path, chunked):
    body = bytes(range(256)) * 4000
    f = tmp_path / "body"
    f.write_bytes(body)
    args = ["--data-binary", "@%s" % f, "-H", "Content-Type: application/octet-stream"]
    if chunked:
        args += ["-H", "Transfer-Encoding: chunked"]
    r = direct(origins, pki, "/echo", *args)
    assert r.rc == 0 and r.status == 200 and r.body == body, r
    rec = origins.received("/echo")[0]
    assert rec["chunked"] is chunked and rec["body_complete"] and rec["body_len"] == len(body)
    rep = json.loads(direct(origins, pki, "/echo?headers=1", "-H", "X-Probe: 1",
                            "--data-binary", "xyz").body)
    assert rep["request_line"] == "POST /echo?headers=1 HTTP/1.1"
    assert ["X-Probe", "1"] in rep["headers"] and rep["body_len"] == 3


def test_origin_path_echo_is_raw(origins, pki):
    r = direct(origins, pki, "/path-echo/a/./b/../c?q=1", "--path-as-is", tls=False)
    assert r.body == b"/path-echo/a/./b/../c?q=1", r


@pytest.mark.parametrize("path", ["/big?mb=3", "/big-chunked?mb=3"])
def test_origin_big(origins, pki, path):
    r = direct(origins, pki, path, tls=False)
    assert r.rc == 0 and len(r.body) == 3 * om.MIB
    assert hashlib.sha256(r.body).hexdigest() == om.big_bytes_sha256(3)
    if "chunked" in path:
        assert r.header("Transfer-Encoding") == "chunked"
    else:
        assert r.header("Content-Length") == str(3 * om.MIB)


def test_origin_sse_gate(origins, pki):
    with tls_conn(origins, pki) as c:
        c.send(b"GET /sse?n=3&interval=0.01&gate=self HTTP/1.1\r\nHost: origin.test\r\n\r\n")
        _, status, _, headers = read_head(c.f)
        assert status == 200
        assert c.f.readline() == b"15\r\n"  # chunk size of "id: 1\ndata: event 1\n\n"
        assert c.f.readline() == b"id: 1\n"
        assert origins.state.sse_progress["self"] == 1 and "self" not in origins.state.sse_done
        origins.state.open_gate("self")
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            rest += c.f.read1(4096)
        assert b"data: event 3" in rest


def test_origin_websocket(origins, pki):
    with tls_conn(origins, pki) as c:
        h = ws_handshake(c, "/ws", "origin.test")
        assert h.status == 101
        assert h.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        c.send(om.ws_encode(om.WS_TEXT, b"ping through nothing", mask=True))
        fin, op, masked, payload = om.ws_read_frame(c.f)
        assert (fin, op, masked, payload) == (True, om.WS_TEXT, False, b"ping through nothing")
        c.send(om.ws_encode(om.WS_CLOSE, b"\x03\xe8", mask=True))
        assert om.ws_read_frame(c.f)[1] == om.WS_CLOSE


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_origin_reset_mid_body(origins, pki, tls):
    r = direct(origins, pki, "/reset-mid-body", tls=tls)
    assert r.rc in (18, 56), r  # partial file / recv failure (connection reset)
    assert len(r.body) <= om.RESET_SENT
    assert r.body == om.big_block(0)[:len(r.body)]
    # and the origin keeps serving
    assert direct(origins, pki, "/", tls=tls).body == om.HELLO


def test_origin_slow_and_status_and_close_delimited(origins, pki):
    t = time.monotonic()
    r = direct(origins, pki, "/slow-headers?delay=0.3", tls=False)
    assert r.body == b"slow" and time.monotonic() - t >= 0.3
    r = direct(origins, pki, "/status?code=204", tls=False)
    assert r.status == 204 and r.body == b""
    r = direct(origins, pki, "/close-delimited", tls=True)
    assert r.rc == 0 and r.body.count(b"\n") == 100 and r.header("Content-Length") is None, r
    r = direct(origins, pki, "/hop-response", tls=False)
    assert r.header("X-Origin-Hop") and r.header("X-End") == "kept"


def test_origin_records_incomplete_upload(origins, pki):
    s = socket.create_connection(("127.0.0.1", origins.http.port), timeout=10)
    s.sendall(b"POST /echo?sink=1 HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 1000000\r\n\r\n"
              + b"x" * 1000)
    origins.wait_for(lambda rs: rs, what="the upload's headers")
    s.close()
    rec = origins.wait_for(lambda rs: [r for r in rs if r["body_complete"] is False],
                           what="the upload marked incomplete")[0]
    assert rec["body_len"] == 1000


def test_blackhole_and_closed_ports(origins):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", origins.closed_port), timeout=5)
    s = socket.create_connection(("127.0.0.1", origins.blackhole_port), timeout=5)
    s.settimeout(0.2)
    with pytest.raises(socket.timeout):
        s.recv(1)
    s.close()


def test_resolve_args_shape(origins):
    args = origins.resolve_args()
    values = args[1::2]
    assert all(a == "--resolve" for a in args[0::2])
    assert "origin.test:443:127.0.0.1:%d" % origins.https.port in values
    if origins.has_ipv6:
        assert "origin6.test:443:[::1]:%d" % origins.https6.port in values


def test_openssl_s_client_against_origin(origins, pki):
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % origins.https.port,
                        "-servername", "other.test", "-CAfile", str(pki.ca_pem),
                        "-verify_hostname", "other.test", "-verify_return_error", "-quiet",
                        "-ign_eof"],
                       input=b"GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"HTTP/1.1 200") and p.stdout.endswith(om.HELLO)
    assert origins.received("/")[0]["sni"] == "other.test"
