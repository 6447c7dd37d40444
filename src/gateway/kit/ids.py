"""Opaque, prefixed ids that sort by creation time: 48-bit ms + 80 random bits, Crockford base32."""

from __future__ import annotations

import os
import re
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_BODY_LEN = 26  # 130 bits of base32 hold the 128-bit value
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0

_ID_RE = re.compile(r"^([a-z]+)_([0-9a-hjkmnp-tv-z]{26})$")


def _encode(value: int) -> str:
    out = []
    for _ in range(_BODY_LEN):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """A new id; within one process, ids made in the same millisecond still increase."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or a clock step back) millisecond: keep order by incrementing the random part.
            ms = _last_ms
            rand = (_last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand
    return f"{prefix}_{_encode((ms << 80) | rand)}"


def is_valid(value: str, prefix: str) -> bool:
    m = _ID_RE.match(value)
    return bool(m) and m.group(1) == prefix  # type: ignore[union-attr]
