"""Listing payments: cursor pagination both ways, the default limit, filters alone and combined, tenancy.

Each test seeds 25 cash payments (cash succeeds at once) for a fresh merchant, one after another, so
their ids and created_at values increase in creation order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from support import Gateway, Merchant

N = 25
CURRENCIES = ("KES", "USD", "UGX")
# Stored as the address normalizes: the domain in lower case, the local part as given.
EMAILS = ("Amina@Example.COM", "juma@example.org", "AMINA@example.com", None)
STORED_EMAILS = ("Amina@example.com", "juma@example.org", "AMINA@example.com", None)


@dataclass(frozen=True)
class Seeded:
    """The created payments, oldest first (index i is the i-th created)."""

    payments: list[dict[str, Any]]

    @property
    def ids(self) -> list[str]:
        return [p["id"] for p in self.payments]

    def newest_first(self, indexes: Any) -> list[str]:
        return [self.payments[i]["id"] for i in sorted(indexes, reverse=True)]


def reference_of(i: int) -> str:
    return f"order_{i % 5}"


async def create(client: httpx.AsyncClient, merchant: Merchant, body: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/payments", json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )


async def seed(client: httpx.AsyncClient, merchant: Merchant, n: int = N) -> Seeded:
    payments = []
    for i in range(n):
        body: dict[str, Any] = {
            "amount": 1000 + i,
            "currency": CURRENCIES[i % 3],
            "provider": "cash",
            "reference": reference_of(i),
        }
        email = EMAILS[i % 4]
        if email is not None:
            body["customer"] = {"email": email}
        r = await create(client, merchant, body)
        assert r.status_code == 201, r.text
        p = r.json()
        assert p["status"] == "succeeded"
        assert p["customer"]["email"] == STORED_EMAILS[i % 4]
        payments.append(p)
    ids = [p["id"] for p in payments]
    assert ids == sorted(ids)
    assert len(set(ids)) == n
    created = [p["created_at"] for p in payments]
    assert all(c.endswith("Z") for c in created)
    assert created == sorted(created)
    assert len(set(created)) == n
    return Seeded(payments)


async def page(client: httpx.AsyncClient, merchant: Merchant, **params: Any) -> tuple[list[str], bool]:
    r = await client.get("/v1/payments", params=params, headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["object"] == "list"
    assert all(p["object"] == "payment" for p in body["data"])
    return [p["id"] for p in body["data"]], body["has_more"]


async def all_ids(client: httpx.AsyncClient, merchant: Merchant, **filters: Any) -> list[str]:
    ids, has_more = await page(client, merchant, limit=100, **filters)
    assert not has_more
    return ids


async def test_walk_forward_with_starting_after(client: httpx.AsyncClient, merchant: Merchant) -> None:
    seeded = await seed(client, merchant)
    pages: list[list[str]] = []
    flags: list[bool] = []
    cursor: dict[str, str] = {}
    while True:
        ids, has_more = await page(client, merchant, limit=10, **cursor)
        pages.append(ids)
        flags.append(has_more)
        if not has_more:
            break
        assert len(pages) < 10, "the walk does not end"
        cursor = {"starting_after": ids[-1]}

    assert [len(p) for p in pages] == [10, 10, 5]
    assert flags == [True, True, False]
    walked = [i for p in pages for i in p]
    assert walked == sorted(walked, reverse=True)
    assert len(set(walked)) == len(walked)
    assert walked == list(reversed(seeded.ids))


@pytest.mark.parametrize(
    ("limit", "sizes"),
    [
        pytest.param(5, [5, 5, 5, 5, 5], id="limit-divides-the-total"),
        pytest.param(7, [7, 7, 7, 4], id="limit-7"),
        pytest.param(24, [24, 1], id="one-short"),
        pytest.param(25, [25], id="exactly-all"),
        pytest.param(100, [25], id="more-than-all"),
    ],
)
async def test_forward_walk_page_sizes(
    client: httpx.AsyncClient, merchant: Merchant, limit: int, sizes: list[int]
) -> None:
    """has_more is exact: a walk never ends on an empty page, nor stops one page early."""
    seeded = await seed(client, merchant)
    walked: list[str] = []
    got_sizes: list[int] = []
    cursor: dict[str, str] = {}
    for n in range(len(sizes)):
        ids, has_more = await page(client, merchant, limit=limit, **cursor)
        walked += ids
        got_sizes.append(len(ids))
        assert has_more == (n < len(sizes) - 1)
        if has_more:
            cursor = {"starting_after": ids[-1]}
    assert got_sizes == sizes
    assert walked == list(reversed(seeded.ids))


async def test_walk_backward_with_ending_before(client: httpx.AsyncClient, merchant: Merchant) -> None:
    seeded = await seed(client, merchant)
    oldest = seeded.ids[0]

    pages: list[list[str]] = []
    flags: list[bool] = []
    cursor = oldest
    while True:
        ids, has_more = await page(client, merchant, limit=10, ending_before=cursor)
        pages.append(ids)
        flags.append(has_more)
        assert ids == sorted(ids, reverse=True), "each page is newest first"
        if not has_more:
            break
        assert len(pages) < 10, "the walk does not end"
        cursor = ids[0]  # the newest on this page

    # The oldest is the cursor itself, so the walk holds the 24 newer ones.
    assert [len(p) for p in pages] == [10, 10, 4]
    assert flags == [True, True, False]
    assert pages[0] == seeded.newest_first(range(1, 11))
    assert pages[1] == seeded.newest_first(range(11, 21))
    assert pages[2] == seeded.newest_first(range(21, 25))
    walked = [i for p in reversed(pages) for i in p] + [oldest]
    assert len(set(walked)) == N
    assert walked == list(reversed(seeded.ids))


async def test_forward_then_back_again(client: httpx.AsyncClient, merchant: Merchant) -> None:
    """From any page, ending_before its first id gives back the page before it."""
    seeded = await seed(client, merchant)
    first, _ = await page(client, merchant, limit=10)
    second, _ = await page(client, merchant, limit=10, starting_after=first[-1])
    back, has_more = await page(client, merchant, limit=10, ending_before=second[0])
    assert back == first
    assert has_more is False  # nothing is newer than the first page
    newest, has_more = await page(client, merchant, limit=10, ending_before=seeded.ids[0])
    assert has_more is True
    assert newest == seeded.newest_first(range(1, 11))


async def test_default_limit_is_10(client: httpx.AsyncClient, merchant: Merchant) -> None:
    seeded = await seed(client, merchant)
    ids, has_more = await page(client, merchant)
    assert ids == list(reversed(seeded.ids))[:10]
    assert has_more is True
    ids, has_more = await page(client, merchant, starting_after=ids[-1])
    assert ids == list(reversed(seeded.ids))[10:20]
    assert has_more is True


async def test_cursors_past_either_end_give_empty_pages(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    seeded = await seed(client, merchant)
    assert await page(client, merchant, starting_after=seeded.ids[0]) == ([], False)
    assert await page(client, merchant, ending_before=seeded.ids[-1]) == ([], False)


async def test_filters_alone_and_combined(client: httpx.AsyncClient, merchant: Merchant) -> None:
    seeded = await seed(client, merchant)
    # Two sandbox payments after the 25 cash ones, so status and provider have something to tell apart.
    ok = await create(
        client,
        merchant,
        {"amount": 500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"},
    )
    declined = await create(
        client,
        merchant,
        {
            "amount": 600,
            "currency": "KES",
            "provider": "sandbox",
            "payment_method": "pm_card_declined",
            "reference": reference_of(0),
        },
    )
    assert ok.status_code == 201, ok.text
    assert declined.status_code == 402, declined.text
    ok_id, declined_id = ok.json()["id"], declined.json()["payment"]["id"]
    assert ok.json()["status"] == "succeeded"
    assert declined.json()["payment"]["status"] == "failed"
    cash = list(reversed(seeded.ids))
    assert await all_ids(client, merchant) == [declined_id, ok_id, *cash]

    created = [p["created_at"] for p in seeded.payments]
    idx = range(N)

    # status
    assert await all_ids(client, merchant, status="succeeded") == [ok_id, *cash]
    assert await all_ids(client, merchant, status="failed") == [declined_id]
    assert await all_ids(client, merchant, status="requires_action") == []
    # provider
    assert await all_ids(client, merchant, provider="cash") == cash
    assert await all_ids(client, merchant, provider="sandbox") == [declined_id, ok_id]
    assert await all_ids(client, merchant, provider="nope") == []
    # reference (exact match)
    assert await all_ids(client, merchant, reference="order_2") == seeded.newest_first(
        i for i in idx if i % 5 == 2
    )
    assert await all_ids(client, merchant, reference="order_0") == [
        declined_id,
        *seeded.newest_first(i for i in idx if i % 5 == 0),
    ]
    assert await all_ids(client, merchant, reference="order_") == []
    assert await all_ids(client, merchant, reference="ORDER_2") == []
    # customer_email: the query is normalized like the stored address (domain case folded)...
    amina = seeded.newest_first(i for i in idx if i % 4 == 0)
    for q in ("Amina@example.com", "Amina@EXAMPLE.COM", "Amina@Example.Com"):
        assert await all_ids(client, merchant, customer_email=q) == amina, q
    # ...but the local part keeps its case, so these are two different customers.
    assert await all_ids(client, merchant, customer_email="AMINA@example.com") == seeded.newest_first(
        i for i in idx if i % 4 == 2
    )
    assert await all_ids(client, merchant, customer_email="AMINA@EXAMPLE.COM") == seeded.newest_first(
        i for i in idx if i % 4 == 2
    )
    assert await all_ids(client, merchant, customer_email="amina@example.com") == []
    assert await all_ids(client, merchant, customer_email="juma@EXAMPLE.org") == seeded.newest_first(
        i for i in idx if i % 4 == 1
    )
    # created_gte is inclusive, created_lt exclusive, both exact to the microsecond
    assert await all_ids(client, merchant, created_gte=created[5], provider="cash") == seeded.newest_first(
        range(5, N)
    )
    assert await all_ids(client, merchant, created_lt=created[5]) == seeded.newest_first(range(5))
    assert await all_ids(client, merchant, created_gte=created[5], created_lt=created[20]) == (
        seeded.newest_first(range(5, 20))
    )
    assert await all_ids(client, merchant, created_gte=created[7], created_lt=created[7]) == []
    assert await all_ids(client, merchant, created_gte=created[7], created_lt=created[8]) == [seeded.ids[7]]
    assert await all_ids(client, merchant, created_gte=created[N - 1]) == [declined_id, ok_id, seeded.ids[-1]]
    # The same instant in another zone's offset selects the same rows.
    assert await all_ids(client, merchant, created_lt=created[5].replace("Z", "+00:00")) == (
        seeded.newest_first(range(5))
    )
    # two filters
    assert await all_ids(client, merchant, reference="order_0", provider="cash") == seeded.newest_first(
        i for i in idx if i % 5 == 0
    )
    assert await all_ids(client, merchant, reference="order_0", status="failed") == [declined_id]
    assert await all_ids(
        client, merchant, customer_email="juma@example.org", created_lt=created[10]
    ) == seeded.newest_first(i for i in range(10) if i % 4 == 1)
    assert await all_ids(client, merchant, reference="order_1", customer_email="juma@example.org") == (
        seeded.newest_first(i for i in idx if i % 5 == 1 and i % 4 == 1)
    )
    # three and more
    assert await all_ids(
        client,
        merchant,
        reference="order_0",
        customer_email="Amina@example.com",
        created_gte=created[10],
    ) == seeded.newest_first(i for i in range(10, N) if i % 5 == 0 and i % 4 == 0)
    assert await all_ids(
        client,
        merchant,
        status="succeeded",
        provider="cash",
        reference="order_3",
        created_gte=created[3],
        created_lt=created[23],
    ) == seeded.newest_first(i for i in range(3, 23) if i % 5 == 3)
    assert await all_ids(client, merchant, status="failed", provider="cash") == []


async def test_filters_and_cursors_together(client: httpx.AsyncClient, merchant: Merchant) -> None:
    seeded = await seed(client, merchant)
    expected = seeded.newest_first(i for i in range(N) if i % 5 == 1)  # 5 payments
    first, more = await page(client, merchant, limit=2, reference="order_1")
    second, more2 = await page(client, merchant, limit=2, reference="order_1", starting_after=first[-1])
    third, more3 = await page(client, merchant, limit=2, reference="order_1", starting_after=second[-1])
    assert [first, second, third] == [expected[0:2], expected[2:4], expected[4:5]]
    assert [more, more2, more3] == [True, True, False]
    back, more_back = await page(client, merchant, limit=2, reference="order_1", ending_before=third[0])
    assert back == expected[2:4]
    assert more_back is True


async def test_merchants_never_see_each_others_payments(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant, gateway: Gateway
) -> None:
    seeded = await seed(client, merchant)
    theirs = await seed(client, other_merchant, n=3)

    mine = await all_ids(client, merchant)
    assert mine == list(reversed(seeded.ids))
    assert await all_ids(client, other_merchant) == list(reversed(theirs.ids))
    assert not set(mine) & set(theirs.ids)

    # Filters that match the other merchant's rows still find only one's own.
    assert await all_ids(client, other_merchant, reference="order_0") == [theirs.ids[0]]
    assert await all_ids(client, other_merchant, customer_email="juma@example.org") == [theirs.ids[1]]
    assert await all_ids(client, other_merchant, provider="cash", status="succeeded") == list(
        reversed(theirs.ids)
    )
    # A cursor that is someone else's id is refused (it is not an object of one's own list),
    # whether the page it would give is full or empty.
    for who, name, cursor in (
        (other_merchant, "ending_before", seeded.ids[0]),
        (merchant, "starting_after", theirs.ids[-1]),
        (merchant, "starting_after", theirs.ids[0]),
    ):
        r = await client.get("/v1/payments", params={name: cursor, "limit": 100}, headers=who.auth)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_cursor"
        assert r.json()["param"] == name
    # And no one can read another's payment by id.
    r = await client.get(f"/v1/payments/{seeded.ids[0]}", headers=other_merchant.auth)
    assert r.status_code == 404
    assert r.json()["code"] == "resource_missing"
    r = await client.get(f"/v1/payments/{theirs.ids[0]}", headers=merchant.auth)
    assert r.status_code == 404

    rows = "SELECT count(*) FROM payments WHERE merchant_id = :m"
    assert await gateway.scalar(rows, m=merchant.id) == N
    assert await gateway.scalar(rows, m=other_merchant.id) == 3
