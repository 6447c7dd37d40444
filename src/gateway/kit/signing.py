"""HMAC signing helpers; comparisons are constant-time."""

from __future__ import annotations

import base64
import hashlib
import hmac


def hmac_hex(secret: bytes, message: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret, message, digest).hexdigest()


def hmac_base64(secret: bytes, message: bytes, digest: str = "sha256") -> str:
    return base64.b64encode(hmac.new(secret, message, digest).digest()).decode()


def matches_any(expected: list[str], given: str) -> bool:
    """Whether `given` equals any of `expected`; every one is compared (in constant time), so the
    time taken says nothing about which, or whether, one matched."""
    return any([constant_time_equal(e, given) for e in expected])


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def whsec_key(secret: str) -> bytes:
    """The raw key of a Standard Webhooks secret `whsec_<base64>`."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def standard_webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` as the Standard Webhooks spec signs."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(whsec_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_standard_webhook(
    secret: str,
    msg_id: str,
    timestamp: str,
    body: bytes,
    signature_header: str,
    *,
    now: int,
    tolerance: int = 300,
) -> bool:
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    expected = standard_webhook_signature(secret, msg_id, ts, body)
    # The header may carry several space-separated signatures (secret rotation).
    return any(constant_time_equal(expected, sig) for sig in signature_header.split())
