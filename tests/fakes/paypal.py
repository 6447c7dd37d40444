"""A fake of PayPal's REST API on a respx router, shaped as docs/providers/paypal.md shows PayPal's
answers: orders, captures and refunds are kept, and a POST with a PayPal-Request-Id the fake has seen
is answered with its first answer (PayPal's idempotency). The payer's approval is `settle`.

Webhook deliveries carry the five PAYPAL-* headers; verify-webhook-signature answers SUCCESS only for
a delivery the fake sent, unchanged, with the configured webhook id. (PayPal signs with RSA over
`transmission_id|transmission_time|webhook_id|crc32(body)`; the fake signs the same string with an HMAC
key of its own: the gateway never checks the signature itself, it asks PayPal.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import re
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

API = "https://paypal.test"
CLIENT_ID = "AXkq-test-client-id-of-the-suite-0123456789abcdefghijklmnopqrstuvwxyz"
CLIENT_SECRET = "EHsecret-of-the-test-suite-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEF"
WEBHOOK_ID = "4JH86294D6297924G"
ACCESS_TOKEN = (
    "A21AAFEpH4PsADK7qSS7pSRsgzfENtu-Q1ysgEDVDESseMHBYXVJYE8ovjj68elIDy8nF26AwPhfXTIeWAZHSLIsQkSYz9ifg"
)
CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270"
_SIGNING_KEY = b"the fake's stand-in for PayPal's private key"
_ids = itertools.count(random.randrange(10**6, 9 * 10**6))


def paypal_id(prefix: str = "") -> str:
    """PayPal's 17-character upper-case ids (orders 5O190127TN364715T, captures 3C679366HH908993F)."""
    n = next(_ids)
    return (prefix + f"{n:07d}" + uuid.uuid4().hex.upper())[:17]


def value(amount: int, currency: str) -> str:
    """PayPal's amount string (docs/providers/paypal.md): major units; whole units for JPY/HUF/TWD."""
    if currency in ("JPY", "HUF", "TWD"):
        return str(amount if currency == "JPY" else amount // 100)
    return f"{amount // 100}.{amount % 100:02d}"


def token_body() -> dict[str, Any]:
    """`POST /v1/oauth2/token`."""
    return {
        "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund",
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "app_id": "APP-80W284485P519543T",
        "expires_in": 32400,
        "nonce": "2026-12-05T03:25:11ZTcjTGJ2yGNqfnsR41Ms0Kw2-ti2hmFsB0v0Ftp8j0rk",
    }


def error(issue: str, description: str, status: int = 422) -> httpx.Response:
    name = "UNPROCESSABLE_ENTITY" if status == 422 else "INVALID_REQUEST"
    return httpx.Response(
        status,
        json={
            "name": name,
            "details": [{"issue": issue, "description": description}],
            "message": "The requested action could not be performed, semantically incorrect, or failed "
            "business validation.",
            "debug_id": uuid.uuid4().hex[:13],
            "links": [
                {
                    "href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}",
                    "rel": "information_link",
                    "method": "GET",
                }
            ],
        },
    )


@dataclass
class Order:
    id: str
    unit: dict[str, Any]
    status: str = "PAYER_ACTION_REQUIRED"
    capture: dict[str, Any] | None = None
    decline: bool = False
    # The capture's status when PayPal makes it (PENDING: e.g. an eCheck, or held for review).
    capture_status: str = "COMPLETED"
    create_time: str = "2026-12-05T03:30:00Z"

    def body(self) -> dict[str, Any]:
        unit = dict(self.unit)
        unit.setdefault("payee", {"email_address": "merchant@example.com", "merchant_id": "7KNGBPH2U58GQ"})
        if self.capture is not None:
            unit["payments"] = {"captures": [self.capture]}
        out: dict[str, Any] = {
            "id": self.id,
            "intent": "CAPTURE",
            "status": self.status,
            "purchase_units": [unit],
            "create_time": self.create_time,
            "links": [
                {"href": f"{API}/v2/checkout/orders/{self.id}", "rel": "self", "method": "GET"},
            ],
        }
        if self.status in ("PAYER_ACTION_REQUIRED", "CREATED"):
            out["links"].append(
                {
                    "href": f"https://www.sandbox.paypal.com/checkoutnow?token={self.id}",
                    "rel": "payer-action",
                    "method": "GET",
                }
            )
        if self.status in ("APPROVED", "COMPLETED"):
            out["payer"] = {
                "name": {"given_name": "Amina", "surname": "Otieno"},
                "email_address": "amina@example.com",
                "payer_id": "QYR5Z8XDVJNXQ",
                "address": {"country_code": "US"},
            }
            out["payment_source"] = {
                "paypal": {
                    "email_address": "amina@example.com",
                    "account_id": "QYR5Z8XDVJNXQ",
                    "account_status": "VERIFIED",
                }
            }
        return out

    def captured(self, amount: str | None = None, currency: str | None = None) -> dict[str, Any]:
        money = {
            "currency_code": currency or self.unit["amount"]["currency_code"],
            "value": amount or self.unit["amount"]["value"],
        }
        self.capture = {
            "id": paypal_id("3C"),
            "status": self.capture_status,
            "amount": money,
            "final_capture": True,
            "seller_protection": {"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED"]},
            "seller_receivable_breakdown": {"gross_amount": money},
            "custom_id": self.unit["custom_id"],
            "links": [],
            "create_time": "2026-12-05T03:31:00Z",
            "update_time": "2026-12-05T03:31:00Z",
        }
        self.status = "COMPLETED"
        return self.capture


