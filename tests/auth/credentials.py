"""Keys of every type, made and revoked as the keys API will (rows, the Redis revocation list, the
broadcast), and access tokens made by the gateway or crafted by hand."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import jwt

from gateway.kit.ids import new_id
from gateway.merchants import repository
from gateway.merchants.revocations import REVOKED_KEYS
from gateway.merchants.service import create_merchant, generate_key
from support import JWT_KID, JWT_SECRET, Gateway

PAYMENT = {"amount": 900, "currency": "KES", "provider": "sandbox", "payment_method": "pm_action_success"}


@dataclass
class Key:
    id: str
    secret: str
    merchant_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


async def new_merchant(gateway: Gateway, name: str = "Auth merchant") -> str:
    return (await create_merchant(gateway.ctx.db, name)).merchant_id


async def add_key(
    gateway: Gateway,
    merchant_id: str,
    type: str = "secret",
    *,
    livemode: bool = False,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> Key:
    key_id, secret = new_id("key"), generate_key(livemode, type)
    async with gateway.ctx.db.transaction() as tx:
        await repository.add_key(
            tx, key_id, merchant_id, secret, livemode, type=type, scopes=scopes, expires_at=expires_at
        )
    return Key(key_id, secret, merchant_id)


async def revoke(gateway: Gateway, key: Key, *, announce: bool = True) -> None:
    """What revoking does: the row, the revocation list (for tokens), then the broadcast."""
    await gateway.execute("UPDATE api_keys SET revoked_at = now() WHERE id = :id", id=key.id)
    if announce:
        await announce_revocation(gateway, key)


async def announce_revocation(gateway: Gateway, key: Key) -> None:
    await gateway.ctx.redis.zadd(REVOKED_KEYS, {key.id: time.time()})
    await gateway.ctx.broadcast.publish("key", key.id)


async def token_response(
    client: httpx.AsyncClient, key: str, form: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    return await client.post(
        "/v1/oauth/token",
        data=form if form is not None else {"grant_type": "client_credentials"},
        auth=(key, ""),
        **kwargs,
    )


async def access_token(client: httpx.AsyncClient, key: str, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials"} | ({"scope": scope} if scope is not None else {})
    r = await token_response(client, key, form)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def crafted(
    key: Key, *, secret: str = JWT_SECRET, kid: str = JWT_KID, algorithm: str = "HS256", **changes: Any
) -> str:
    """A token as the gateway makes them, with `changes` to its claims (None removes one)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "gateway",
        "aud": "gateway-api",
        "sub": key.merchant_id,
        "mode": "test",
        "key_id": key.id,
        "key_type": "secret",
        "iat": now,
        "exp": now + 900,
        "jti": "jti-" + new_id("x"),
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    signing_key = secret if algorithm != "none" else ""  # PyJWT signs `none` with nothing
    return jwt.encode(claims, signing_key, algorithm=algorithm, headers={"kid": kid})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
