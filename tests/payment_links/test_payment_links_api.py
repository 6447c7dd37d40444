"""The merchant's API of payment links: create (and every refusal), list, retrieve, deactivate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from auth.credentials import add_key
from payment_links.links import create_link, key
from support import Gateway, Merchant, assert_problem

FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()


async def test_create_answers_the_link_with_its_public_url(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    link = await create_link(client, merchant, metadata={"course": "yoga"}, expires_at=FUTURE)

    assert link["id"].startswith("plink_")
    assert link["object"] == "payment_link"
    base = gateway.ctx.settings.base_url
    assert link["url"].startswith(f"{base}/l/")
    slug = link["url"].removeprefix(f"{base}/l/")
    assert len(slug) >= 22  # 16 random bytes, URL-safe base64
    assert link["active"] is True
    assert (link["amount"], link["currency"], link["description"], link["reusable"]) == (
        1500,
        "KES",
        "Yoga class",
        True,
    )
    assert (link["min_amount"], link["max_amount"], link["paid_at"]) == (None, None, None)
    assert link["metadata"] == {"course": "yoga"}
    assert link["livemode"] is False
    row = await gateway.scalar("SELECT slug FROM payment_links WHERE id = :id", id=link["id"])
    assert row == slug


async def test_two_links_never_share_a_slug(client: httpx.AsyncClient, merchant: Merchant) -> None:
    urls = {(await create_link(client, merchant))["url"] for _ in range(5)}
    assert len(urls) == 5


PAST = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"currency": "kes"}, "invalid_currency", "currency"),
    ({"currency": "XYZ"}, "invalid_currency", "currency"),
    ({"amount": 0}, "validation_error", "amount"),
    ({"amount": -5}, "validation_error", "amount"),
    ({"amount": 10**13}, "amount_too_large", "amount"),
    ({"amount": "15"}, "validation_error", "amount"),
    ({"description": ""}, "validation_error", "description"),
    ({"reusable": None}, "validation_error", "reusable"),
    ({"metadata": {"k" * 41: "v"}}, "invalid_metadata", "metadata"),
    ({"amount": 1500, "min_amount": 100}, "validation_error", "min_amount"),
    ({"amount": 1500, "max_amount": 100_000}, "validation_error", "max_amount"),
    ({"amount": None, "min_amount": 5000, "max_amount": 1000}, "validation_error", "max_amount"),
    ({"expires_at": PAST}, "validation_error", "expires_at"),
    ({"expires_at": "2099-01-01T00:00:00"}, "validation_error", "expires_at"),
    ({"expires_at": "tomorrow"}, "validation_error", "expires_at"),
    ({"provider": "sandbox"}, "validation_error", "provider"),
]


@pytest.mark.parametrize(("change", "code", "field"), BAD)
async def test_a_bad_link_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    change: dict[str, Any],
    code: str,
    field: str,
) -> None:
    body = {"amount": 1500, "currency": "KES", "description": "Yoga class", "reusable": True} | change
    r = await client.post("/v1/payment-links", json=body, headers=merchant.auth | key())

    problem = assert_problem(r, 422, code)
    assert any(field in e["loc"] for e in problem["errors"]), problem
    assert (
        await gateway.scalar("SELECT count(*) FROM payment_links WHERE merchant_id = :m", m=merchant.id) == 0
    )


async def test_missing_fields_and_idempotency_key_are_refused(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    r = await client.post("/v1/payment-links", json={"currency": "KES"}, headers=merchant.auth | key())
    problem = assert_problem(r, 422, "validation_error")
    assert {e["loc"][-1] for e in problem["errors"]} == {"description", "reusable"}
    body = {"amount": 1500, "currency": "KES", "description": "Yoga", "reusable": False}
    r = await client.post("/v1/payment-links", json=body, headers=merchant.auth)
    assert_problem(r, 400, "idempotency_key_missing")
    assert (
        await gateway.scalar("SELECT count(*) FROM payment_links WHERE merchant_id = :m", m=merchant.id) == 0
    )


async def test_a_retry_with_the_same_key_answers_the_same_link(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    body = {"amount": 1500, "currency": "KES", "description": "Yoga", "reusable": False}
    same = merchant.auth | key()
    one = await client.post("/v1/payment-links", json=body, headers=same)
    two = await client.post("/v1/payment-links", json=body, headers=same)
    assert (one.status_code, two.status_code, two.headers["idempotent-replayed"]) == (201, 201, "true")
    assert one.json() == two.json()
    assert (
        await gateway.scalar("SELECT count(*) FROM payment_links WHERE merchant_id = :m", m=merchant.id) == 1
    )


async def test_a_customer_chosen_amount_link_keeps_its_bounds(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    link = await create_link(client, merchant, amount=None, min_amount=10_000, max_amount=500_000)
    assert (link["amount"], link["min_amount"], link["max_amount"]) == (None, 10_000, 500_000)
    open_ended = await create_link(client, merchant, amount=None)
    assert (open_ended["amount"], open_ended["min_amount"], open_ended["max_amount"]) == (None, None, None)


async def test_list_retrieve_and_deactivate(client: httpx.AsyncClient, merchant: Merchant) -> None:
    made = [await create_link(client, merchant, description=f"Item {i}") for i in range(3)]

    page = await client.get("/v1/payment-links", params={"limit": 2}, headers=merchant.auth)
    assert page.status_code == 200
    body = page.json()
    assert (body["object"], body["has_more"]) == ("list", True)
    assert [link["id"] for link in body["data"]] == [made[2]["id"], made[1]["id"]]
    rest = await client.get(
        "/v1/payment-links", params={"starting_after": made[1]["id"]}, headers=merchant.auth
    )
    assert ([link["id"] for link in rest.json()["data"]], rest.json()["has_more"]) == ([made[0]["id"]], False)

    got = await client.get(f"/v1/payment-links/{made[0]['id']}", headers=merchant.auth)
    assert got.status_code == 200
    assert got.json() == made[0]

    off = await client.post(f"/v1/payment-links/{made[0]['id']}/deactivate", headers=merchant.auth)
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    assert off.json()["updated_at"] > made[0]["updated_at"]
    again = await client.post(f"/v1/payment-links/{made[0]['id']}/deactivate", headers=merchant.auth)
    assert (again.status_code, again.json()["active"]) == (200, False)
    assert again.json()["updated_at"] == off.json()["updated_at"]
    got = await client.get(f"/v1/payment-links/{made[0]['id']}", headers=merchant.auth)
    assert got.json()["active"] is False


async def test_a_bad_cursor_is_refused(client: httpx.AsyncClient, merchant: Merchant) -> None:
    r = await client.get("/v1/payment-links", params={"starting_after": "pay_x"}, headers=merchant.auth)
    assert_problem(r, 422, "invalid_cursor")


async def test_another_merchants_link_is_404(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant
) -> None:
    link = await create_link(client, merchant)
    for r in (
        await client.get(f"/v1/payment-links/{link['id']}", headers=other_merchant.auth),
        await client.post(f"/v1/payment-links/{link['id']}/deactivate", headers=other_merchant.auth),
    ):
        assert_problem(r, 404, "resource_missing")
    listed = await client.get("/v1/payment-links", headers=other_merchant.auth)
    assert listed.json()["data"] == []
    mine = await client.get(f"/v1/payment-links/{link['id']}", headers=merchant.auth)
    assert mine.json()["active"] is True  # the other merchant's deactivate changed nothing


async def test_publishable_and_narrow_keys_are_refused(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    link = await create_link(client, merchant)
    publishable = await add_key(gateway, merchant.id, "publishable")
    reader = await add_key(gateway, merchant.id, "restricted", scopes=["payments:read"])
    writer = await add_key(gateway, merchant.id, "restricted", scopes=["payments:write"])
    body = {"amount": 1500, "currency": "KES", "description": "Yoga", "reusable": True}
    calls = [
        ("POST", "/v1/payment-links", body, "payments:write"),
        ("GET", "/v1/payment-links", None, "payments:read"),
        ("GET", f"/v1/payment-links/{link['id']}", None, "payments:read"),
        ("POST", f"/v1/payment-links/{link['id']}/deactivate", None, "payments:write"),
    ]
    for method, path, json, scope in calls:
        r = await client.request(method, path, json=json, headers=publishable.auth | key())
        assert assert_problem(r, 403, "insufficient_scope")["required_scope"] == scope
        narrow = reader if scope == "payments:write" else writer
        r = await client.request(method, path, json=json, headers=narrow.auth | key())
        assert assert_problem(r, 403, "insufficient_scope")["required_scope"] == scope
    assert (await client.get("/v1/payment-links", headers=reader.auth)).status_code == 200
    made = await client.post("/v1/payment-links", json=body, headers=writer.auth | key())
    assert made.status_code == 201
    assert (
        await gateway.scalar("SELECT count(*) FROM payment_links WHERE merchant_id = :m", m=merchant.id) == 2
    )
    assert await gateway.scalar("SELECT active FROM payment_links WHERE id = :id", id=link["id"]) is True