@dataclass
class FakePaypal:
    """PayPal's Orders, Payments and Notifications endpoints on a respx router, with state."""

    orders: dict[str, Order] = field(default_factory=dict)
    answers: dict[str, httpx.Response] = field(default_factory=dict)  # PayPal-Request-Id -> answer
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: dict[str, bytes] = field(default_factory=dict)  # transmission id -> body
    refuse_orders: bool = False
    # The webhook subscriptions PayPal knows (the deployment's, and merchants' own accounts').
    webhook_ids: set[str] = field(default_factory=lambda: {WEBHOOK_ID})

    def install(self, router: respx.Router, *, timeout: bool = False) -> dict[str, respx.Route]:
        routes = {
            "token": router.post(f"{API}/v1/oauth2/token").respond(200, json=token_body()),
            "create": router.post(f"{API}/v2/checkout/orders"),
            "get": router.get(url__regex=rf"^{re.escape(API)}/v2/checkout/orders/(?P<oid>[A-Za-z0-9_-]+)$"),
            "capture": router.post(
                url__regex=rf"^{re.escape(API)}/v2/checkout/orders/(?P<oid>[A-Za-z0-9_-]+)/capture$"
            ),
            "refund": router.post(
                url__regex=rf"^{re.escape(API)}/v2/payments/captures/(?P<cid>[A-Za-z0-9]+)/refund$"
            ),
            "get_refund": router.get(
                url__regex=rf"^{re.escape(API)}/v2/payments/refunds/(?P<rid>[A-Za-z0-9]+)$"
            ),
            "verify": router.post(f"{API}/v1/notifications/verify-webhook-signature"),
        }
        if timeout:
            routes["create"].mock(side_effect=httpx.ReadTimeout("timed out"))
        else:
            routes["create"].mock(side_effect=self._create)
        routes["get"].mock(side_effect=self._get)
        routes["capture"].mock(side_effect=self._capture)
        routes["refund"].mock(side_effect=self._refund)
        routes["get_refund"].mock(side_effect=self._get_refund)
        routes["verify"].mock(side_effect=self._verify)
        return routes

    @staticmethod
    def _authorized(request: httpx.Request) -> bool:
        return bool(request.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}")

    def _replay(self, request: httpx.Request) -> httpx.Response | None:
        key = request.headers.get("PayPal-Request-Id")
        kept = self.answers.get(key) if key else None
        return httpx.Response(kept.status_code, content=kept.content, headers=kept.headers) if kept else None

    def _keep(self, request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        key = request.headers.get("PayPal-Request-Id")
        if key:
            self.answers[key] = answer
        return answer

    def _create(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return httpx.Response(401, json={"error": "invalid_token"})
        replayed = self._replay(request)
        if replayed is not None:
            return replayed
        if self.refuse_orders:
            return self._keep(
                request, error("PAYEE_ACCOUNT_RESTRICTED", "The merchant account is restricted.")
            )
        body = json.loads(request.content)
        unit = body["purchase_units"][0]
        order = Order(paypal_id("5O"), unit)
        self.orders[order.id] = order
        return self._keep(request, httpx.Response(200, json=order.body()))

    def _get(self, request: httpx.Request, oid: str) -> httpx.Response:
        order = self.orders.get(oid)
        if order is None:
            return error("RESOURCE_NOT_FOUND", "The specified resource does not exist.", 404)
        return httpx.Response(200, json=order.body())

    def _capture(self, request: httpx.Request, oid: str) -> httpx.Response:
        replayed = self._replay(request)
        if replayed is not None:
            return replayed
        order = self.orders.get(oid)
        if order is None:
            return error("RESOURCE_NOT_FOUND", "The specified resource does not exist.", 404)
        if order.status == "COMPLETED":
            return self._keep(request, error("ORDER_ALREADY_CAPTURED", "Order already captured."))
        if order.status != "APPROVED":
            return self._keep(request, error("ORDER_NOT_APPROVED", "Payer has not yet approved the Order."))
        if order.decline:
            return self._keep(request, error("INSTRUMENT_DECLINED", "The instrument presented was declined."))
        order.captured()
        return self._keep(request, httpx.Response(201, json=order.body()))

    def _refund(self, request: httpx.Request, cid: str) -> httpx.Response:
        replayed = self._replay(request)
        if replayed is not None:
            return replayed
        body = json.loads(request.content)
        refund = {
            "id": paypal_id("1J"),
            "amount": body["amount"],
            "seller_payable_breakdown": {"gross_amount": body["amount"]},
            "custom_id": body.get("custom_id"),
            "status": "COMPLETED",
            "create_time": "2026-12-05T03:40:00Z",
            "update_time": "2026-12-05T03:40:00Z",
            "links": [
                {"href": f"{API}/v2/payments/captures/{cid}", "rel": "up", "method": "GET"},
            ],
        }
        self.refunds[refund["id"]] = refund
        return self._keep(request, httpx.Response(201, json=refund))

    def _get_refund(self, request: httpx.Request, rid: str) -> httpx.Response:
        refund = self.refunds.get(rid)
        if refund is None:
            return error("RESOURCE_NOT_FOUND", "The specified resource does not exist.", 404)
        return httpx.Response(200, json=refund)

    def _verify(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return httpx.Response(401, json={"error": "invalid_token"})
        sent = json.loads(request.content)
        if sent.get("webhook_id") not in self.webhook_ids:
            return error("INVALID_RESOURCE_ID", "Webhook id does not exist.", 400)
        body = self.deliveries.get(sent.get("transmission_id", ""))
        ok = (
            body is not None
            and sent["webhook_event"] == json.loads(body)
            and sent["cert_url"] == CERT_URL
            and sent["auth_algo"] == "SHA256withRSA"
            and hmac.compare_digest(
                sent["transmission_sig"],
                signature(sent["transmission_id"], sent["transmission_time"], sent["webhook_id"], body),
            )
        )
        return httpx.Response(200, json={"verification_status": "SUCCESS" if ok else "FAILURE"})

    # --- what the payer and PayPal do ------------------------------------------------------------

    def order_of(self, payment_id: str) -> Order | None:
        return next((o for o in self.orders.values() if o.unit.get("custom_id") == payment_id), None)

    def settle(self, payment: dict[str, Any], status: str) -> Order:
        """The payer acted: the payment's order now has this status. An order the fake never saw (a
        create that timed out) is made now, as if that create had arrived."""
        order = self.order_of(payment["id"])
        if order is None:
            unit = {
                "reference_id": payment["id"],
                "custom_id": payment["id"],
                "amount": {
                    "currency_code": payment["currency"],
                    "value": value(payment["amount"], payment["currency"]),
                },
            }
            order = Order(paypal_id("5O"), unit)
            self.orders[order.id] = order
            self.answers[f"{payment['id']}-create"] = httpx.Response(200, json=order.body())
        order.status = status
        return order

    def deliver(self, event: dict[str, Any], webhook_id: str = WEBHOOK_ID) -> tuple[dict[str, str], bytes]:
        """A webhook delivery as PayPal posts it to one subscription (`webhook_id`): the event and the
        five PAYPAL-* headers."""
        body = json.dumps(event).encode()
        tid = str(uuid.uuid4())
        when = "2026-12-05T03:35:21Z"
        self.deliveries[tid] = body
        return {
            "content-type": "application/json",
            "paypal-auth-algo": "SHA256withRSA",
            "paypal-cert-url": CERT_URL,
            "paypal-transmission-id": tid,
            "paypal-transmission-sig": signature(tid, when, webhook_id, body),
            "paypal-transmission-time": when,
            "user-agent": "PayPal/AUHD-214.0-58254467",
        }, body


def signature(tid: str, when: str, webhook_id: str, body: bytes) -> str:
    message = f"{tid}|{when}|{webhook_id}|{zlib.crc32(body)}".encode()
    return base64.b64encode(hmac.new(_SIGNING_KEY, message, hashlib.sha256).digest()).decode()


def event(
    event_type: str, resource_type: str, resource: dict[str, Any], event_id: str | None = None
) -> dict[str, Any]:
    """A webhook event as PayPal sends it (docs/providers/paypal.md)."""
    eid = event_id or f"WH-{paypal_id()}-{paypal_id()}"
    return {
        "id": eid,
        "event_version": "1.0",
        "create_time": "2026-12-05T03:35:20.940Z",
        "resource_type": resource_type,
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": f"{event_type} event",
        "resource": resource,
        "links": [
            {
                "href": f"https://api.sandbox.paypal.com/v1/notifications/webhooks-events/{eid}",
                "rel": "self",
                "method": "GET",
            },
        ],
    }


def capture_resource(order: Order) -> dict[str, Any]:
    assert order.capture is not None
    return {**order.capture, "supplementary_data": {"related_ids": {"order_id": order.id}}}
