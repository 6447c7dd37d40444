"""Paystack for the contract suite: bodies shaped as docs/providers/paystack.md shows them.

The customer step is the hosted checkout (`POST /transaction/initialize` -> data.authorization_url); a
decline comes from charging a saved card (`POST /transaction/charge_authorization`), which answers with
the transaction, outcome included, at once. Webhooks are signed here with hashlib/hmac directly
(HMAC-SHA512 of the raw body keyed with the secret key), not with the gateway's own signer.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
from typing import Any

import httpx
import respx

from drivers.base import Driver
from gateway.providers.paystack.settings import PaystackSettings
from support import PAYSTACK_API, PAYSTACK_SECRET_KEY

EMAIL = "amina@example.com"
AUTHORIZATION_CODE = "AUTH_8dfhjjdt"
PAID_AT = "2024-05-02T10:15:33.000Z"
CREATED_AT = "2024-05-02T10:15:03.000Z"
# Paystack's numeric transaction and refund ids: unique within a test run.
_ids = itertools.count(random.randrange(10**8, 9 * 10**8) * 10)


def new_id() -> int:
    return next(_ids)


def reference(payment_id: str, livemode: bool = False) -> str:
    """The Paystack reference the gateway must use: `pay_x` -> `pay-x-test` (test) / `pay-x` (live);
    attempt n's `pay_x_n` -> `pay-x-n-test`."""
    return payment_id.replace("_", "-") + ("" if livemode else "-test")


def sign(body: bytes, key: str = PAYSTACK_SECRET_KEY) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-paystack-signature": hmac.new(key.encode(), body, hashlib.sha512).hexdigest(),
    }


def transaction(
    ref: str,
    amount: int,
    currency: str,
    status: str,
    gateway_response: str = "Successful",
    **extra: Any,
) -> dict[str, Any]:
    """A transaction as verify, charge_authorization and `charge.success` carry it (docs/providers)."""
    return {
        "id": new_id(),
        "domain": "test",
        "status": status,
        "reference": ref,
        "amount": amount,
        "message": None,
        "gateway_response": gateway_response,
        "paid_at": PAID_AT if status == "success" else None,
        "created_at": CREATED_AT,
        "channel": "card",
        "currency": currency,
        "ip_address": "197.210.64.96",
        "metadata": "",
        "log": {
            "start_time": 1714644903,
            "time_spent": 30,
            "attempts": 1,
            "errors": 0,
            "success": status == "success",
            "mobile": False,
            "input": [],
            "history": [],
        },
        "fees": 75 if status == "success" else 0,
        "authorization": {
            "authorization_code": AUTHORIZATION_CODE,
            "bin": "408408",
            "last4": "4081",
            "exp_month": "12",
            "exp_year": "2030",
            "channel": "card",
            "card_type": "visa ",
            "bank": "TEST BANK",
            "country_code": "NG",
            "brand": "visa",
            "reusable": True,
            "signature": "SIG_yEXu7dLBeqG0kU7g95Ke",
            "account_name": None,
        },
        "customer": {"id": 181873746, "email": EMAIL, "customer_code": "CUS_xnxdt6s1zg1f4nx"},
        "requested_amount": amount,
        **extra,
    }


def verify_answer(data: dict[str, Any]) -> dict[str, Any]:
    return {"status": True, "message": "Verification successful", "data": data}


def charge_answer(data: dict[str, Any]) -> dict[str, Any]:
    return {"status": True, "message": "Charge attempted", "data": data}


def initialize_answer(ref: str) -> dict[str, Any]:
    access = f"ac{new_id():x}"
    return {
        "status": True,
        "message": "Authorization URL created",
        "data": {
            "authorization_url": f"https://checkout.paystack.com/{access}",
            "access_code": access,
            "reference": ref,
        },
    }


