"""Access tokens (POST /v1/oauth/token) on the real server: issuance, use, and every refusal."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from pydantic import SecretStr

from auth.credentials import (
    PAYMENT,
    access_token,
    add_key,
    bearer,
    crafted,
    new_merchant,
    revoke,
    token_response,
)
from support import JWT_KID, JWT_SECRET, Gateway, assert_problem, configured_app

ALL_SCOPES = (
    "payments:read payments:write refunds:write events:read webhooks:write provider_accounts:write "
    "payouts:read payouts:write"
)


def claims_of(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(
        token, JWT_SECRET, algorithms=["HS256"], audience="gateway-api", issuer="gateway"
    )
    return decoded


async def test_a_secret_key_gets_a_token_with_the_claims(gateway: Gateway, client: httpx.AsyncClient) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    before = int(time.time())
    r = await token_response(client, key.secret)
    assert r.status_code == 200, r.text
    assert (r.headers["cache-control"], r.headers["pragma"]) == ("no-store", "no-cache")
    body = r.json()
    token = body.pop("access_token")
    assert body == {"token_type": "Bearer", "expires_in": 900, "scope": ALL_SCOPES}
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": JWT_KID}
    claims = claims_of(token)
    jti = claims.pop("jti")
    iat = claims.pop("iat")
    assert isinstance(jti, str)
    assert len(jti) == 32
    assert isinstance(iat, int)
    assert before <= iat <= time.time()
    assert claims == {
        "iss": "gateway",
        "aud": "gateway-api",
        "sub": merchant,
        "mode": "test",
        "key_id": key.id,
        "key_type": "secret",
        "exp": iat + 900,
    }
    assert key.secret not in token
    # The token works wherever the key does.
    assert (await client.get("/v1/payments", headers=bearer(token))).status_code == 200
    r = await client.post(
        "/v1/payments", json=PAYMENT, headers=bearer(token) | {"Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 201, r.text
    listed = await client.get("/v1/payments", headers=key.auth)
    assert [p["id"] for p in listed.json()["data"]] == [r.json()["id"]]


async def test_a_narrowed_token_carries_only_the_scopes_asked_for(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    r = await token_response(
        client, key.secret, {"grant_type": "client_credentials", "scope": "events:read payments:read"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "payments:read events:read"
    token = r.json()["access_token"]
    assert claims_of(token)["scope"] == "payments:read events:read"
    assert (await client.get("/v1/payments", headers=bearer(token))).status_code == 200
    assert (await client.get("/v1/events", headers=bearer(token))).status_code == 200
    r = await client.post(
        "/v1/payments", json=PAYMENT, headers=bearer(token) | {"Idempotency-Key": str(uuid.uuid4())}
    )
    problem = assert_problem(r, 403, "insufficient_scope")
    assert problem["detail"] == "This key may not do this: it needs the `payments:write` scope."


async def test_a_restricted_keys_token_holds_its_scopes_and_cannot_widen_them(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant, "restricted", scopes=["payments:read", "events:read"])
    token = await access_token(client, key.secret)
    assert claims_of(token)["key_type"] == "restricted"
    assert claims_of(token)["scope"] == "payments:read events:read"
    assert (await client.get("/v1/events", headers=bearer(token))).status_code == 200
    assert_problem(
        await client.get("/v1/webhook-endpoints", headers=bearer(token)), 403, "insufficient_scope"
    )
    narrowed = await access_token(client, key.secret, "events:read")
    assert_problem(await client.get("/v1/payments", headers=bearer(narrowed)), 403, "insufficient_scope")

    wider = {"grant_type": "client_credentials", "scope": "payments:read payments:write"}
    problem = assert_problem(await token_response(client, key.secret, wider), 400, "invalid_scope")
    assert (problem["detail"], problem["error"]) == (
        "The key does not hold: payments:write.",
        "invalid_scope",
    )
    unknown = {"grant_type": "client_credentials", "scope": "payments:read admin"}
    problem = assert_problem(await token_response(client, key.secret, unknown), 400, "invalid_scope")
    assert problem["detail"].startswith("No such scope: admin (scopes: payments:read, ")


async def test_token_requests_that_are_refused(gateway: Gateway, client: httpx.AsyncClient) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    publishable = await add_key(gateway, merchant, "publishable")

    r = await client.post("/v1/oauth/token", data={"grant_type": "client_credentials"})
    problem = assert_problem(r, 401, "invalid_client")
    assert (problem["error"], r.headers["www-authenticate"]) == ("invalid_client", 'Basic realm="gateway"')
    r = await client.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, headers=key.auth)
    assert_problem(r, 401, "invalid_client")  # the key goes as Basic credentials, not Bearer

    r = await token_response(client, "sk_test_" + "0" * 32)
    problem = assert_problem(r, 401, "invalid_api_key")
    assert (problem["error"], r.headers["www-authenticate"]) == ("invalid_client", 'Basic realm="gateway"')
    token = await access_token(client, key.secret)
    assert_problem(await token_response(client, token), 401, "invalid_api_key")  # no token for a token

    problem = assert_problem(await token_response(client, publishable.secret), 403, "unauthorized_client")
    assert problem["detail"] == (
        "A publishable key cannot be exchanged for an access token; use a secret or restricted key."
    )
    problem = assert_problem(await token_response(client, key.secret, {}), 400, "invalid_request")
    assert problem["detail"] == "Send `grant_type=client_credentials`."
    for form in ({"grant_type": "password"}, {"grant_type": ""}):
        problem = assert_problem(
            await token_response(client, key.secret, form), 400, "unsupported_grant_type"
        )
        assert problem["error"] == "unsupported_grant_type"
    r = await client.post(
        "/v1/oauth/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(key.secret, ""),
    )
    assert assert_problem(r, 400, "invalid_request")["error"] == "invalid_request"
    r = await client.post("/v1/oauth/token", json={"grant_type": "client_credentials"}, auth=(key.secret, ""))
    problem = assert_problem(r, 415, "unsupported_media_type")
    assert problem["supported"] == ["application/x-www-form-urlencoded"]
    problem = assert_problem(
        await token_response(client, key.secret, {"grant_type": "client_credentials", "scope": " "}),
        400,
        "invalid_scope",
    )


async def test_a_token_never_outlives_its_key(gateway: Gateway, client: httpx.AsyncClient) -> None:
    merchant = await new_merchant(gateway)
    expires_at = datetime.now(UTC) + timedelta(seconds=120)
    key = await add_key(gateway, merchant, expires_at=expires_at)
    r = await token_response(client, key.secret)
    assert 118 <= r.json()["expires_in"] <= 120
    assert claims_of(r.json()["access_token"])["exp"] == int(expires_at.timestamp())


async def test_tokens_that_do_not_verify_are_refused(gateway: Gateway, client: httpx.AsyncClient) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    assert (await client.get("/v1/payments", headers=bearer(crafted(key)))).status_code == 200  # the control

    cases = {
        "expired": (crafted(key, exp=int(time.time()) - 5), "access_token_expired"),
        "alg none": (crafted(key, algorithm="none"), "invalid_access_token"),
        "another key, same kid": (
            crafted(key, secret="another-secret-of-at-least-32-bytes!!"),
            "invalid_access_token",
        ),
        "unknown kid": (crafted(key, kid="test-2"), "invalid_access_token"),
        "wrong audience": (crafted(key, aud="someone-else"), "invalid_access_token"),
        "wrong issuer": (crafted(key, iss="https://elsewhere.example"), "invalid_access_token"),
        "no exp": (crafted(key, exp=None), "invalid_access_token"),
        "unknown scope": (crafted(key, scope="payments:read everything"), "invalid_access_token"),
        "malformed": ("eyJhbGciOiJIUzI1NiJ9.not-base64!.x", "invalid_access_token"),
    }
    details = {}
    for name, (token, code) in cases.items():
        r = await client.get("/v1/payments", headers=bearer(token))
        details[name] = assert_problem(r, 401, code)["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert details["expired"] == "The access token has expired; get a new one from POST /v1/oauth/token."
    assert details["alg none"] == "The access token is not valid: its algorithm is not HS256."
    assert details["another key, same kid"] == "The access token is not valid: its signature does not verify."
    assert details["unknown kid"] == "The access token was not signed by this gateway (unknown key id)."
    assert (
        details["wrong audience"] == "The access token is not valid: it is not meant for this API (audience)."
    )
    assert (
        details["wrong issuer"]
        == "The access token is not valid: it was not issued by this gateway (issuer)."
    )
    # An expired token with a bad signature is judged by its signature first.
    forged_and_old = crafted(key, secret="another-secret-of-at-least-32-bytes!!", exp=int(time.time()) - 5)
    assert_problem(
        await client.get("/v1/payments", headers=bearer(forged_and_old)), 401, "invalid_access_token"
    )


async def test_a_disabled_merchants_tokens_get_403(gateway: Gateway, client: httpx.AsyncClient) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    token = await access_token(client, key.secret)
    await gateway.execute("UPDATE merchants SET status = 'disabled' WHERE id = :id", id=merchant)
    await gateway.ctx.broadcast.publish("merchant", merchant)
    assert_problem(await client.get("/v1/payments", headers=bearer(token)), 403, "merchant_disabled")
    assert_problem(await token_response(client, key.secret), 403, "merchant_disabled")


async def test_a_revoked_keys_tokens_are_refused(gateway: Gateway, client: httpx.AsyncClient) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    other = await add_key(gateway, merchant)
    token, others = await access_token(client, key.secret), await access_token(client, other.secret)
    assert (await client.get("/v1/payments", headers=bearer(token))).status_code == 200
    await revoke(gateway, key)
    problem = assert_problem(
        await client.get("/v1/payments", headers=bearer(token)), 401, "invalid_access_token"
    )
    assert problem["detail"] == "The key this access token was made from has been revoked."
    assert (await client.get("/v1/payments", headers=bearer(others))).status_code == 200


async def test_the_token_route_is_off_without_signing_keys(gateway: Gateway) -> None:
    settings = gateway.ctx.settings.model_copy(update={"jwt_keys": None})
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    async with configured_app(settings) as c:
        problem = assert_problem(await token_response(c, key.secret), 404, "access_tokens_disabled")
        assert problem["detail"] == "This gateway issues no access tokens: GATEWAY_JWT_KEYS is unset."
        # Off before the key is looked up or the body read; without credentials still 401 first.
        r = await c.post("/v1/oauth/token", json={"grant_type": "client_credentials"}, auth=("sk_test_x", ""))
        assert_problem(r, 404, "access_tokens_disabled")
        assert_problem(await c.post("/v1/oauth/token"), 401, "invalid_client")
        r = await c.get("/v1/payments", headers=bearer(crafted(key)))
        assert_problem(r, 401, "invalid_access_token")


@pytest.mark.parametrize(
    "keys",
    ["short:tooshort", "no-colon-here-but-long-enough-0123456789", "a:" + "x" * 32 + ",a:" + "y" * 32],
)
async def test_unusable_signing_keys_stop_the_gateway_before_it_starts(gateway: Gateway, keys: str) -> None:
    settings = gateway.ctx.settings.model_copy(update={"jwt_keys": SecretStr(keys)})
    with pytest.raises(ValueError, match="GATEWAY_JWT_KEYS") as raised:
        async with configured_app(settings):
            pass
    assert "x" * 32 not in str(raised.value)
    assert "tooshort" not in str(raised.value)
