"""Each provider's credentials schema: a wrong field set, a bad format or a key of the other mode is
422 validation_error naming the field, in the renderer's shape (errors: loc, msg, type); nothing is
written and the answer holds no secret."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from provider_account_data import assert_no_secret, credentials, live_key, secret_values
from support import Gateway, Merchant, assert_problem

REQUIRED = {
    "stripe": ["secret_key", "webhook_secret"],
    "paystack": ["secret_key"],
    "flutterwave": ["secret_key", "secret_hash"],
    "mpesa": ["consumer_key", "consumer_secret", "shortcode", "passkey"],
    "momo": ["subscription_key", "api_user", "api_key", "target_environment"],
    "wave": ["api_key", "webhook_secret"],
}
MISSING = [pytest.param(p, f, id=f"{p}-without-{f}") for p, fields in REQUIRED.items() for f in fields]


def drop(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


async def put(client: httpx.AsyncClient, merchant: Merchant, provider: str, body: Any) -> httpx.Response:
    return await client.put(f"/v1/provider-accounts/{provider}", json=body, headers=merchant.auth)


async def no_account(gateway: Gateway, merchant: Merchant) -> None:
    assert (
        await gateway.scalar("SELECT count(*) FROM provider_accounts WHERE merchant_id = :m", m=merchant.id)
        == 0
    )


def one_error(r: httpx.Response, loc: list[str], type_: str) -> dict[str, Any]:
    problem = assert_problem(r, 422, "validation_error")
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(loc, type_)], problem
    assert problem["detail"] == "Invalid value for: " + ".".join(loc[1:])
    return problem


@pytest.mark.parametrize(("provider", "field"), MISSING)
async def test_a_missing_field_is_named(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider: str, field: str
) -> None:
    creds = credentials(provider)
    r = await put(client, merchant, provider, {"credentials": drop(creds, field)})
    one_error(r, ["body", "credentials", field], "missing")
    assert_no_secret(r.text, secret_values(provider, creds))
    await no_account(gateway, merchant)


@pytest.mark.parametrize("provider", list(REQUIRED))
async def test_an_unknown_field_is_named(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider: str
) -> None:
    creds = credentials(provider)
    # A field of another provider (a typical paste into the wrong form), and the callback token,
    # which the gateway makes itself and never takes.
    stray = "api_key" if provider != "wave" and provider != "momo" else "secret_key"
    r = await put(client, merchant, provider, {"credentials": creds | {stray: "x" * 20}})
    one_error(r, ["body", "credentials", stray], "extra_forbidden")
    r = await put(client, merchant, provider, {"credentials": creds | {"callback_token": "t" * 43}})
    one_error(r, ["body", "credentials", "callback_token"], "extra_forbidden")
    r = await put(client, merchant, provider, {"credentials": creds, "settings": {"colour": "red"}})
    one_error(r, ["body", "settings", "colour"], "extra_forbidden")
    assert_no_secret(r.text, secret_values(provider, creds))
    await no_account(gateway, merchant)


CASES = [
    # A key of the other mode: a live key in test mode is refused.
    pytest.param(
        "stripe", {"secret_key": "sk_live_" + "a" * 30}, {}, "credentials", "secret_key", id="stripe-live-key"
    ),
    pytest.param(
        "stripe",
        {"secret_key": "pk_test_" + "a" * 30},
        {},
        "credentials",
        "secret_key",
        id="stripe-publishable",
    ),
    pytest.param(
        "stripe", {"webhook_secret": "not-a-whsec"}, {}, "credentials", "webhook_secret", id="stripe-whsec"
    ),
    pytest.param(
        "paystack",
        {"secret_key": "sk_live_" + "a" * 30},
        {},
        "credentials",
        "secret_key",
        id="paystack-live-key",
    ),
    pytest.param(
        "paystack",
        {"secret_key": "pk_test_" + "a" * 30},
        {},
        "credentials",
        "secret_key",
        id="paystack-public-key",
    ),
    pytest.param(
        "flutterwave",
        {"secret_key": "FLWSECK-" + "a" * 30 + "-X"},
        {},
        "credentials",
        "secret_key",
        id="flutterwave-live-key",
    ),
    pytest.param(
        "mpesa", {"shortcode": "17437"[:4]}, {}, "credentials", "shortcode", id="mpesa-shortcode-short"
    ),
    pytest.param(
        "mpesa", {"shortcode": "17437a"}, {}, "credentials", "shortcode", id="mpesa-shortcode-letters"
    ),
    pytest.param("mpesa", {"till_number": "12"}, {}, "credentials", "till_number", id="mpesa-till-short"),
    pytest.param(
        "mpesa",
        {},
        {"transaction_type": "CustomerBuyGoodsOnline"},
        "credentials",
        "till_number",
        id="mpesa-buygoods-without-till",
    ),
    pytest.param(
        "mpesa",
        {},
        {"transaction_type": "Paybill"},
        "settings",
        "transaction_type",
        id="mpesa-transaction-type",
    ),
    pytest.param(
        "mpesa",
        {"initiator_name": None},
        {},
        "credentials",
        "security_credential",
        id="mpesa-credential-without-initiator",
    ),
    pytest.param("mpesa", {"consumer_key": "   "}, {}, "credentials", "consumer_key", id="mpesa-blank-key"),
    pytest.param("mpesa", {"passkey": 123456}, {}, "credentials", "passkey", id="mpesa-passkey-number"),
    pytest.param("momo", {"api_user": "not-a-uuid"}, {}, "credentials", "api_user", id="momo-api-user"),
    pytest.param(
        "momo",
        {"target_environment": "mtnuganda"},
        {},
        "credentials",
        "target_environment",
        id="momo-live-environment-in-test",
    ),
    pytest.param(
        "momo",
        {"disbursement_api_key": None},
        {},
        "credentials",
        "disbursement_api_key",
        id="momo-disbursement-incomplete",
    ),
    pytest.param(
        "momo", {}, {"base_url": "http://momo.example"}, "settings", "base_url", id="momo-base-url-not-https"
    ),
]


@pytest.mark.parametrize(("provider", "changes", "settings", "where", "field"), CASES)
async def test_a_bad_value_is_named(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    provider: str,
    changes: dict[str, Any],
    settings: dict[str, Any],
    where: str,
    field: str,
) -> None:
    creds = {k: v for k, v in (credentials(provider) | changes).items() if v is not None}
    r = await put(client, merchant, provider, {"credentials": creds, "settings": settings})
    problem = assert_problem(r, 422, "validation_error")
    assert [e["loc"] for e in problem["errors"]] == [["body", where, field]], problem
    # Past its published prefix (which an error may name), no part of a value is echoed.
    assert_no_secret(r.text, [str(v)[-16:] for v in creds.values() if len(str(v)) >= 16])
    await no_account(gateway, merchant)


async def test_live_mode_checks(client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant) -> None:
    live = await live_key(gateway, merchant)
    # A test key in live mode, MoMo's sandbox in live mode, and a live MoMo account without its host.
    r = await client.put(
        "/v1/provider-accounts/stripe", json={"credentials": credentials("stripe")}, headers=live
    )
    one_error(r, ["body", "credentials", "secret_key"], "value_error")
    momo = credentials("momo", live=True)
    r = await client.put("/v1/provider-accounts/momo", json={"credentials": momo}, headers=live)
    one_error(r, ["body", "settings", "base_url"], "value_error")
    r = await client.put(
        "/v1/provider-accounts/momo",
        json={
            "credentials": momo | {"target_environment": "sandbox"},
            "settings": {"base_url": "https://x.example"},
        },
        headers=live,
    )
    one_error(r, ["body", "credentials", "target_environment"], "value_error")
    await no_account(gateway, merchant)


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        # No credentials object is an empty one (cash takes none): Paystack's then names its field.
        ({}, ["body", "credentials", "secret_key"], "missing"),
        ({"credentials": "sk_test_abc"}, ["body", "credentials"], "dict_type"),
        ({"credentials": {}, "extra": 1}, ["body", "extra"], "extra_forbidden"),
    ],
)
async def test_the_envelope(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    body: dict[str, Any],
    loc: list[str],
    type_: str,
) -> None:
    one_error(await put(client, merchant, "paystack", body), loc, type_)
    await no_account(gateway, merchant)
