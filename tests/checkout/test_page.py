"""The hosted checkout over plain HTTP: what the page shows and hides, its headers, its form post
(CSRF, limits, bad input writes nothing), the live endpoints and the signed return."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
import respx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from drivers.paystack import initialize_answer
from ratelimits.serving import serving
from support import PAYSTACK_API, Gateway, Merchant

RETURN = "https://shop.example/orders/42"


async def create(client: httpx.AsyncClient, merchant: Merchant, **body: Any) -> dict[str, Any]:
    body = {
        "amount": 150_000,
        "currency": "KES",
        "return_url": RETURN,
        "customer": {"email": "wanjiku@example.com", "phone": "+254712345678"},
        **body,
    }
    r = await client.post(
        "/v1/payments", json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 201, r.text
    payment: dict[str, Any] = r.json()
    return payment


def path_of(payment: dict[str, Any]) -> str:
    return str(urlsplit(payment["checkout_url"]).path)


async def open_page(client: httpx.AsyncClient, payment: dict[str, Any]) -> tuple[httpx.Response, str]:
    """The page and the CSRF token of its form (its cookie stays in the client's jar)."""
    r = await client.get(path_of(payment))
    assert r.status_code == 200
    m = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', r.text)
    assert m is not None
    return r, m.group(1)


async def attempts(gateway: Gateway, payment: dict[str, Any]) -> int:
    n: int = await gateway.scalar(
        "SELECT count(*) FROM payment_attempts WHERE payment_id = :id", id=payment["id"]
    )
    return n


async def test_page_shows_the_payment_and_nothing_secret(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    payment = await create(client, merchant, description="Order 42")
    r, _ = await open_page(client, payment)
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "Merchant A" in r.text
    assert "KSh\u00a01,500.00" in r.text
    assert "Order 42" in r.text
    for secret in (payment["client_secret"], payment["id"], "wanjiku@example.com", "712345678", RETURN):
        assert secret not in r.text
    # Scripts only from files: no inline script, no handler attributes.
    assert re.findall(r"<script[^>]*>", r.text) == [re.search(r'<script src="[^"]+" defer>', r.text).group(0)]  # type: ignore[union-attr]
    assert not re.search(r"\son[a-z]+=", r.text)
    methods = re.findall(r'name="method" value="([a-z]+)"', r.text)
    assert "sandbox" in methods
    assert "mpesa" in methods
    assert "cash" not in methods  # not enabled for this merchant


async def test_security_headers(client: httpx.AsyncClient, merchant: Merchant) -> None:
    payment = await create(client, merchant)
    r, _ = await open_page(client, payment)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "http" not in csp.replace("https:", "")  # no third-party origin
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("checkout_csrf=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert f"Path={path_of(payment)}" in cookie

    missing = await client.get("/checkout/cs_nosuchcheckout")
    assert missing.status_code == 404
    assert missing.headers["x-frame-options"] == "DENY"


async def test_static_files_are_cached_for_a_year(client: httpx.AsyncClient, merchant: Merchant) -> None:
    payment = await create(client, merchant)
    r, _ = await open_page(client, payment)
    for url in re.findall(r'(?:href|src)="(/checkout/static/[^"]+)"', r.text):
        asset = await client.get(url)
        assert asset.status_code == 200
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert (await client.get("/checkout/static/nothing.js")).status_code == 404


async def test_form_post_confirms_then_shows_the_outcome(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway
) -> None:
    payment = await create(client, merchant)
    _, token = await open_page(client, payment)
    form = {"csrf_token": token, "method": "sandbox", "scenario": "pm_success"}
    r = await client.post(path_of(payment), data=form)
    assert r.status_code == 303
    assert r.headers["location"] == path_of(payment)
    assert await attempts(gateway, payment) == 1
    page = await client.get(r.headers["location"])
    assert 'data-state="succeeded"' in page.text
    got = await client.get(f"/v1/payments/{payment['id']}", headers=merchant.auth)
    assert (got.json()["status"], got.json()["provider"]) == ("succeeded", "sandbox")

    # A second post is refused without reaching a provider: the payment is settled.
    again = await client.post(path_of(payment), data=form)
    assert again.status_code == 303
    assert await attempts(gateway, payment) == 1


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"method": "sandbox", "csrf_token": ""}, "csrf"),  # no token
        ({"method": "sandbox", "csrf_token": "0" * 64}, "csrf"),  # a forged one
        ({"method": "cash"}, "method_missing"),  # not offered to this merchant
        ({"method": "nope"}, "method_missing"),
        ({}, "method_missing"),
        ({"method": "mpesa", "phone": "12345"}, "invalid_phone"),
        ({"method": "mpesa"}, "invalid_phone"),
    ],
)
async def test_bad_posts_write_nothing(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway, form: dict[str, str], error: str
) -> None:
    payment = await create(client, merchant)
    _, token = await open_page(client, payment)
    r = await client.post(path_of(payment), data={"csrf_token": token, **form})
    assert r.status_code == 303
    assert r.headers["location"] == f"{path_of(payment)}?error={error}"
    assert await attempts(gateway, payment) == 0
    got = await client.get(f"/v1/payments/{payment['id']}", headers=merchant.auth)
    assert got.json()["status"] == "requires_payment_method"
    page = await client.get(r.headers["location"])
    assert 'role="alert"' in page.text


