"""Client-side helpers for the integration tests: curl, a raw HTTP/1.1 response reader, CONNECT
tunnels with TLS, and a WebSocket client. Standard library only."""

from __future__ import annotations

import os
import select
import socket
import ssl
import subprocess
import tempfile
import time

CURL = "curl"
OPENSSL = "openssl"

# Variables that would make a client or the proxy pick up something from the developer's
# environment (another proxy, a config file, CA bundles).
_DROP_ENV_PREFIXES = ("LANDJAIL", "BOUNDARY", "CODER_", "SSL_", "CURL_", "REQUESTS_CA",
                      "PROXY_PORT", "DISABLE_AUDIT_LOGS")
_DROP_ENV = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy", "curl_home",
             "curlrc"}


def clean_env(home: str | None = None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in _DROP_ENV and not k.upper().startswith(_DROP_ENV_PREFIXES)}
    if home is not None:
        env["HOME"] = home
        env["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    env.update(extra)
    return env


# ---- curl ------------------------------------------------------------------------------------


class CurlResult:
    def __init__(self, rc, http_code, http_connect, header_blocks, body, stderr, argv):
        self.rc = rc
        self.status = http_code          # final response status (0 when none)
        self.connect_status = http_connect  # status of the proxy's CONNECT answer (0 when none)
        self.header_blocks = header_blocks  # every response head curl saw, in order
        self.body = body
        self.stderr = stderr
        self.argv = argv

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self.header_blocks[-1][1] if self.header_blocks else []

    def header(self, name: str):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return ("CurlResult(rc=%r, status=%r, connect=%r, headers=%r, body=%r, stderr=%r, argv=%r)"
                % (self.rc, self.status, self.connect_status, self.headers, self.body[:300],
                   self.stderr[-600:], self.argv))


def _parse_header_blocks(raw: bytes):
    blocks = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [ln for ln in block.decode("latin-1").split("\n") if ln]
        if not lines or not lines[0].startswith("HTTP/"):
            continue
        hdrs = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs.append((k.strip(), v.strip()))
        blocks.append((lines[0], hdrs))
    return blocks


def curl(proxy, url: str, *args: str, ca: str | None = "proxy", timeout: float = 30,
         input_bytes: bytes | None = None) -> CurlResult:
    """Runs curl through `proxy` (None: directly). ca="proxy" trusts the proxy's CA; a path
    trusts that file; None adds nothing."""
    with tempfile.TemporaryDirectory(prefix="lj-curl-") as d:
        hfile, bfile = os.path.join(d, "h"), os.path.join(d, "b")
        argv = [CURL, "-sS", "--max-time", str(timeout), "-D", hfile, "-o", bfile,
                "-w", "%{http_code} %{http_connect}"]
        if proxy is not None:
            argv += ["-x", proxy.url]
        if ca == "proxy":
            argv += ["--cacert", str(proxy.ca_pem)]
        elif ca:
            argv += ["--cacert", str(ca)]
        argv += list(args) + [url]
        p = subprocess.run(argv, input=input_bytes, capture_output=True, timeout=timeout + 15,
                           env=clean_env())
        codes = p.stdout.decode().split()
        http_code = int(codes[0]) if codes else 0
        http_connect = int(codes[1]) if len(codes) > 1 else 0
        raw_h = open(hfile, "rb").read() if os.path.exists(hfile) else b""
        body = open(bfile, "rb").read() if os.path.exists(bfile) else b""
        return CurlResult(p.returncode, http_code, http_connect, _parse_header_blocks(raw_h),
                          body, p.stderr.decode(errors="replace"), argv)


# ---- raw HTTP/1.1 ----------------------------------------------------------------------------


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers
        self.body = body

    def header(self, name: str):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header_names(self):
        return [k.lower() for k, _ in self.headers]

    def __repr__(self):
        return "Response(%s %d %r, headers=%r, body=%r)" % (
            self.version, self.status, self.reason, self.headers, self.body[:400])


def read_head(f):
    """Reads a status line and headers; returns (version, status, reason, headers)."""
    line = f.readline(65537)
    if not line:
        raise EOFError("connection closed before a response")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError("not an HTTP status line: %r" % line)
    version, status = parts[0], int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    while True:
        h = f.readline(65537)
        if not h:
            raise EOFError("connection closed inside the response headers")
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    return version, status, reason, headers


def read_response(f, method: str = "GET", skip_interim: bool = True) -> Response:
    """Reads one complete response (Content-Length, chunked or close-delimited) from a binary
    file object. 100 Continue is skipped unless skip_interim is False."""
    while True:
        version, status, reason, headers = read_head(f)
        if status == 100 and skip_interim:
            continue
        break
    r = Response(version, status, reason, headers, b"")
    te = (r.header("Transfer-Encoding") or "").lower()
    cl = r.header("Content-Length")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return r
    if method == "CONNECT" and 200 <= status < 300:
        return r
    if "chunked" in te:
        body = []
        while True:
            size_line = f.readline(1024)
            if not size_line:
                raise EOFError("connection closed inside a chunked body")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while f.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body.append(_exact(f, size))
            if f.readline(3) not in (b"\r\n", b"\n"):
                raise ValueError("bad chunk terminator")
        r.body = b"".join(body)
    elif cl is not None:
        r.body = _exact(f, int(cl))
    else:
        r.body = f.read()
    return r


def _exact(f, n: int) -> bytes:
    out = []
    got = 0
    while got < n:
        b = f.read(n - got)
        if not b:
            raise EOFError("connection closed after %d of %d body bytes" % (got, n))
        out.append(b)
        got += len(b)
    return b"".join(out)


class Conn:
    """A client connection to the proxy (plain, or TLS inside a CONNECT tunnel)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.f = sock.makefile("rb")

    def send(self, data: bytes):
        self.sock.sendall(data)

    def response(self, method: str = "GET", skip_interim: bool = True) -> Response:
        return read_response(self.f, method, skip_interim)

    def request(self, method: str, target: str, host: str, headers=(), body: bytes | None = None
                ) -> Response:
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, target, host)
        for k, v in headers:
            head += "%s: %s\r\n" % (k, v)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        self.send(head.encode() + b"\r\n" + (body or b""))
        return self.response(method)

    def closed_by_peer(self, timeout: float = 10) -> bool:
        """True when the peer closes (EOF or reset) within `timeout` and sends nothing more."""
        self.sock.settimeout(timeout)
        try:
            data = self.f.read1(65536) if hasattr(self.f, "read1") else self.f.read(1)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return data == b""

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(proxy, timeout: float = 15) -> Conn:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    return Conn(s)


def tunnel(proxy, host: str, port: int = 443, timeout: float = 15):
    """Opens a CONNECT tunnel; returns (Conn, Response) — the Conn is only usable on 2xx."""
    c = connect(proxy, timeout)
    c.send(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host, port, host, port)).encode())
    r = c.response("CONNECT")
    return c, r


def client_tls_context(cafile: str, check_hostname: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.check_hostname = check_hostname
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def start_tls(c: Conn, proxy, host: str, sni: str | None = "same",
              check_hostname: bool = True) -> Conn:
    """TLS over an accepted tunnel, trusting the proxy's CA. sni="same" uses host."""
    server_hostname = host if sni == "same" else sni
    ctx = client_tls_context(proxy.ca_pem, check_hostname=check_hostname and bool(server_hostname))
    c.f.close()
    return Conn(ctx.wrap_socket(c.sock, server_hostname=server_hostname))


def tls_tunnel(proxy, host: str, port: int = 443, sni: str | None = "same",
               check_hostname: bool = True, timeout: float = 15) -> Conn:
    """CONNECT host:port, expect 200, then TLS with the proxy's CA."""
    c, r = tunnel(proxy, host, port, timeout)
    if r.status != 200:
        c.close()
        raise AssertionError("CONNECT %s:%d answered %r" % (host, port, r))
    return start_tls(c, proxy, host, sni, check_hostname)


# ---- WebSocket client ------------------------------------------------------------------------


def ws_handshake(conn: Conn, target: str, host: str, key: str = "dGhlIHNhbXBsZSBub25jZQ=="):
    conn.send(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (target, host, key)).encode())
    version, status, reason, headers = read_head(conn.f)
    return Response(version, status, reason, headers, b"")


# ---- misc ------------------------------------------------------------------------------------


def wait_readable(fd: int, timeout: float) -> bool:
    r, _, _ = select.select([fd], [], [], timeout)
    return bool(r)


def poll_until(predicate, timeout: float, interval: float = 0.02, what: str = "condition"):
    """Evaluates predicate until it returns a true value (upper bound `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)
