"""Idempotency records in Redis: a short lock while a request runs, then its stored result."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from gateway.redis_batch import RedisBatcher


@dataclass(frozen=True)
class StoredResult:
    fingerprint: str
    done: bool
    status: int = 0
    body: bytes = b""
    media_type: str = "application/json"


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the method, path and canonical JSON body: key order and whitespace do not count."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def valid_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and key.isprintable() and key.isascii()


def redis_key(merchant_id: str, livemode: bool, key: str) -> str:
    # Hashing bounds the Redis key's size whatever the client sends.
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"idem:{merchant_id}:{'live' if livemode else 'test'}:{digest}"


# SET NX, or what the key holds, in one round trip (Redis 7 has SET NX GET; 6.2 refuses the pair).
CLAIM_OR_READ = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    return false
end
return redis.call('GET', KEYS[1])
"""


class IdempotencyStore:
    def __init__(self, redis: RedisBatcher, ttl_seconds: int, lock_seconds: int):
        self.redis = redis
        self.ttl = ttl_seconds
        self.lock_seconds = lock_seconds

    async def claim(self, key: str, fingerprint: str) -> StoredResult | None:
        """None if we now hold the key, else what is stored under it."""
        lock = orjson.dumps({"fp": fingerprint, "done": False})
        # EVAL, not EVALSHA: the script is small, Redis caches it, and no NOSCRIPT dance in pipelines.
        raw = await self.redis.call("EVAL", CLAIM_OR_READ, 1, key, lock, self.lock_seconds)
        return None if raw is None else _decode(raw)

    async def complete(self, key: str, fingerprint: str, status: int, body: bytes, media_type: str) -> None:
        record = orjson.dumps(
            {"fp": fingerprint, "done": True, "status": status, "body": body.decode(), "mt": media_type}
        )
        await self.redis.call("SET", key, record, "EX", self.ttl)

    async def release(self, key: str) -> None:
        await self.redis.call("DEL", key)


def _decode(raw: bytes | str) -> StoredResult:
    d = orjson.loads(raw)
    if not d["done"]:
        return StoredResult(fingerprint=d["fp"], done=False)
    return StoredResult(
        fingerprint=d["fp"], done=True, status=d["status"], body=d["body"].encode(), media_type=d["mt"]
    )
