"""Secrets at rest: the column holds AES-GCM ciphertext naming its key, never the credentials; a
ciphertext moved onto another merchant's row does not open there."""

from __future__ import annotations

import httpx
import pytest

from gateway.kit.secretbox import SecretBoxError
from gateway.provider_accounts import repository
from gateway.provider_accounts.sealing import unseal
from provider_account_data import assert_no_secret, credentials
from support import Gateway, Merchant, assert_problem


async def test_the_row_holds_ciphertext_and_its_key_id(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    creds = credentials("mpesa")
    r = await client.put("/v1/provider-accounts/mpesa", json={"credentials": creds}, headers=merchant.auth)
    assert r.status_code == 200, r.text
    row = await gateway.ctx.db.fetchrow(
        "SELECT secrets, secrets_key_id, hints::text, settings::text FROM provider_accounts WHERE id = $1",
        r.json()["id"],
    )
    assert row is not None
    secrets_text, key_id = row[0], row[1]
    assert key_id == "test"
    assert secrets_text.startswith("v1.test.")
    # Every credential, identifiers included (the shortcode is only six digits, so it is checked whole).
    everything = " ".join(row[i] for i in range(4))
    assert_no_secret(everything, [v for v in creds.values() if len(v) > 6])
    assert creds["shortcode"] not in everything
    assert r.json()["webhook_url"].rsplit("/", 1)[1] not in everything  # the callback token too


async def test_a_ciphertext_copied_to_another_merchants_row_does_not_open(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    a = await client.put(
        "/v1/provider-accounts/mpesa", json={"credentials": credentials("mpesa")}, headers=merchant.auth
    )
    b = await client.put(
        "/v1/provider-accounts/mpesa", json={"credentials": credentials("mpesa")}, headers=other_merchant.auth
    )
    assert (a.status_code, b.status_code) == (200, 200)
    await gateway.execute(
        "UPDATE provider_accounts SET secrets = (SELECT secrets FROM provider_accounts WHERE id = :a) "
        "WHERE id = :b",
        a=a.json()["id"],
        b=b.json()["id"],
    )
    row = await repository.get(gateway.ctx.db, b.json()["id"])
    assert row is not None
    keyring = gateway.ctx.settings.keyring()
    assert keyring is not None
    with pytest.raises(SecretBoxError):
        unseal(
            keyring,
            row.secrets,
            account_id=row.id,
            merchant_id=row.merchant_id,
            provider=row.provider,
            livemode=row.livemode,
        )
    # The API says so, and shows nothing of A's.
    r = await client.get("/v1/provider-accounts/mpesa", headers=other_merchant.auth)
    assert_problem(r, 409, "secrets_key_missing")
    assert a.json()["webhook_url"].rsplit("/", 1)[1] not in r.text
    # A's own row still opens.
    assert (await client.get("/v1/provider-accounts/mpesa", headers=merchant.auth)).json() == a.json()
