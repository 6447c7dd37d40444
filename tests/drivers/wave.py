"""Wave Checkout for the contract suite: bodies shaped as docs/providers/wave.md shows them.

The customer step is the checkout session (`POST /v1/checkout/sessions` -> `wave_launch_url`); a
decline is Wave refusing the session (`{"code": ..., "message": ...}`); the outcome arrives as a
`checkout.session.completed` event signed with `Wave-Signature: t=<unix>,v1=<hex>`, made here with
hmac directly (a peer of our verifier, as docs/providers/wave.md states the algorithm).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import string
import time
from typing import Any

import httpx
import orjson
import respx

from drivers.base import Driver
from gateway.providers.wave.settings import WaveSettings
from support import WAVE_API, WAVE_API_KEY, WAVE_WEBHOOK_SECRET

BUSINESS = "Boutique Awa"
RETURN_URL = "https://shop.example/orders/1042/return"
WHEN_CREATED = "2025-06-25T16:55:44Z"
WHEN_EXPIRES = "2025-06-25T17:25:44Z"
WHEN_COMPLETED = "2025-06-25T16:56:03Z"


def _token(n: int) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=n))


def session_id() -> str:
    return "cos-" + _token(13)


def event_id() -> str:
    return "AE_sn_" + _token(12)


def session(
    sid: str,
    *,
    amount: str,
    currency: str,
    client_reference: str | None,
    checkout_status: str = "open",
    payment_status: str = "processing",
    success_url: str = RETURN_URL,
    error_url: str = RETURN_URL,
    last_payment_error: dict[str, str] | None = None,
    when_refunded: str | None = None,
) -> dict[str, Any]:
    """A checkout session object (docs/providers/wave.md), as Wave returns and its webhooks carry it."""
    s: dict[str, Any] = {
        "id": sid,
        "amount": amount,
        "checkout_status": checkout_status,
        "client_reference": client_reference,
        "currency": currency,
        "error_url": error_url,
        "last_payment_error": last_payment_error,
        "business_name": BUSINESS,
        "payment_status": payment_status,
        "success_url": success_url,
        "wave_launch_url": f"https://pay.wave.com/c/{sid}?a={amount}&c={currency}&m=Boutique%20Awa",
        "when_created": WHEN_CREATED,
        "when_expires": WHEN_EXPIRES,
    }
    if payment_status == "succeeded":
        s["transaction_id"] = "T_" + _token(16).upper()
    if checkout_status != "open":
        s["when_completed"] = WHEN_COMPLETED
    if when_refunded is not None:
        s["when_refunded"] = when_refunded
    return s


def major(amount: int, currency: str) -> str:
    """Minor units as Wave's amount string: XOF has no minor unit (5000 -> "5000")."""
    if currency in ("XOF", "XAF", "UGX", "RWF", "GNF"):
        return str(amount)
    return f"{amount // 100}.{amount % 100:02d}"


def event(event_type: str, data: dict[str, Any], eid: str | None = None) -> bytes:
    return orjson.dumps({"id": eid or event_id(), "type": event_type, "data": data})


def sign(body: bytes, secret: str = WAVE_WEBHOOK_SECRET, t: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if t is None else t)
    v1 = hmac.new(secret.encode(), ts.encode() + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "wave-signature": f"t={ts},v1={v1}"}


class WaveDriver(Driver):
    name = "wave"
    currency = "XOF"
    amount = 5_000
    decline_code = "payment_rejected"
    # Wave's refund endpoint takes no amount: it returns the whole payment (docs/providers/wave.md).
    partial_refunds = False

    def __init__(self) -> None:
        # Our payment id -> the transaction_id of the paid session this driver last showed for it.
        self.transaction_ids: dict[str, str] = {}

    def settings(self) -> WaveSettings:
        return WaveSettings(
            test={"api_key": WAVE_API_KEY, "webhook_secret": WAVE_WEBHOOK_SECRET},
            base_url=WAVE_API,
            reconcile_after_seconds=10**7,  # tests/reconciler runs the reconciler by hand
        )

    def create_body(self, scenario: str) -> dict[str, Any]:
        return {**super().create_body(scenario), "return_url": RETURN_URL}

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        route = router.post(f"{WAVE_API}/v1/checkout/sessions")
        if scenario == "decline":
            route.respond(
                400,
                json={"code": "request-validation-error", "message": "Amount exceeds the wallet's limits."},
            )
        elif scenario == "timeout":
            route.mock(side_effect=httpx.ReadTimeout("timed out"))
        else:

            def opened(request: httpx.Request) -> httpx.Response:
                sent = json.loads(request.content)
                return httpx.Response(
                    200,
                    json=session(
                        session_id(),
                        amount=sent["amount"],
                        currency=sent["currency"],
                        client_reference=sent.get("client_reference"),
                        success_url=sent["success_url"],
                        error_url=sent["error_url"],
                    ),
                )

            route.mock(side_effect=opened)

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        checkout, paid = {
            "succeeded": ("complete", "succeeded"),
            "failed": ("open", "cancelled"),
            "requires_action": ("open", "processing"),
            "expired": ("expired", "cancelled"),
        }[status]
        s = session(
            payment["provider_reference"] or session_id(),
            amount=major(payment["amount"], payment["currency"]),
            currency=payment["currency"],
            client_reference=payment["id"],
            checkout_status=checkout,
            payment_status=paid,
        )
        if "transaction_id" in s:
            self.transaction_ids[payment["id"]] = s["transaction_id"]
        if payment["provider_reference"]:
            router.get(f"{WAVE_API}/v1/checkout/sessions/{payment['provider_reference']}").respond(
                200, json=s
            )
        else:
            router.get(
                f"{WAVE_API}/v1/checkout/sessions/search", params={"client_reference": payment["id"]}
            ).respond(200, json={"result": [s]})

    def mock_refund(self, router: respx.Router, payment: dict[str, Any], amount: int) -> None:
        # No body in, the whole payment back [P]; an empty 200 answers it [U: the answer's body].
        router.post(f"{WAVE_API}/v1/checkout/sessions/{payment['provider_reference']}/refund").respond(200)

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        cur = currency or payment["currency"]
        data = session(
            reference or payment["provider_reference"],
            amount=major(payment["amount"] if amount is None else amount, cur),
            currency=cur,
            # A session opened outside the gateway names no payment of ours.
            client_reference=None if reference else payment["id"],
            checkout_status="complete",
            payment_status="succeeded",
        )
        self.transaction_ids[payment["id"]] = data["transaction_id"]
        body = event("checkout.session.completed", data, event_id)
        return sign(body), body

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # A session names its transaction_id once paid, and no payer (it was not restricted to one).
        receipt = self.transaction_ids[payment["id"]]
        return {"type": "mobile_money", "operator": "wave", "phone_last4": None, "receipt": receipt}

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        sig = headers["wave-signature"]
        return {**headers, "wave-signature": sig[:-4] + ("0000" if not sig.endswith("0000") else "1111")}


DRIVER = WaveDriver()
