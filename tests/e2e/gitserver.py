# SPDX-License-Identifier: Apache-2.0
"""A git smart-HTTP server over HTTPS for the e2e client tests (standard library + git).

`GitServer(root, certfile, keyfile)` listens on 127.0.0.1 (an ephemeral port) and runs
`git http-backend` as a CGI program for every request, with GIT_PROJECT_ROOT=root and
GIT_HTTP_EXPORT_ALL, so `git clone https://NAME/REPO.git` works for every bare repository
under root (NAME mapped to the port with the proxy's --resolve). It records each request it
received (method, path, query) *before* running the backend, so a test can assert that a
denied request never reached it.

`make_bare_repo(root, name, files)` creates root/NAME.git with one commit holding `files`
({relative path: text}); it returns the commit id.

Run on its own for manual checks:
  /usr/bin/python3 tests/e2e/gitserver.py --root DIR --cert C --key K [--port 8443]
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import ssl
import subprocess
import threading
import urllib.parse

GIT = shutil.which("git") or "/usr/bin/git"
CGI_TIMEOUT = 60


def _git_exec_path() -> str:
    return subprocess.run([GIT, "--exec-path"], capture_output=True, text=True,
                          check=True).stdout.strip()


def make_bare_repo(root: str, name: str, files: dict[str, str]) -> str:
    """Creates root/NAME.git (bare) with one commit of `files` on branch main; returns the
    commit id. Deterministic author and dates, no user configuration read."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": root,
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "landjail test", "GIT_AUTHOR_EMAIL": "test@origin.test",
           "GIT_COMMITTER_NAME": "landjail test", "GIT_COMMITTER_EMAIL": "test@origin.test",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    work = os.path.join(root, name + ".work")
    bare = os.path.join(root, name + ".git")

    def git(*args, cwd=None):
        subprocess.run([GIT, *args], cwd=cwd, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main", work)
    for rel, text in files.items():
        path = os.path.join(work, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "test content for " + name, cwd=work)
    git("clone", "-q", "--bare", work, bare)
    shutil.rmtree(work)
    commit = subprocess.run([GIT, "rev-parse", "HEAD"], cwd=bare, env=env, check=True,
                            capture_output=True, text=True).stdout.strip()
    return commit


class GitServer:
    """git http-backend behind an HTTPS listener on 127.0.0.1 (see the module docstring)."""

    def __init__(self, root: str, certfile: str, keyfile: str, port: int = 0):
        self.root = root
        self.lock = threading.Lock()
        self.records: list[dict] = []
        self.cgi_errors: list[str] = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        self.backend = os.path.join(_git_exec_path(), "git-http-backend")
        self.server = _Server(self, ("127.0.0.1", port), ctx)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, name="gitserver",
                                       daemon=True)
        self.thread.start()

    def received(self, path_prefix: str | None = None) -> list[dict]:
        """Requests received so far (dicts: method, path, query, host) whose path starts with
        path_prefix."""
        with self.lock:
            return [dict(r) for r in self.records
                    if path_prefix is None or r["path"].startswith(path_prefix)]

    def clear(self):
        with self.lock:
            self.records.clear()
            self.cgi_errors.clear()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, git: GitServer, addr, ctx: ssl.SSLContext):
        self.git = git
        self.ssl_ctx = ctx
        super().__init__(addr, _Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's thread, never in accept().
        request.settimeout(30)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass  # aborted clients are not the server's business in these tests


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "landjail-test-git"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._cgi()

    def do_POST(self):
        self._cgi()

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" not in te:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        out = []
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(out)
            out.append(self.rfile.read(size))
            self.rfile.read(2)

    def _cgi(self):
        git = self.server.git
        parts = urllib.parse.urlsplit(self.path)
        with git.lock:
            git.records.append({"method": self.command, "path": parts.path,
                                "query": parts.query, "host": self.headers.get("Host")})
        body = self._read_body()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "GIT_PROJECT_ROOT": git.root, "GIT_HTTP_EXPORT_ALL": "1",
               "GIT_CONFIG_NOSYSTEM": "1", "HOME": git.root,
               "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
               "REQUEST_METHOD": self.command, "PATH_INFO": urllib.parse.unquote(parts.path),
               "QUERY_STRING": parts.query, "REMOTE_ADDR": self.client_address[0],
               "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": self.headers.get("Content-Type") or ""}
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                            ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(header):
                env[var] = self.headers[header]
        p = subprocess.run([git.backend], input=body, env=env, capture_output=True,
                           timeout=CGI_TIMEOUT)
        if p.stderr:
            with git.lock:
                git.cgi_errors.append(p.stderr.decode(errors="replace"))
        head, sep, out = p.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, out = p.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name.strip(), value.strip()))
        if p.returncode != 0 and not sep:
            status, headers, out = 500, [("Content-Type", "text/plain")], p.stderr
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description="git smart-HTTP over HTTPS on 127.0.0.1")
    ap.add_argument("--root", required=True, help="directory of bare repositories")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    srv = GitServer(a.root, a.cert, a.key, a.port)
    print("listening on 127.0.0.1:%d" % srv.port, flush=True)
    try:
        srv.thread.join()
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
