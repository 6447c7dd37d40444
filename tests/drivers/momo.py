"""MTN MoMo Collection for the contract suite: bodies shaped as docs/providers/momo.md shows them.

MoMo answers a request to pay with `202 Accepted` and nothing else; what happened is in the status GET
(and the callback, which carries the same JSON). So this driver is a small fake of MoMo on the respx
router: requests to pay and refunds are kept by X-Reference-Id, a repeated reference is a 409, the
status GET answers from what is kept, and an unknown reference is a 404. The payer's number picks the
outcome as MoMo's sandbox does. Callbacks are unsigned: the secret is the token in the URL's
path, which the driver carries in the CALLBACK_TOKEN_HEADER pseudo-header (the router drops any such
header a caller sends) and turns into the path in webhook_path().
"""

from __future__ import annotations

import itertools
import json
import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import respx

from drivers.base import Driver
from gateway.providers.base import CALLBACK_TOKEN_HEADER
from gateway.providers.momo.settings import MomoSettings
from support import (
    MOMO_API,
    MOMO_API_KEY,
    MOMO_API_USER,
    MOMO_CALLBACK_TOKEN,
    MOMO_DISBURSEMENT_API_KEY,
    MOMO_DISBURSEMENT_API_USER,
    MOMO_DISBURSEMENT_SUBSCRIPTION_KEY,
    MOMO_SUBSCRIPTION_KEY,
)

# docs/providers/momo.md: the X-Reference-Id namespaces, written out here (not read from the gateway).
REQUEST_TO_PAY_NAMESPACE = uuid.UUID("5b0f4f0e-8a43-5d8e-9d0b-6d6f6d6f7274")
REFUND_NAMESPACE = uuid.UUID("5b0f4f0e-8a43-5d8e-9d0b-6d6f6d6f7266")


def reference_id(payment_id: str) -> str:
    """The X-Reference-Id MoMo must get for a payment's request to pay (the documented uuid5)."""
    return str(uuid.uuid5(REQUEST_TO_PAY_NAMESPACE, payment_id))


def refund_reference_id(refund_id: str) -> str:
    """The X-Reference-Id MoMo must get for a refund (the documented uuid5)."""
    return str(uuid.uuid5(REFUND_NAMESPACE, refund_id))


API = MOMO_API
ACCESS_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSMjU2In0.eyJjbGllbnRJZCI6IjJkM2MxYjBhIiwiZXhwaXJlcyI6IjIwMjYtMDEtMDEifQ.c2ln"
)
DISBURSEMENT_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSMjU2In0.eyJjbGllbnRJZCI6IjdlNmQ1YzRiIiwiZXhwaXJlcyI6IjIwMjYtMDEtMDEifQ.c2ln"
)
# Sandbox payer numbers: any number not in the table ends SUCCESSFUL.
PAYER_REJECTED = "+46733123451"  # RequestToPayPayerRejected
PAYER_ONGOING = "+46733123453"  # RequestToPayPayerOngoing: stays PENDING
PAYER_DELAYED = "+46733123454"  # RequestToPayPayerDelayed
PAYER_NOT_FOUND = "+46733123455"  # RequestToPayPayerNotFound
PAYER_SUCCESS = "+46733123499"
SANDBOX_OUTCOMES: dict[str, tuple[str, str | None]] = {
    "46733123450": ("FAILED", "INTERNAL_PROCESSING_ERROR"),
    "46733123451": ("FAILED", "APPROVAL_REJECTED"),
    "46733123452": ("FAILED", "EXPIRED"),
    "46733123453": ("PENDING", None),
    "46733123454": ("PENDING", None),
    "46733123455": ("FAILED", "PAYER_NOT_FOUND"),
}
NOT_FOUND = {"code": "RESOURCE_NOT_FOUND", "message": "Requested resource was not found."}
DUPLICATE = {
    "code": "RESOURCE_ALREADY_EXIST",
    "message": "Duplicated reference id. Creation for resource failed.",
}
_transaction_ids = itertools.count(random.randrange(10**7, 9 * 10**7))


def token_body(token: str = ACCESS_TOKEN) -> dict[str, Any]:
    """`POST /{product}/token/`."""
    return {"access_token": token, "token_type": "access_token", "expires_in": 3600}


