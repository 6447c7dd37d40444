"""Flutterwave v3 for the contract suite: bodies shaped as docs/providers/flutterwave.md shows them.

The customer step is the hosted checkout (`POST /v3/payments` -> data.link); a decline comes from a
saved-card charge (`POST /v3/tokenized-charges`), the one v3 flow that answers with an outcome at once.
Amounts are JSON numbers in major units, written as exact literals ("50.00"), as Flutterwave sends them.
A webhook is only a hint (the gateway verifies before acting), so the driver keeps the transactions
Flutterwave knows (FakeVerify) and answers both verify endpoints from them.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from typing import Any

import httpx
import orjson
import respx

from drivers.base import Driver
from gateway.providers.flutterwave.settings import FlutterwaveSettings
from support import FLUTTERWAVE_API, FLUTTERWAVE_SECRET_HASH, FLUTTERWAVE_SECRET_KEY

TOKEN = "flw-t1nf-f9b3bf384cd30d6fca42b6df9d27bd2f-m03k"
LINK = "https://checkout.flutterwave.com/v3/hosted/pay/flwlnk-01hx4gtw6q"
CREATED_AT = "2024-05-02T10:15:03.000Z"
# Flutterwave's numeric transaction and refund ids: unique within a test run.
_ids = itertools.count(random.randrange(10**8, 9 * 10**8) * 10)


def new_id() -> int:
    return next(_ids)


def major(amount: int, currency: str = "KES") -> orjson.Fragment:
    """Minor units as the JSON number Flutterwave writes: 5000 KES -> 50.00, 5000 UGX -> 5000."""
    if currency in ("UGX", "RWF", "XAF", "XOF"):
        return orjson.Fragment(str(amount))
    return orjson.Fragment(f"{amount // 100}.{amount % 100:02d}")


def transaction(
    tx_id: int,
    tx_ref: str,
    amount: int,
    currency: str,
    status: str,
    processor_response: str,
    **extra: Any,
) -> dict[str, Any]:
    """A transaction as verify and `charge.completed` carry it (docs/providers/flutterwave.md)."""
    return {
        "id": tx_id,
        "tx_ref": tx_ref,
        "flw_ref": f"FLW-MOCK-{tx_id:x}",
        "device_fingerprint": "N/A",
        "amount": major(amount, currency),
        "currency": currency,
        "charged_amount": major(amount, currency),
        "app_fee": 0.7,
        "merchant_fee": 0,
        "processor_response": processor_response,
        "auth_model": "PIN",
        "ip": "197.210.64.96",
        "narration": "CARD Transaction ",
        "status": status,
        "payment_type": "card",
        "created_at": CREATED_AT,
        "account_id": 17321,
        "customer": {
            "id": 216519823,
            "name": "Amina Otieno",
            "phone_number": "N/A",
            "email": "amina@example.com",
            "created_at": CREATED_AT,
        },
        "card": {
            "first_6digits": "553188",
            "last_4digits": "2950",
            "issuer": "MASTERCARD CREDIT",
            "country": "NG",
            "type": "MASTERCARD",
            "expiry": "09/32",
        },
        **extra,
    }


def envelope(message: str, data: Any, status: str = "success") -> bytes:
    return orjson.dumps({"status": status, "message": message, "data": data})


def refund(refund_id: int, tx_id: int, amount: int, status: str = "completed") -> dict[str, Any]:
    """The refund object of `POST /v3/transactions/{id}/refund` (docs/providers/flutterwave.md)."""
    return {
        "id": refund_id,
        "account_id": 73362,
        "tx_id": tx_id,
        "flw_ref": f"URF_1577867664541_{refund_id}",
        "wallet_id": 74639,
        "amount_refunded": major(amount),
        "status": status,
        "destination": "payment_source",
        "meta": {"source": "availablebalance"},
        "created_at": "2024-05-02T10:20:37.366Z",
    }


def webhook(data: dict[str, Any], event: str = "charge.completed") -> bytes:
    return orjson.dumps({"event": event, "data": data})


def hashed(body: bytes) -> tuple[dict[str, str], bytes]:
    return {"content-type": "application/json", "verif-hash": FLUTTERWAVE_SECRET_HASH}, body


# Verify's answer for an id or tx_ref Flutterwave does not know (docs/providers/flutterwave.md, Errors).
NOT_FOUND = {"status": "error", "message": "No transaction was found for this id", "data": None}


class FakeVerify:
    """`GET /v3/transactions/{id}/verify` and `GET /v3/transactions/verify_by_reference?tx_ref=` on a
    respx router, answering from the transactions this fake was told Flutterwave has."""

    def __init__(self) -> None:
        self.by_ref: dict[str, dict[str, Any]] = {}

    def knows(self, data: dict[str, Any]) -> None:
        """Flutterwave now has this transaction (the latest one for its tx_ref)."""
        self.by_ref[data["tx_ref"]] = data

    def install(self, router: respx.Router) -> tuple[respx.Route, respx.Route]:
        by_reference = router.get(f"{FLUTTERWAVE_API}/v3/transactions/verify_by_reference").mock(
            side_effect=self._by_reference
        )
        by_id = router.get(
            url__regex=rf"^{re.escape(FLUTTERWAVE_API)}/v3/transactions/(?P<tx_id>\d+)/verify$"
        ).mock(side_effect=self._by_id)
        return by_reference, by_id

    @staticmethod
    def _answer(data: dict[str, Any] | None) -> httpx.Response:
        if data is None:
            return httpx.Response(400, json=NOT_FOUND)
        return httpx.Response(200, content=envelope("Transaction fetched successfully", data))

    def _by_reference(self, request: httpx.Request) -> httpx.Response:
        return self._answer(self.by_ref.get(request.url.params.get("tx_ref", "")))

    def _by_id(self, request: httpx.Request, tx_id: str) -> httpx.Response:
        return self._answer(next((d for d in self.by_ref.values() if d["id"] == int(tx_id)), None))


class FlutterwaveDriver(Driver):
    name = "flutterwave"
    currency = "KES"
    decline_code = "insufficient_funds"

    def settings(self) -> FlutterwaveSettings:
        return FlutterwaveSettings(
            test={"secret_key": FLUTTERWAVE_SECRET_KEY, "secret_hash": FLUTTERWAVE_SECRET_HASH},
            base_url=FLUTTERWAVE_API,
        )

    def __init__(self) -> None:
        # Flutterwave's transaction id of each payment reported paid (its refunds name it).
        self.transaction_ids: dict[str, int] = {}
        self.verify = FakeVerify()

    def create_body(self, scenario: str) -> dict[str, Any]:
        body = {
            **super().create_body(scenario),
            "customer": {"name": "Amina Otieno", "email": "amina@example.com"},
            "return_url": "https://shop.example/orders/1042/return",
        }
        if scenario == "decline":
            body["payment_method"] = TOKEN
        return body

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        self.verify.install(router)
        if scenario == "decline":

            def declined(request: httpx.Request) -> httpx.Response:
                sent = json.loads(request.content)
                data = transaction(
                    new_id(), sent["tx_ref"], self.amount, sent["currency"], "failed", "Insufficient Funds"
                )
                return httpx.Response(200, content=envelope("Charge failed", data))

            router.post(f"{FLUTTERWAVE_API}/v3/tokenized-charges").mock(side_effect=declined)
        elif scenario == "timeout":
            router.post(f"{FLUTTERWAVE_API}/v3/payments").mock(side_effect=httpx.ReadTimeout("timed out"))
        else:
            router.post(f"{FLUTTERWAVE_API}/v3/payments").respond(
                200, content=envelope("Hosted Link", {"link": LINK})
            )

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        flw_status = {"succeeded": "successful", "failed": "failed", "processing": "pending"}[status]
        tx_id = self.transaction_ids.setdefault(payment["id"], new_id())
        self.verify.knows(
            transaction(tx_id, payment["id"], payment["amount"], payment["currency"], flw_status, "Approved")
        )
        self.verify.install(router)

    def mock_refund(self, router: respx.Router, payment: dict[str, Any], amount: int) -> None:
        tx_id = self.transaction_ids[payment["id"]]
        router.post(f"{FLUTTERWAVE_API}/v3/transactions/{tx_id}/refund").respond(
            200, content=envelope("Transaction refund initiated", refund(new_id(), tx_id, amount))
        )

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        # Flutterwave's events have no id of their own; a repeat is the same transaction again.
        tx_id = new_id() if reference else self.transaction_ids.setdefault(payment["id"], new_id())
        data = transaction(
            tx_id,
            reference or payment["id"],
            payment["amount"] if amount is None else amount,
            currency or payment["currency"],
            "successful",
            "Approved by Financial Institution",
        )
        if reference is None:
            # What the webhook says is what Flutterwave's verify will say (a ghost is known to neither).
            self.verify.knows(data)
        return hashed(webhook(data))

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # transaction()'s card: type MASTERCARD, last_4digits 2950, expiry 09/32, issuer "MASTERCARD CREDIT".
        return {
            "type": "card",
            "brand": "mastercard",
            "last4": "2950",
            "exp_month": 9,
            "exp_year": 2032,
            "funding": "credit",
            "country": "NG",
        }

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        return {**headers, "verif-hash": FLUTTERWAVE_SECRET_HASH[:-1] + "X"}


DRIVER = FlutterwaveDriver()
