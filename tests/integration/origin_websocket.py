# SPDX-License-Identifier: Apache-2.0
"""WebSocket framing (RFC 6455, by hand) shared by the origin's /ws endpoint
(origin_endpoints.py) and the tests' client: the accept key, encoding a frame, reading one.
"""
from __future__ import annotations

import base64
import hashlib
import struct



WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---- WebSocket framing (shared with the tests' client) ---------------------------------------

WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG = 1, 2, 8, 9, 10


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_encode(opcode: int, payload: bytes, mask: bool) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = bytes([0x37, 0xFA, 0x21, 0x3D])
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def _read_exact(reader, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = reader.read(n - len(out))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def ws_read_frame(reader):
    """Reads one frame from a binary file-like object: (fin, opcode, masked, payload)."""
    h = _read_exact(reader, 2)
    fin, opcode, masked, n = bool(h[0] & 0x80), h[0] & 0x0F, bool(h[1] & 0x80), h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", _read_exact(reader, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", _read_exact(reader, 8))[0]
    key = _read_exact(reader, 4) if masked else None
    payload = _read_exact(reader, n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return fin, opcode, masked, payload
