"""The scope check itself, for the principals no route of this suite sends yet: key management
(`SecretKey`, the keys API's) takes a secret key or its token not narrowed, nothing else."""

from __future__ import annotations

from gateway.api.deps import BearerPrincipal
from gateway.merchants.service import Principal

SECRET_ONLY = BearerPrincipal(None)


def principal(key_type: str, scopes: frozenset[str] | None = None) -> Principal:
    return Principal(merchant_id="mer_x", livemode=False, key_id="key_x", key_type=key_type, scopes=scopes)


def test_key_management_takes_a_secret_key_or_its_token_not_narrowed() -> None:
    assert SECRET_ONLY.allows(principal("secret"))
    every = frozenset({"payments:read", "payments:write", "refunds:write", "events:read", "webhooks:write"})
    for refused in (
        principal("secret", frozenset({"payments:read"})),  # a narrowed token
        principal("restricted", every),
        principal("publishable"),
    ):
        assert not SECRET_ONLY.allows(refused)
    error = SECRET_ONLY.refusal(principal("restricted", every))
    assert (error.status, error.code, error.extra) == (403, "insufficient_scope", {"required_scope": None})
    assert error.detail == "Only a secret key (or an access token made from one, not narrowed) may do this."
    assert SECRET_ONLY.refusal(principal("publishable")).detail == (
        "A publishable key may only confirm and read a payment with its client secret (in a browser); "
        "call this with a secret key."
    )


def test_a_route_that_takes_publishable_keys_lets_them_in() -> None:
    browser = BearerPrincipal("payments:write", publishable=True)
    assert browser.allows(principal("publishable"))
    assert browser.allows(principal("secret"))
    assert not browser.allows(principal("restricted", frozenset({"payments:read"})))