def refund_answer(ref: str, amount: int, currency: str, status: str = "pending") -> dict[str, Any]:
    """POST /refund's answer (docs/providers/paystack.md)."""
    return {
        "status": True,
        "message": "Refund has been queued for processing",
        "data": {
            "transaction": {
                "id": new_id(),
                "domain": "test",
                "reference": ref,
                "amount": amount,
                "paid_at": PAID_AT,
                "channel": "card",
                "currency": currency,
            },
            "integration": 412829,
            "deducted_amount": 0,
            "channel": None,
            "merchant_note": "Gateway refund",
            "customer_note": "Refund for transaction " + ref,
            "status": status,
            "refunded_by": "ops@example.com",
            "expected_at": "2024-05-09T09:21:17.016Z",
            "currency": currency,
            "domain": "test",
            "amount": amount,
            "fully_deducted": False,
            "id": new_id(),
        },
    }


def refund_event(ref: str, amount: int, currency: str, status: str = "processed") -> bytes:
    """A refund webhook, as Paystack's doc-code-snippets show it: the amount a string of subunits."""
    return json.dumps(
        {
            "event": f"refund.{status}",
            "data": {
                "status": status,
                "transaction_reference": ref,
                "refund_reference": str(new_id()) if status == "processed" else None,
                "amount": str(amount),
                "currency": currency,
                "processor": "mpgs_zen",
                "customer": {"first_name": "Amina", "last_name": "Otieno", "email": EMAIL},
                "integration": 412829,
                "domain": "test",
            },
        }
    ).encode()


def _echo_initialize(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=initialize_answer(json.loads(request.content)["reference"]))


class PaystackDriver(Driver):
    name = "paystack"
    currency = "KES"
    decline_code = "card_declined"

    def settings(self) -> PaystackSettings:
        return PaystackSettings(test={"secret_key": PAYSTACK_SECRET_KEY}, base_url=PAYSTACK_API)

    def create_body(self, scenario: str) -> dict[str, Any]:
        body = {**super().create_body(scenario), "customer": {"email": EMAIL}}
        if scenario == "decline":
            body["payment_method"] = AUTHORIZATION_CODE
        return body

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        if scenario == "decline":

            def declined(request: httpx.Request) -> httpx.Response:
                sent = json.loads(request.content)
                data = transaction(sent["reference"], sent["amount"], sent["currency"], "failed", "Declined")
                return httpx.Response(200, json=charge_answer(data))

            router.post(f"{PAYSTACK_API}/transaction/charge_authorization").mock(side_effect=declined)
        elif scenario == "timeout":
            router.post(f"{PAYSTACK_API}/transaction/initialize").mock(
                side_effect=httpx.ReadTimeout("timed out")
            )
        else:
            router.post(f"{PAYSTACK_API}/transaction/initialize").mock(side_effect=_echo_initialize)

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        theirs = {"succeeded": "success", "failed": "failed", "requires_action": "abandoned"}[status]
        ref = reference(payment["id"])
        data = transaction(ref, payment["amount"], payment["currency"], theirs)
        router.get(f"{PAYSTACK_API}/transaction/verify/{ref}").respond(200, json=verify_answer(data))

    def mock_refund(self, router: respx.Router, payment: dict[str, Any], amount: int) -> None:
        answer = refund_answer(reference(payment["id"]), amount, payment["currency"])
        router.post(f"{PAYSTACK_API}/refund").respond(200, json=answer)

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        ref = reference or payment["provider_reference"]
        data = transaction(
            ref,
            payment["amount"] if amount is None else amount,
            currency or payment["currency"],
            "success",
        )
        # charge.success carries the transaction as verify does, without requested_amount.
        del data["requested_amount"]
        body = json.dumps({"event": "charge.success", "data": data}).encode()
        return sign(body), body

    def refund_webhook(
        self, payment: dict[str, Any], refund: dict[str, Any]
    ) -> tuple[dict[str, str], bytes] | None:
        body = refund_event(payment["provider_reference"], refund["amount"], refund["currency"])
        return sign(body), body

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # transaction()'s authorization: brand visa, last4 4081, exp 12/2030, card_type "visa ", NG.
        return {
            "type": "card",
            "brand": "visa",
            "last4": "4081",
            "exp_month": 12,
            "exp_year": 2030,
            "funding": None,
            "country": "NG",
        }

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        sig = headers["x-paystack-signature"]
        return {
            **headers,
            "x-paystack-signature": sig[:-4] + ("0000" if not sig.endswith("0000") else "1111"),
        }


DRIVER = PaystackDriver()
