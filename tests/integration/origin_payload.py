# SPDX-License-Identifier: Apache-2.0
"""The origin's deterministic payload (tests/integration/origin.py's /big endpoints and the tests
that check what arrived): MiB number i is a fixed non-periodic block with i in its first 8
bytes, so a reordered, repeated or dropped MiB changes the digest.
"""
from __future__ import annotations

import hashlib
import struct
import threading



MIB = 1 << 20


# ---- deterministic payload -------------------------------------------------------------------

_BASE_BLOCK: bytes | None = None
_BASE_LOCK = threading.Lock()


def _base_block() -> bytes:
    """1 MiB of non-periodic bytes (SHA-256 in counter mode), computed once."""
    global _BASE_BLOCK
    with _BASE_LOCK:
        if _BASE_BLOCK is None:
            _BASE_BLOCK = b"".join(
                hashlib.sha256(b"landjail-%d" % k).digest() for k in range(MIB // 32))
        return _BASE_BLOCK


def big_block(i: int) -> bytes:
    """MiB number i of the /big stream: the base block with i in its first 8 bytes, so a
    reordered, repeated or dropped MiB changes the digest."""
    return struct.pack(">Q", i) + _base_block()[8:]


def big_bytes_sha256(mb: int) -> str:
    h = hashlib.sha256()
    for i in range(mb):
        h.update(big_block(i))
    return h.hexdigest()
