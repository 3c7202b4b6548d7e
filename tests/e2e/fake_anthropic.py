# SPDX-License-Identifier: Apache-2.0
"""A fake Anthropic Messages API over HTTPS, for running Claude Code in the jail (test_claude.py).

Standard library only. `FakeAnthropic(certfile, keyfile, reply)` listens on 127.0.0.1 (an
ephemeral port) with the given certificate and answers:

  POST /v1/messages                 with "stream": true, a Server-Sent Events stream in the
                                    Messages API's order: message_start, content_block_start
                                    (text), ping, content_block_delta (text_delta) per piece of
                                    `reply`, content_block_stop, message_delta (stop_reason
                                    end_turn), message_stop; without it, one JSON message
  POST /v1/messages/count_tokens    {"input_tokens": N} (a rough count of the body)
  HEAD / GET anything else          404 with an Anthropic-style JSON error (type not_found_error)

Every request is recorded when its body has been read (`received()`: method, path, headers with
lower-case names, the body parsed as JSON when it is JSON) and printed to `log` (stderr by
default) as one line, so a test log shows what the client asked for. HTTP/1.1 with keep-alive;
the stream is sent chunked, one chunk per event, flushed as it goes.

Run on its own for manual checks:
  /usr/bin/python3 tests/e2e/fake_anthropic.py --cert C --key K [--port P] [--reply TEXT]
"""

from __future__ import annotations

import argparse
import http.server
import json
import ssl
import sys
import threading
import time
import uuid

MODEL_FALLBACK = "claude-fake-1"
API_KEY_HEADERS = ("x-api-key", "authorization")


class Recorded:
    """One request as the server received it."""

    def __init__(self, method: str, path: str, headers: dict, body: bytes):
        self.method = method
        self.path = path
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def summary(self) -> str:
        """One line: method, path, and what matters of a Messages request."""
        parts = [self.method, self.path]
        j = self.json if isinstance(self.json, dict) else {}
        for key in ("model", "stream", "max_tokens"):
            if key in j:
                parts.append("%s=%s" % (key, json.dumps(j[key])))
        if "messages" in j:
            parts.append("messages=%d" % len(j["messages"]))
        if "tools" in j:
            parts.append("tools=%d" % len(j["tools"]))
        for h in ("user-agent", "anthropic-version", "anthropic-beta"):
            if h in self.headers:
                parts.append("%s=%r" % (h, self.headers[h][:120]))
        parts.append("api_key=%s" % ("yes" if self.api_key() else "no"))
        return " ".join(parts)

    def api_key(self) -> str | None:
        """The key the client sent (x-api-key, or a Bearer token), else None."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    def last_user_text(self) -> str:
        """The text of the last user message of a Messages request ("" when there is none)."""
        j = self.json if isinstance(self.json, dict) else {}
        for m in reversed(j.get("messages") or []):
            if m.get("role") != "user":
                continue
            c = m.get("content")
            if isinstance(c, str):
                return c
            return " ".join(b.get("text", "") for b in c or [] if isinstance(b, dict)
                            and b.get("type") == "text")
        return ""


def _sse(event: str, data: dict) -> bytes:
    return ("event: %s\ndata: %s\n\n" % (event, json.dumps(data))).encode()


def message_events(reply: str, model: str, input_tokens: int) -> list[bytes]:
    """The SSE events of one streamed text reply, in the order the Messages API sends them."""
    msg_id = "msg_fake_" + uuid.uuid4().hex[:20]
    words = reply.split(" ")
    pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    out = [_sse("message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        _sse("ping", {"type": "ping"})]
    for p in pieces:
        out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": p}}))
    out += [_sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                   "usage": {"output_tokens": len(pieces)}}),
            _sse("message_stop", {"type": "message_stop"})]
    return out


def message_json(reply: str, model: str, input_tokens: int) -> dict:
    """The same reply as one non-streamed Message object."""
    return {"id": "msg_fake_" + uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
            "model": model, "content": [{"type": "text", "text": reply}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": len(reply.split())}}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-anthropic/1"
    fake: "FakeAnthropic"  # set on the subclass made per server

    def log_message(self, fmt, *args):  # the summary line replaces http.server's access log
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _record(self) -> Recorded:
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        r = Recorded(self.command, self.path, headers, body)
        self.fake._add(r)
        return r

    def _send_json(self, status: int, obj: dict, extra=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_fake_" + uuid.uuid4().hex[:16])
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _not_found(self):
        self._send_json(404, {"type": "error", "error": {
            "type": "not_found_error", "message": "fake-anthropic: no %s %s" % (
                self.command, self.path)}})

    def _stream(self, events: list[bytes]):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", "req_fake_" + uuid.uuid4().hex[:16])
        self.end_headers()
        for ev in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            self.wfile.flush()
            time.sleep(self.fake.event_delay)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_POST(self):
        r = self._record()
        path = self.fake.api_path(self.path)
        j = r.json if isinstance(r.json, dict) else {}
        if path == "/v1/messages/count_tokens":
            self._send_json(200, {"input_tokens": max(1, len(r.raw) // 4)})
        elif path == "/v1/messages":
            if not r.api_key():
                self._send_json(401, {"type": "error", "error": {
                    "type": "authentication_error", "message": "fake-anthropic: no API key"}})
                return
            model = j.get("model") or MODEL_FALLBACK
            tokens = max(1, len(r.raw) // 4)
            if j.get("stream"):
                self._stream(message_events(self.fake.reply, model, tokens))
            else:
                self._send_json(200, message_json(self.fake.reply, model, tokens))
        else:
            self._not_found()

    def do_GET(self):
        self._record()
        self._not_found()

    def do_HEAD(self):
        self._record()
        self._not_found()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    fake: "FakeAnthropic"

    def verify_request(self, request, client_address) -> bool:
        self.fake._connected()
        return True


class FakeAnthropic:
    """The server (see the module docstring): .port, .received(), .messages(), .connections,
    stop()."""

    def __init__(self, certfile: str, keyfile: str, reply: str, host: str = "127.0.0.1",
                 port: int = 0, log=None, event_delay: float = 0.01, prefix: str = ""):
        self.reply = reply
        # A path prefix the API is served under, as behind Coder's AI Gateway
        # (/api/v2/aibridge/anthropic): /PREFIX/v1/messages is the Messages API.
        self.prefix = prefix.rstrip("/")
        self.event_delay = event_delay
        self.log = log  # None: sys.stderr at the time of each line (pytest's capture)
        self.requests: list[Recorded] = []
        self.connections = 0  # TCP connections accepted (TLS handshake done)
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = _Server((host, port), handler)
        self.httpd.fake = self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="fake-anthropic-%d" % self.port)
        self._thread.start()

    def _add(self, r: Recorded):
        with self._lock:
            self.requests.append(r)
        print("fake-anthropic: %s" % r.summary(), file=self.log or sys.stderr, flush=True)

    def _connected(self):
        with self._lock:
            self.connections += 1

    def received(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    def api_path(self, target: str) -> str:
        """The API's path of a request target: without the query and the prefix."""
        path = target.split("?", 1)[0]
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path[len(self.prefix):]
        return path

    def messages(self) -> list[Recorded]:
        """The POST /v1/messages requests received so far."""
        return [r for r in self.received()
                if r.method == "POST" and self.api_path(r.path) == "/v1/messages"]

    def clear(self):
        with self._lock:
            self.requests.clear()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--reply", default="hello from the fake Anthropic API")
    a = ap.parse_args()
    fake = FakeAnthropic(a.cert, a.key, a.reply, port=a.port)
    print("listening on 127.0.0.1:%d" % fake.port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