@dataclass
class Kept:
    """What MoMo keeps of one request to pay (or refund), as the status GET shows it."""

    body: dict[str, Any]
    status: str = "PENDING"
    reason: str | None = None
    financial_transaction_id: str = field(default_factory=lambda: str(next(_transaction_ids)))

    def status_body(self) -> dict[str, Any]:
        out = {
            "amount": self.body["amount"],
            "currency": self.body["currency"],
            "financialTransactionId": self.financial_transaction_id,
            "externalId": self.body["externalId"],
        }
        if "payer" in self.body:
            out["payer"] = self.body["payer"]
        else:  # a refund's status names the customer as the payee [U]
            out["payee"] = {"partyIdType": "MSISDN", "partyId": PAYER_SUCCESS.removeprefix("+")}
        out |= {
            "payerMessage": self.body["payerMessage"],
            "payeeNote": self.body["payeeNote"],
            "status": self.status,
        }
        if self.status != "SUCCESSFUL":
            del out["financialTransactionId"]
        if self.reason is not None:
            out["reason"] = self.reason
        return out


class FakeMomo:
    """MoMo's Collection and Disbursement endpoints on a respx router, with state kept by reference."""

    def __init__(self) -> None:
        self.requests: dict[str, Kept] = {}
        self.refunds: dict[str, Kept] = {}

    def install(self, router: respx.Router, *, timeout: bool = False) -> dict[str, respx.Route]:
        routes = {
            "token": router.post(f"{API}/collection/token/").respond(200, json=token_body()),
            "disbursement_token": router.post(f"{API}/disbursement/token/").respond(
                200, json=token_body(DISBURSEMENT_TOKEN)
            ),
            "requesttopay": router.post(f"{API}/collection/v1_0/requesttopay"),
            "status": router.get(
                url__regex=rf"^{re.escape(API)}/collection/v1_0/requesttopay/(?P<ref>[^/?]+)$"
            ),
            "refund": router.post(f"{API}/disbursement/v1_0/refund").mock(side_effect=self._refund),
            "refund_status": router.get(
                url__regex=rf"^{re.escape(API)}/disbursement/v1_0/refund/(?P<ref>[^/?]+)$"
            ).mock(side_effect=self._refund_status),
        }
        if timeout:
            routes["requesttopay"].mock(side_effect=httpx.ReadTimeout("timed out"))
        else:
            routes["requesttopay"].mock(side_effect=self._request_to_pay)
        routes["status"].mock(side_effect=self._status)
        return routes

    def _request_to_pay(self, request: httpx.Request) -> httpx.Response:
        ref = request.headers["X-Reference-Id"]
        if ref in self.requests:
            return httpx.Response(409, json=DUPLICATE)
        body = json.loads(request.content)
        status, reason = SANDBOX_OUTCOMES.get(body["payer"]["partyId"], ("PENDING", None))
        self.requests[ref] = Kept(body, status, reason)
        return httpx.Response(202)

    def _status(self, request: httpx.Request, ref: str) -> httpx.Response:
        kept = self.requests.get(ref)
        if kept is None:
            return httpx.Response(404, json=NOT_FOUND)
        return httpx.Response(200, json=kept.status_body())

    def _refund(self, request: httpx.Request) -> httpx.Response:
        ref = request.headers["X-Reference-Id"]
        if ref in self.refunds:
            return httpx.Response(409, json=DUPLICATE)
        self.refunds[ref] = Kept(json.loads(request.content), "SUCCESSFUL")
        return httpx.Response(202)

    def _refund_status(self, request: httpx.Request, ref: str) -> httpx.Response:
        kept = self.refunds.get(ref)
        if kept is None:
            return httpx.Response(404, json=NOT_FOUND)
        return httpx.Response(200, json=kept.status_body())

    def settle(
        self,
        payment: dict[str, Any],
        status: str,
        reason: str | None = None,
        *,
        amount: str | None = None,
        currency: str | None = None,
    ) -> Kept:
        """The customer acted: the payment's request to pay now has this status (made up if MoMo
        never received it, as after a create that timed out)."""
        ref = reference_id(payment["id"])
        kept = self.requests.get(ref)
        if kept is None:
            kept = self.requests[ref] = Kept(request_to_pay_body(payment))
        kept.status, kept.reason = status, reason
        if amount is not None:
            kept.body["amount"] = amount
        if currency is not None:
            kept.body["currency"] = currency
        return kept


