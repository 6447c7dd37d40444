"""Orange Money Web Payment for the contract suite: bodies shaped as docs/providers/orange.md shows them.

A small fake of Orange on the respx router: the token endpoint (Basic client_id:client_secret, form
body), web payments kept by order_id (each answered with its pay_token, payment_url and notif_token;
an order_id seen before is a 403), and the transaction status, which answers only for the order's
own pay_token and amount. The notification is what Orange POSTs to the payment's notif_url
(`{"status", "notif_token", "txnid"}`), unsigned: the URL's last segment is our order id, carried in
the CALLBACK_TOKEN_HEADER pseudo-header and turned into the path by webhook_path().
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import respx

from drivers.base import Driver
from gateway.providers.base import CALLBACK_TOKEN_HEADER
from gateway.providers.orange.settings import OrangeSettings
from support import ORANGE_API, ORANGE_CLIENT_ID, ORANGE_CLIENT_SECRET, ORANGE_MERCHANT_KEY

API = ORANGE_API
WEBPAY = f"{API}/orange-money-webpay/dev/v1"
TOKEN_URL = f"{API}/oauth/v3/token"
ACCESS_TOKEN = "eyJhbGciOiJIUzI1NiJ9.b3JhbmdlLXRlc3QtYWNjZXNzLXRva2Vu.c2lnbmF0dXJl"
BASIC = "Basic " + base64.b64encode(f"{ORANGE_CLIENT_ID}:{ORANGE_CLIENT_SECRET}".encode()).decode()
RETURN_URL = "https://shop.example/orders/1042/return"

_txnids = itertools.count(random.randrange(10**8, 9 * 10**8))


def token_body(token: str = ACCESS_TOKEN) -> dict[str, Any]:
    """`POST /oauth/v3/token`: expires_in as Orange writes it, a numeric string."""
    return {"token_type": "Bearer", "access_token": token, "expires_in": "7776000"}


def txnid() -> str:
    return f"MP{next(_txnids)}.{random.randrange(1000, 9999)}.A{random.randrange(10000, 99999)}"


@dataclass
class Order:
    """What Orange keeps of one web payment."""

    body: dict[str, Any]
    pay_token: str
    notif_token: str
    status: str = "INITIATED"
    txnid: str | None = None

    @property
    def payment_url(self) -> str:
        return f"https://webpayment-qualif.orange-money.com/payment/pay_token/{self.pay_token}"

    def status_body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "order_id": self.body["order_id"]}
        if self.txnid is not None:
            out["txnid"] = self.txnid
        return out


class FakeOrange:
    """Orange's token, webpayment and transactionstatus endpoints, with web payments kept by order_id."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}

    def install(self, router: respx.Router, *, scenario: str = "action") -> dict[str, respx.Route]:
        routes = {
            "token": router.post(TOKEN_URL).mock(side_effect=self._token),
            "webpayment": router.post(f"{WEBPAY}/webpayment"),
            "status": router.post(f"{WEBPAY}/transactionstatus").mock(side_effect=self._status),
        }
        if scenario == "timeout":
            routes["webpayment"].mock(side_effect=httpx.ReadTimeout("timed out"))
        elif scenario == "decline":
            routes["webpayment"].respond(
                400,
                json={
                    "status": 400,
                    "message": "Bad Request",
                    "description": "The amount exceeds the limit.",
                },
            )
        else:
            routes["webpayment"].mock(side_effect=self._webpayment)
        return routes

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        if request.headers.get("authorization") != BASIC or form != {"grant_type": ["client_credentials"]}:
            return httpx.Response(
                401, json={"error": "invalid_client", "error_description": "Invalid credentials"}
            )
        return httpx.Response(200, json=token_body())

    def _authorized(self, request: httpx.Request) -> bool:
        return bool(request.headers.get("authorization") == f"Bearer {ACCESS_TOKEN}")

    def _webpayment(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return httpx.Response(401, json={"code": 42, "message": "Expired credentials"})
        body = json.loads(request.content)
        if body["merchant_key"] != ORANGE_MERCHANT_KEY or body["currency"] != "OUV":
            return httpx.Response(400, json={"status": 400, "message": "Bad Request"})
        if body["order_id"] in self.orders:
            return httpx.Response(403, json={"status": 403, "message": "Forbidden"})
        order = Order(body, "v1" + secrets.token_hex(30), secrets.token_hex(16))
        self.orders[body["order_id"]] = order
        return httpx.Response(
            201,
            json={
                "status": 201,
                "message": "OK",
                "pay_token": order.pay_token,
                "payment_url": order.payment_url,
                "notif_token": order.notif_token,
            },
        )

    def _status(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return httpx.Response(401, json={"code": 42, "message": "Expired credentials"})
        asked = json.loads(request.content)
        order = self.orders.get(asked.get("order_id"))
        if (
            order is None
            or asked.get("pay_token") != order.pay_token
            or asked.get("amount") != order.body["amount"]
        ):
            return httpx.Response(400, json={"status": 400, "message": "Transaction not found"})
        return httpx.Response(201, json=order.status_body())

    def settle(self, order_id: str, status: str) -> Order:
        order = self.orders[order_id]
        order.status = status
        if status == "SUCCESS" and order.txnid is None:
            order.txnid = txnid()
        return order


def notification(
    order_id: str, status: str, notif_token: str, txn: str | None
) -> tuple[dict[str, str], bytes]:
    """What Orange POSTs to `{notif_url}` = /v1/webhooks/orange/{order_id}."""
    body: dict[str, Any] = {"status": status, "notif_token": notif_token}
    if txn is not None:
        body["txnid"] = txn
    return {"content-type": "application/json", CALLBACK_TOKEN_HEADER: order_id}, orjson.dumps(body)


class OrangeDriver(Driver):
    name = "orange"
    currency = "XOF"
    amount = 5_000
    decline_code = "payment_rejected"
    names_money = False
    refunds = False
    partial_refunds = False
    stores_unknown_notifications = False
    resolves_timeouts = False

    def __init__(self) -> None:
        self.fake = FakeOrange()

    def settings(self) -> OrangeSettings:
        return OrangeSettings(
            test={
                "client_id": ORANGE_CLIENT_ID,
                "client_secret": ORANGE_CLIENT_SECRET,
                "merchant_key": ORANGE_MERCHANT_KEY,
            },
            base_url=API,
            reconcile_after_seconds=10**7,  # tests/reconciler runs the reconciler by hand
        )

    def create_body(self, scenario: str) -> dict[str, Any]:
        return {**super().create_body(scenario), "return_url": RETURN_URL}

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        self.fake.install(router, scenario=scenario)

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        self.fake.install(router)
        orange = {
            "succeeded": "SUCCESS",
            "failed": "FAILED",
            "requires_action": "PENDING",
            "expired": "EXPIRED",
        }
        self.fake.settle(payment["id"], orange[status])

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        # Orange's notifications name no money and have no id: a repeat is the same body again.
        if reference is not None:
            return notification(reference, "SUCCESS", secrets.token_hex(16), txnid())
        order = self.fake.settle(payment["id"], "SUCCESS")
        return notification(payment["id"], "SUCCESS", order.notif_token, order.txnid)

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # The status answer's txnid; WebPay names no payer.
        order = self.fake.orders[payment["id"]]
        return {"type": "mobile_money", "operator": "orange", "phone_last4": None, "receipt": order.txnid}

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        # The body's notif_token is the payment's; the URL names an attempt of it that never was.
        return {**headers, CALLBACK_TOKEN_HEADER: headers[CALLBACK_TOKEN_HEADER] + "_9"}

    def webhook_path(self, headers: dict[str, str]) -> str:
        return f"/v1/webhooks/{self.name}/{headers[CALLBACK_TOKEN_HEADER]}"


DRIVER = OrangeDriver()
