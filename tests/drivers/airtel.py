"""Airtel Money Collections for the contract suite: bodies shaped as docs/providers/airtel.md shows them.

Airtel answers a USSD push with an envelope that only says the push was sent; what happened is in the
transaction enquiry (and in the callback, which names the status and Airtel's id, never the money). So
this driver is a small fake of Airtel on the respx router: pushes are kept by transaction id, a repeated
id is refused as a duplicate (ESB000041), the enquiry answers from what is kept, an unknown id is
"no transaction found", and the payer's number picks the outcome. Callbacks carry the path token (in
the CALLBACK_TOKEN_HEADER pseudo-header, turned into the path by webhook_path()) and, as the test gateway
has callback authentication on, the `hash` of their transaction object.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import respx

from drivers.base import Driver
from gateway.providers.airtel.settings import AirtelSettings
from gateway.providers.base import CALLBACK_TOKEN_HEADER
from support import (
    AIRTEL_API,
    AIRTEL_CALLBACK_HASH_KEY,
    AIRTEL_CALLBACK_TOKEN,
    AIRTEL_CLIENT_ID,
    AIRTEL_CLIENT_SECRET,
    AIRTEL_DISBURSEMENT_PIN,
)

API = AIRTEL_API
ACCESS_TOKEN = "UCLcp1oeq44KPXr8XAbCdEfGhIjKlMnOpQrStUvWxCzki2w"
# Ugandan payers (+256): the national number Airtel gets, and what the fake does with it.
PAYER_WAITING = "+256752000001"  # stays TIP until settled
PAYER_REFUSED = "+256752000007"  # refused at once: not enough balance
PAYER_SUCCESS = "+256752000009"
REFUSED_AT_ONCE = {"752000007": "DP00800001007"}
_receipts = itertools.count(random.randrange(10**5, 9 * 10**5))


def envelope(
    code: str, *, success: bool = True, message: str = "SUCCESS", result: str = "ESB000010"
) -> dict[str, Any]:
    return {
        "code": "200",
        "message": message,
        "result_code": result,
        "response_code": code,
        "success": success,
    }


def token_body() -> dict[str, Any]:
    """`POST /auth/oauth2/token`: expires_in is a string of seconds."""
    return {"access_token": ACCESS_TOKEN, "expires_in": "180", "token_type": "bearer"}


def callback_hash(transaction: dict[str, Any], key: str = AIRTEL_CALLBACK_HASH_KEY) -> str:
    """Base64 HMAC-SHA256 of the transaction object as Airtel serialises it (compact JSON)."""
    message = json.dumps(transaction, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


@dataclass
class Kept:
    """What Airtel keeps of one push, as the enquiry shows it."""

    body: dict[str, Any]
    status: str = "TIP"
    code: str = "DP00800001006"
    airtel_money_id: str = field(
        default_factory=lambda: f"MP{next(_receipts)}.1657.L0{random.randrange(10**4)}"
    )

    def enquiry(self) -> dict[str, Any]:
        transaction: dict[str, Any] = {
            "id": self.body["transaction"]["id"],
            "message": self.message,
            "status": self.status,
        }
        if self.status == "TS":
            transaction = {"airtel_money_id": self.airtel_money_id, **transaction}
        return {"data": {"transaction": transaction}, "status": envelope(self.code, message=self.message)}

    @property
    def message(self) -> str:
        return {"TS": "Success", "TF": "Failed"}.get(self.status, "In Progress")

    def callback(self) -> dict[str, Any]:
        paid = f"{self.body['transaction']['amount']:,}"
        transaction = {
            "id": self.body["transaction"]["id"],
            "message": f"Paid UGX {paid} to SHOP, Charge UGX 140, Trans ID {self.airtel_money_id}.",
            "status_code": self.status,
            "airtel_money_id": self.airtel_money_id,
        }
        return {"transaction": transaction, "hash": callback_hash(transaction)}


class FakeAirtel:
    """Airtel's token, Collections and refund endpoints on a respx router, with pushes kept by id."""

    def __init__(self) -> None:
        self.pushes: dict[str, Kept] = {}
        self.refunds: list[dict[str, Any]] = []

    def install(self, router: respx.Router, *, timeout: bool = False) -> dict[str, respx.Route]:
        routes = {
            "token": router.post(f"{API}/auth/oauth2/token").respond(200, json=token_body()),
            "payments": router.post(f"{API}/merchant/v1/payments/"),
            "enquiry": router.get(
                url__regex=rf"^{re.escape(API)}/standard/v1/payments/(?P<tid>[^/?]+)$"
            ).mock(side_effect=self._enquiry),
            "refund": router.post(f"{API}/standard/v1/payments/refund").mock(side_effect=self._refund),
        }
        if timeout:
            routes["payments"].mock(side_effect=httpx.ReadTimeout("timed out"))
        else:
            routes["payments"].mock(side_effect=self._push)
        return routes

    def _push(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        tid = body["transaction"]["id"]
        if tid in self.pushes:
            status = envelope(
                "DP00800001000", success=False, message="Duplicate transaction id", result="ESB000041"
            )
            return httpx.Response(200, json={"data": {}, "status": status})
        refused = REFUSED_AT_ONCE.get(body["subscriber"]["msisdn"])
        if refused is not None:
            status = envelope(refused, success=False, message="Not enough balance", result="ESB000011")
            return httpx.Response(
                200, json={"data": {"transaction": {"id": tid, "status": "FAILED"}}, "status": status}
            )
        self.pushes[tid] = Kept(body)
        data = {"transaction": {"id": tid, "status": "Success."}}
        return httpx.Response(
            200, json={"data": data, "status": envelope("DP00800001006", message="Success.")}
        )

    def _enquiry(self, request: httpx.Request, tid: str) -> httpx.Response:
        kept = self.pushes.get(tid)
        if kept is None:
            status = envelope(
                "DP00800001025", success=False, message="Transaction Not Found", result="ESB000045"
            )
            return httpx.Response(200, json={"data": {}, "status": status})
        return httpx.Response(200, json=kept.enquiry())

    def _refund(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.refunds.append(body)
        data = {
            "transaction": {"airtel_money_id": body["transaction"]["airtel_money_id"], "status": "SUCCESS"}
        }
        return httpx.Response(200, json={"data": data, "status": envelope("DP00800001001")})

    def settle(self, payment: dict[str, Any], status: str, code: str = "DP00800001001") -> Kept:
        """The customer acted: the payment's push now has this status (made up if Airtel never received
        it, as after a create that timed out)."""
        kept = self.pushes.get(payment["id"])
        if kept is None:
            kept = self.pushes[payment["id"]] = Kept(payment_body(payment))
        kept.status, kept.code = status, code
        return kept


def payment_body(payment: dict[str, Any], phone: str = PAYER_WAITING) -> dict[str, Any]:
    """What the gateway sends for `payment` (UGX has no minor unit)."""
    return {
        "reference": payment.get("reference") or payment.get("description") or payment["id"],
        "subscriber": {
            "country": "UG",
            "currency": payment["currency"],
            "msisdn": phone.removeprefix("+256"),
        },
        "transaction": {
            "amount": payment["amount"],
            "country": "UG",
            "currency": payment["currency"],
            "id": payment["id"],
        },
    }


def callback(kept: Kept, **over: Any) -> tuple[dict[str, str], bytes]:
    """Airtel's callback to the URL with our token, its hash over the transaction object."""
    return (
        {"content-type": "application/json", CALLBACK_TOKEN_HEADER: AIRTEL_CALLBACK_TOKEN},
        orjson.dumps({**kept.callback(), **over}),
    )


class AirtelDriver(Driver):
    name = "airtel"
    currency = "UGX"
    amount = 5_000
    decline_code = "insufficient_funds"
    partial_refunds = False  # a refund names only airtel_money_id: the whole payment goes back
    # Neither the callback nor the enquiry names the money.
    names_money = False

    def settings(self) -> AirtelSettings:
        return AirtelSettings(
            test={
                "client_id": AIRTEL_CLIENT_ID,
                "client_secret": AIRTEL_CLIENT_SECRET,
                "base_url": API,
                "country": "UG",
                "disbursement_pin": AIRTEL_DISBURSEMENT_PIN,
            },
            callback_token=AIRTEL_CALLBACK_TOKEN,
            callback_hash_key=AIRTEL_CALLBACK_HASH_KEY,
            reconcile_after_seconds=10**7,
        )

    def __init__(self) -> None:
        self.fake = FakeAirtel()

    def create_body(self, scenario: str) -> dict[str, Any]:
        phone = PAYER_REFUSED if scenario == "decline" else PAYER_WAITING
        return {**super().create_body(scenario), "customer": {"phone": phone}}

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        self.fake.install(router, timeout=scenario == "timeout")

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        self.fake.install(router)
        airtel_status, code = {
            "succeeded": ("TS", "DP00800001001"),
            "failed": ("TF", "DP00800001007"),
            "requires_action": ("TIP", "DP00800001006"),
        }[status]
        self.fake.settle(payment, airtel_status, code)

    def mock_refund(self, router: respx.Router, payment: dict[str, Any], amount: int) -> None:
        self.fake.install(router)

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        # Callbacks have no id of their own: a repeat is the same transaction and status again.
        if reference is not None:
            ghost = Kept(
                {**payment_body(payment), "transaction": {"id": reference, "amount": payment["amount"]}}, "TS"
            )
            return callback(ghost)
        return callback(self.fake.settle(payment, "TS"))

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # The enquiry's airtel_money_id; the phone is the customer's (Airtel's answers name none).
        kept = self.fake.pushes[payment["id"]]
        return {
            "type": "mobile_money",
            "operator": "airtel",
            "phone_last4": kept.body["subscriber"]["msisdn"][-4:],
            "receipt": kept.airtel_money_id,
        }

    def full_numbers(self, payment: dict[str, Any]) -> list[str]:
        return [self.fake.pushes[payment["id"]].body["subscriber"]["msisdn"]]

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        # The body and its hash as Airtel sent them, to a URL whose token is guessed (a wrong hash is
        # refused too: tests/providers/test_airtel.py).
        return {**headers, CALLBACK_TOKEN_HEADER: AIRTEL_CALLBACK_TOKEN[:-4] + "XXXX"}

    def webhook_path(self, headers: dict[str, str]) -> str:
        return f"/v1/webhooks/{self.name}/{headers[CALLBACK_TOKEN_HEADER]}"


DRIVER = AirtelDriver()