async def test_posts_are_limited_per_payment_and_per_address(gateway: Gateway, merchant: Merchant) -> None:
    """The confirm quotas of POST /v1/payments/{id}/confirm, spent by the form too."""
    unreached = {"live": "100000/second", "test": "100000/second", "failed_auth": "1000000/minute"}
    n = uuid.uuid4().int
    address = f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"
    async with serving(
        gateway, address, confirm_per_payment="3/minute", confirm_per_ip="5/minute", **unreached
    ) as (client, _):
        first, second = await create(client, merchant), await create(client, merchant)
        seen = []
        for payment in (first, first, first, first, second, second, second):
            _, token = await open_page(client, payment)
            r = await client.post(path_of(payment), data={"csrf_token": token, "method": "nope"})
            seen.append(r.headers["location"].rpartition("=")[2])
    # 3 per payment; then 5 per address, which counts every post (the one refused per payment too).
    assert seen == ["method_missing"] * 3 + ["rate_limited", "method_missing"] + ["rate_limited"] * 2


async def test_live_endpoints_show_the_public_subset(client: httpx.AsyncClient, merchant: Merchant) -> None:
    payment = await create(client, merchant)
    r = await client.get(f"{path_of(payment)}/status.json")
    assert r.status_code == 200
    body = r.json()
    assert (body["id"], body["status"], body["amount"]) == (payment["id"], "requires_payment_method", 150_000)
    assert "client_secret" not in r.text
    assert "wanjiku" not in r.text
    assert "sandbox" in body["payment_methods"]
    assert (await client.get("/checkout/cs_nosuchcheckout/status.json")).status_code == 404

    ws_url = client.base_url.copy_with(scheme="ws", path=f"{path_of(payment)}/ws")
    origin = str(client.base_url).rstrip("/")
    async with connect(str(ws_url), origin=origin) as ws:  # type: ignore[arg-type]
        first = orjson.loads(await ws.recv())
        assert first == body
    with pytest.raises(InvalidStatus):
        async with connect(str(ws_url), origin="https://evil.example"):  # type: ignore[arg-type]
            pass


async def test_return_is_signed_once_the_outcome_is_known(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    payment = await create(client, merchant)
    back = await client.get(f"{path_of(payment)}/return")
    assert back.status_code == 303
    assert back.headers["location"] == path_of(payment)

    _, token = await open_page(client, payment)
    await client.post(
        path_of(payment), data={"csrf_token": token, "method": "sandbox", "scenario": "pm_success"}
    )
    r = await client.get(f"{path_of(payment)}/return")
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(RETURN + "?")
    query = parse_qs(urlsplit(location).query)
    expected = hmac.new(payment["client_secret"].encode(), payment["id"].encode(), hashlib.sha256).hexdigest()
    assert query == {"payment_id": [payment["id"]], "signature": [expected]}


async def test_a_redirect_rail_sends_the_customer_back_to_the_checkout_not_to_the_merchant(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway, provider_http: respx.Router
) -> None:
    """Paystack hears the checkout page as its callback_url (the page shows the outcome, then goes
    on to the merchant's signed return_url); an API confirm keeps the payment's return_url."""
    sent: list[dict[str, Any]] = []

    def initialize(req: httpx.Request) -> httpx.Response:
        body = orjson.loads(req.content)
        sent.append(body)
        return httpx.Response(200, json=initialize_answer(body["reference"]))

    provider_http.post(f"{PAYSTACK_API}/transaction/initialize").mock(side_effect=initialize)
    payment = await create(client, merchant, currency="NGN", amount=50_000)
    _, token = await open_page(client, payment)
    r = await client.post(path_of(payment), data={"csrf_token": token, "method": "paystack"})
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("https://checkout.paystack.com/")
    assert len(sent) == 1
    # (checkout_url's host is the process's last started app's: compare the path under this one's.)
    assert sent[0]["callback_url"] == gateway.ctx.settings.base_url + path_of(payment)
    assert RETURN not in orjson.dumps(sent[0]).decode()

    other = await create(client, merchant, currency="NGN", amount=50_000)
    confirmed = await client.post(
        f"/v1/payments/{other['id']}/confirm",
        json={"provider": "paystack"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert confirmed.status_code == 200, confirmed.text
    assert len(sent) == 2
    assert sent[1]["callback_url"] == RETURN
