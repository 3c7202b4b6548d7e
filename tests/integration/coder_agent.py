"""A fake Coder workspace agent for the audit forwarding tests: it listens on a unix stream
socket as the agent does (boundary's "log proxy"), never writes, and reads frames — byte 0 a
tag, bytes 1-3 the payload's length (big-endian, at most 32768), then a protobuf payload —
decoding them with the protobuf runtime and the modules protoc generated from
proxy/audit/proto/*.proto ($LANDJAIL_PROTO_PY, made by `make test-integration`/`test-e2e`).

Like the real agent it closes a connection that sends another tag or a longer frame, and
records that as a protocol error. It can stall (stop reading, as a busy agent does), vanish
(close and unlink its socket) and come back on the same path."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

_PY = os.environ.get("LANDJAIL_PROTO_PY") or str(
    Path(__file__).resolve().parent.parent.parent / "build" / "gen" / "py")
if _PY not in sys.path:
    sys.path.insert(0, _PY)

try:
    from proxy.audit.proto import agent_pb2, codec_pb2  # noqa: E402
except ImportError as e:  # pragma: no cover - the Makefile generates them
    raise ImportError("the protobuf modules of proxy/audit/proto are missing from %s (run the "
                      "tests through make, which runs protoc): %s" % (_PY, e))

MAX_PAYLOAD = 32768


class FakeAgent:
    def __init__(self, path: Path | str):
        self.path = str(path)
        self.lock = threading.Lock()
        self.logs: list[dict] = []        # every BoundaryLog received, in arrival order
        self.requests: list[dict] = []    # one per ReportBoundaryLogsRequest: session, name, n
        self.frames: list[tuple[int, int]] = []  # (tag, payload length)
        self.statuses: list[tuple[int, int]] = []  # BoundaryStatus (channel_full, batch_full)
        self.errors: list[str] = []       # protocol violations
        self.connections = 0
        self._stalled = threading.Event()
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.start()

    # ---- life ----
    def start(self):
        self._stop.clear()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        s.listen(16)
        s.settimeout(0.1)
        self._server = s
        t = threading.Thread(target=self._accept, args=(s,), daemon=True)
        t.start()
        self._threads.append(t)

    def vanish(self):
        """Closes the listener and every connection and removes the socket file."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        if self._server:
            self._server.close()
            self._server = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def stop(self):
        self.vanish()

    def stall(self, on: bool = True):
        """While stalled the agent accepts but reads nothing: the sender's writes block."""
        if on:
            self._stalled.set()
        else:
            self._stalled.clear()

    # ---- observations ----
    def wait_logs(self, n: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                got = list(self.logs)
            if len(got) >= n or time.monotonic() >= deadline:
                return got
            time.sleep(0.02)

    def sequence_numbers(self) -> list[int]:
        with self.lock:
            return sorted(x["sequence_number"] for x in self.logs)

    # ---- the agent's side of the protocol ----
    def _accept(self, server: socket.socket):
        while not self._stop.is_set():
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _read_exact(self, conn: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            if self._stop.is_set():
                return None
            if self._stalled.is_set():
                time.sleep(0.02)
                continue
            try:
                chunk = conn.recv(n - len(buf))
            except socket.timeout:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def _serve(self, conn: socket.socket):
        conn.settimeout(0.1)
        try:
            while True:
                head = self._read_exact(conn, 4)
                if head is None:
                    return
                tag, size = head[0], int.from_bytes(head[1:4], "big")
                if tag not in (1, 2) or size > MAX_PAYLOAD:
                    with self.lock:
                        self.errors.append("frame tag %d length %d" % (tag, size))
                    return  # the agent closes the connection
                payload = self._read_exact(conn, size)
                if payload is None:
                    return  # a cut frame is dropped
                self._frame(tag, payload)
        finally:
            conn.close()

    def _frame(self, tag: int, payload: bytes):
        try:
            if tag == 1:
                req = agent_pb2.ReportBoundaryLogsRequest.FromString(payload)
            else:
                msg = codec_pb2.BoundaryMessage.FromString(payload)
                if msg.WhichOneof("msg") == "status":
                    with self.lock:
                        self.frames.append((tag, len(payload)))
                        self.statuses.append((msg.status.dropped_channel_full,
                                              msg.status.dropped_batch_full))
                    return
                req = msg.logs
        except Exception as e:  # noqa: BLE001 - any decoding failure is the sender's bug
            with self.lock:
                self.errors.append("undecodable tag-%d payload: %s" % (tag, e))
            return
        logs = []
        for log in req.logs:
            logs.append({
                "allowed": log.allowed,
                "time": log.time.seconds + log.time.nanos / 1e9,
                "kind": log.WhichOneof("resource"),
                "method": log.http_request.method,
                "url": log.http_request.url,
                "matched_rule": log.http_request.matched_rule,
                "sequence_number": log.sequence_number,
                "session_id": req.session_id,
                "confined_process_name": req.confined_process_name,
            })
        with self.lock:
            self.frames.append((tag, len(payload)))
            self.requests.append({"session_id": req.session_id,
                                  "confined_process_name": req.confined_process_name,
                                  "logs": len(req.logs)})
            self.logs.extend(logs)