def major(amount: int, currency: str) -> str:
    """MoMo's amount string: whole amounts without decimals, as the gateway sends them."""
    if currency in ("UGX", "RWF", "XAF", "XOF", "GNF"):
        return str(amount)
    return str(amount // 100) if amount % 100 == 0 else f"{amount // 100}.{amount % 100:02d}"


def request_to_pay_body(payment: dict[str, Any], phone: str = PAYER_SUCCESS) -> dict[str, Any]:
    """What the gateway sends for `payment`."""
    return {
        "amount": major(payment["amount"], payment["currency"]),
        "currency": payment["currency"],
        "externalId": payment["id"],
        "payer": {"partyIdType": "MSISDN", "partyId": phone.removeprefix("+")},
        "payerMessage": f"Payment {payment['id']}",
        "payeeNote": payment["id"],
    }


def callback(kept: Kept) -> tuple[dict[str, str], bytes]:
    """MoMo's callback: the status GET's JSON, unsigned, to the URL with our token."""
    return (
        {"content-type": "application/json", CALLBACK_TOKEN_HEADER: MOMO_CALLBACK_TOKEN},
        orjson.dumps(kept.status_body()),
    )


class MomoDriver(Driver):
    name = "momo"
    currency = "EUR"  # the sandbox's only currency
    decline_code = "customer_canceled"

    def settings(self) -> MomoSettings:
        return MomoSettings(
            test={
                "subscription_key": MOMO_SUBSCRIPTION_KEY,
                "api_user": MOMO_API_USER,
                "api_key": MOMO_API_KEY,
                "base_url": MOMO_API,
                "disbursement_subscription_key": MOMO_DISBURSEMENT_SUBSCRIPTION_KEY,
                "disbursement_api_user": MOMO_DISBURSEMENT_API_USER,
                "disbursement_api_key": MOMO_DISBURSEMENT_API_KEY,
            },
            callback_token=MOMO_CALLBACK_TOKEN,
            reconcile_after_seconds=10**7,
        )

    def __init__(self) -> None:
        self.fake = FakeMomo()

    def create_body(self, scenario: str) -> dict[str, Any]:
        phone = {"decline": PAYER_REJECTED, "timeout": PAYER_DELAYED}.get(scenario, PAYER_ONGOING)
        return {**super().create_body(scenario), "customer": {"phone": phone}}

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        self.fake.install(router, timeout=scenario == "timeout")

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        self.fake.install(router)
        momo_status, reason = {
            "succeeded": ("SUCCESSFUL", None),
            "failed": ("FAILED", "APPROVAL_REJECTED"),
            "requires_action": ("PENDING", None),
        }[status]
        self.fake.settle(payment, momo_status, reason)

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
        # MoMo's callbacks have no id of their own: a repeat is the same reference and status again.
        if reference is not None:
            ghost = Kept({**request_to_pay_body(payment), "externalId": reference}, "SUCCESSFUL")
            return callback(ghost)
        cur = currency or payment["currency"]
        money = major(payment["amount"] if amount is None else amount, cur)
        kept = self.fake.settle(payment, "SUCCESSFUL", amount=money, currency=cur)
        return callback(kept)

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # The status body's payer (MSISDN) and financialTransactionId.
        kept = self.fake.requests[reference_id(payment["id"])]
        return {
            "type": "mobile_money",
            "operator": "mtn",
            "phone_last4": kept.body["payer"]["partyId"][-4:],
            "receipt": kept.financial_transaction_id,
        }

    def full_numbers(self, payment: dict[str, Any]) -> list[str]:
        return [self.fake.requests[reference_id(payment["id"])].body["payer"]["partyId"]]

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        # Nothing is signed: a forger can only guess the URL's token.
        return {**headers, CALLBACK_TOKEN_HEADER: MOMO_CALLBACK_TOKEN[:-4] + "XXXX"}

    def webhook_path(self, headers: dict[str, str]) -> str:
        return f"/v1/webhooks/{self.name}/{headers[CALLBACK_TOKEN_HEADER]}"


DRIVER = MomoDriver()
