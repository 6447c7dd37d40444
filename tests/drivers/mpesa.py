"""M-Pesa (Daraja) for the contract suite: bodies shaped as docs/providers/mpesa.md shows them.

`FakeDaraja` answers OAuth, STK Push, STK Query and Reversal through respx and remembers what each
customer did, so STK Query tells the truth: a "success webhook" is the customer paying (Daraja's
state) plus the callback Daraja then posts; the gateway confirms it with STK Query before acting.
M-Pesa signs nothing: the callback's authenticity is the secret token in its URL path, which the
driver carries in the (router-stripped) callback-token header and turns into the path in webhook_path().
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import string
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import respx

from drivers.base import Driver
from gateway.providers.base import CALLBACK_TOKEN_HEADER
from gateway.providers.mpesa.settings import MpesaSettings
from support import (
    MPESA_API,
    MPESA_CALLBACK_TOKEN,
    MPESA_CONSUMER_KEY,
    MPESA_CONSUMER_SECRET,
    MPESA_INITIATOR,
    MPESA_PASSKEY,
    MPESA_SECURITY_CREDENTIAL,
    MPESA_SHORTCODE,
)

PHONE = "+254708374149"  # the MSISDN of Daraja's own samples
MSISDN = 254708374149
# The test gateway gives up on a provider after 2 s (conftest) and keeps a push's answer for 1.5x that.
LATE_ANSWER_SECONDS = 2.3
EAT = timezone(timedelta(hours=3))
BALANCE = "Utility Account|KES|51661.00|51661.00|0.00|0.00"
RESULT_DESC = {
    "0": "The service request is processed successfully.",
    "1": "The balance is insufficient for the transaction.",
    "1032": "Request cancelled by user",
    "1037": "DS timeout user cannot be reached",
    "2001": "The initiator information is invalid.",
}
_seq = itertools.count(random.randrange(10**6, 9 * 10**6))


def checkout_id() -> str:
    return f"ws_CO_{datetime.now(EAT):%d%m%Y%H%M%S}{next(_seq):09d}"


def merchant_request_id() -> str:
    return f"{random.randrange(10**4, 10**5)}-{random.randrange(10**7, 10**8)}-{next(_seq) % 10}"


def receipt() -> str:
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=10))


def major(amount: int) -> orjson.Fragment:
    """Minor units as the decimal literal Daraja writes: 5000 -> 50.00."""
    return orjson.Fragment(f"{amount // 100}.{amount % 100:02d}".encode())


def daraja_error(status: int, code: str, message: str) -> httpx.Response:
    body = {"requestId": f"{random.randrange(10**4, 10**5)}-{next(_seq)}-1", "errorCode": code}
    return httpx.Response(status, json={**body, "errorMessage": message})


def stk_callback(
    checkout: str,
    merchant_request: str,
    code: int,
    *,
    amount: int | None = None,
    mpesa_receipt: str | None = None,
) -> bytes:
    """What Daraja POSTs to the CallBackURL: CallbackMetadata only on success."""
    stk: dict[str, Any] = {
        "MerchantRequestID": merchant_request,
        "CheckoutRequestID": checkout,
        "ResultCode": code,
        "ResultDesc": RESULT_DESC.get(str(code), "Failed"),
    }
    if code == 0:
        assert amount is not None
        assert mpesa_receipt is not None
        stk["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": major(amount)},
                {"Name": "MpesaReceiptNumber", "Value": mpesa_receipt},
                {"Name": "TransactionDate", "Value": int(f"{datetime.now(EAT):%Y%m%d%H%M%S}")},
                {"Name": "PhoneNumber", "Value": MSISDN},
            ]
        }
    return orjson.dumps({"Body": {"stkCallback": stk}})


def reversal_result(
    conversation: str, originator: str, original: str, amount: int, code: int | str = 0, result_type: int = 0
) -> bytes:
    """What Daraja POSTs to the ResultURL after a reversal."""
    return orjson.dumps(
        {
            "Result": {
                "ResultType": result_type,
                "ResultCode": code,
                "ResultDesc": "The service request is processed successfully."
                if code == 0
                else "The transaction has already been reversed.",
                "OriginatorConversationID": originator,
                "ConversationID": conversation,
                "TransactionID": receipt(),
                "ResultParameters": {
                    "ResultParameter": [
                        {"Key": "DebitAccountBalance", "Value": BALANCE},
                        {"Key": "Amount", "Value": major(amount)},
                        {"Key": "TransCompletedTime", "Value": int(f"{datetime.now(EAT):%Y%m%d%H%M%S}")},
                        {"Key": "OriginalTransactionID", "Value": original},
                        {"Key": "Charge", "Value": orjson.Fragment(b"0.00")},
                        {"Key": "CreditPartyPublicName", "Value": "254708374149 - John Doe"},
                        {"Key": "DebitPartyPublicName", "Value": "174379 - Gateway Test Shop"},
                    ]
                },
                "ReferenceData": {
                    "ReferenceItem": {
                        "Key": "QueueTimeoutURL",
                        "Value": "https://internalsandbox.safaricom.co.ke/mpesa/reversalresults/v1/submit",
                    }
                },
            }
        }
    )


def callback_headers(token: str = MPESA_CALLBACK_TOKEN) -> dict[str, str]:
    return {"content-type": "application/json", CALLBACK_TOKEN_HEADER: token}


class FakeDaraja:
    """Daraja's side of the conversation, answering through a respx router."""

    def __init__(self) -> None:
        # What a create gets from STK Push: "action" (accepted), "decline", "timeout" (a late answer).
        self.push_mode = "action"
        # In "timeout" mode the late answer comes LATE_ANSWER_SECONDS after the push, or, when a test
        # sets this, when the test releases it (once the gateway has answered 504: no timing race).
        self.late_answer: asyncio.Event | None = None
        # CheckoutRequestID -> the ResultCode the customer's action produced (none yet: still processing).
        self.outcomes: dict[str, str] = {}
        # AccountReference -> ResultCode, for payments whose CheckoutRequestID the test never saw.
        self.outcomes_by_reference: dict[str, str] = {}
        self.reference_of: dict[str, str] = {}
        self.merchant_request_of: dict[str, str] = {}
        self.receipts: dict[str, str] = {}  # CheckoutRequestID -> MpesaReceiptNumber
        # Our payment id -> (ConversationID, OriginatorConversationID) of its last reversal.
        self.reversals: dict[str, tuple[str, str]] = {}
        self.pushes: list[dict[str, Any]] = []
        self.queries: list[dict[str, Any]] = []
        self.reversal_requests: list[dict[str, Any]] = []
        # Our payment id -> its CheckoutRequestID, for payments the customer paid.
        self.paid: dict[str, str] = {}

    def install(self, router: respx.Router) -> None:
        """Adds Daraja's routes to the test's router once; every answer follows this object's state."""
        try:
            router.routes["mpesa_oauth"]
            return
        except KeyError:
            pass
        router.get(
            f"{MPESA_API}/oauth/v1/generate", params={"grant_type": "client_credentials"}, name="mpesa_oauth"
        ).mock(side_effect=self._token)
        router.post(f"{MPESA_API}/mpesa/stkpush/v1/processrequest", name="mpesa_push").mock(
            side_effect=self._push
        )
        router.post(f"{MPESA_API}/mpesa/stkpushquery/v1/query", name="mpesa_query").mock(
            side_effect=self._query
        )
        router.post(f"{MPESA_API}/mpesa/reversal/v1/request", name="mpesa_reversal").mock(
            side_effect=self._reversal
        )

    def _token(self, request: httpx.Request) -> httpx.Response:
        token = "".join(random.choices(string.ascii_letters + string.digits, k=28))
        return httpx.Response(200, json={"access_token": token, "expires_in": "3599"})

    async def _push(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        self.pushes.append(sent)
        if self.push_mode == "decline":
            return daraja_error(
                500,
                "500.001.1001",
                "Unable to lock subscriber, a transaction is already in process for the current subscriber",
            )
        if self.push_mode == "timeout":
            if self.late_answer is not None:
                await self.late_answer.wait()
            else:
                await asyncio.sleep(LATE_ANSWER_SECONDS)
        checkout, merchant = checkout_id(), merchant_request_id()
        self.reference_of[checkout] = sent["AccountReference"]
        self.merchant_request_of[checkout] = merchant
        return httpx.Response(
            200,
            json={
                "MerchantRequestID": merchant,
                "CheckoutRequestID": checkout,
                "ResponseCode": "0",
                "ResponseDescription": "Success. Request accepted for processing",
                "CustomerMessage": "Success. Request accepted for processing",
            },
        )

    def _query(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        self.queries.append(sent)
        checkout = sent["CheckoutRequestID"]
        code = self.outcomes.get(checkout)
        if code is None:
            code = self.outcomes_by_reference.get(self.reference_of.get(checkout, ""))
        if code is None:
            return daraja_error(500, "500.001.1001", "The transaction is being processed")
        return httpx.Response(
            200,
            json={
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successfully",
                "MerchantRequestID": self.merchant_request_of.get(checkout, merchant_request_id()),
                "CheckoutRequestID": checkout,
                "ResultCode": code,
                "ResultDesc": RESULT_DESC.get(code, "Failed"),
            },
        )

    def _reversal(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        self.reversal_requests.append(sent)
        if sent["TransactionID"] not in self.receipts.values():
            return daraja_error(400, "400.002.02", "Bad Request - Invalid TransactionID")
        conversation = f"AG_{datetime.now(UTC):%Y%m%d}_{uuid.uuid4().hex[:20]}"
        originator = f"{random.randrange(10**4, 10**5)}-{next(_seq)}-1"
        payment = next(p for p, c in self.paid.items() if self.receipts.get(c) == sent["TransactionID"])
        self.reversals[payment] = (conversation, originator)
        return httpx.Response(
            200,
            json={
                "OriginatorConversationID": originator,
                "ConversationID": conversation,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            },
        )

    def pay(self, payment: dict[str, Any], code: str = "0") -> str:
        """The customer answers the prompt; returns the receipt (a new one for each payment)."""
        checkout = payment["provider_reference"]
        self.outcomes[checkout] = code
        self.paid[payment["id"]] = checkout
        return self.receipts.setdefault(checkout, receipt())


class MpesaDriver(Driver):
    name = "mpesa"
    currency = "KES"
    amount = 5_000  # KES 50
    decline_code = "customer_busy"
    names_currency = False  # Daraja's callbacks carry no currency: KES only
    partial_refunds = False  # reversals return whole payments (GATEWAY_MPESA__PARTIAL_REVERSALS off)

    def settings(self) -> MpesaSettings:
        return MpesaSettings(
            test={
                "consumer_key": MPESA_CONSUMER_KEY,
                "consumer_secret": MPESA_CONSUMER_SECRET,
                "shortcode": MPESA_SHORTCODE,
                "passkey": MPESA_PASSKEY,
                "initiator_name": MPESA_INITIATOR,
                "security_credential": MPESA_SECURITY_CREDENTIAL,
                "base_url": MPESA_API,
            },
            callback_token=MPESA_CALLBACK_TOKEN,
            reconcile_after_seconds=10**7,
        )

    def __init__(self) -> None:
        self.daraja = FakeDaraja()

    def create_body(self, scenario: str) -> dict[str, Any]:
        return {
            **super().create_body(scenario),
            "customer": {"name": "Wanjiku Kamau", "phone": PHONE},
            # 12 alphanumerics: exactly the AccountReference the customer sees.
            "reference": f"ord{uuid.uuid4().hex[:9]}",
            "description": "Order at the test shop",
        }

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        self.daraja.install(router)
        self.daraja.push_mode = scenario if scenario in ("decline", "timeout") else "action"

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        self.daraja.install(router)
        code = {"succeeded": "0", "failed": "1032"}.get(status)
        if code is None:
            return  # processing: STK Query keeps answering "being processed"
        if payment["provider_reference"]:
            self.daraja.outcomes[payment["provider_reference"]] = code
        else:  # the create timed out: the test never learnt the CheckoutRequestID
            self.daraja.outcomes_by_reference[payment["reference"]] = code

    def mock_refund(self, router: respx.Router, payment: dict[str, Any], amount: int) -> None:
        self.daraja.install(router)

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        if reference is not None:  # a callback for a push Daraja never made for us
            return callback_headers(), stk_callback(
                reference, merchant_request_id(), 0, amount=payment["amount"], mpesa_receipt=receipt()
            )
        mpesa_receipt = self.daraja.pay(payment)
        checkout = payment["provider_reference"]
        body = stk_callback(
            checkout,
            self.daraja.merchant_request_of.get(checkout, merchant_request_id()),
            0,
            amount=payment["amount"] if amount is None else amount,
            mpesa_receipt=mpesa_receipt,
        )
        return callback_headers(), body

    def refund_webhook(
        self, payment: dict[str, Any], refund: dict[str, Any]
    ) -> tuple[dict[str, str], bytes] | None:
        conversation, originator = self.daraja.reversals[payment["id"]]
        original = self.daraja.receipts[payment["provider_reference"]]
        return callback_headers(), reversal_result(conversation, originator, original, refund["amount"])

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # The callback's MpesaReceiptNumber and PhoneNumber; STK Query alone names neither, so the
        # number is the one prompted (the customer's) and the receipt stays unknown.
        receipt = self.daraja.receipts[payment["provider_reference"]] if via == "webhook" else None
        return {"type": "mobile_money", "operator": "mpesa", "phone_last4": "4149", "receipt": receipt}

    def full_numbers(self, payment: dict[str, Any]) -> list[str]:
        return [str(MSISDN)]

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        return {**headers, CALLBACK_TOKEN_HEADER: MPESA_CALLBACK_TOKEN[:-4] + "XXXX"}

    def webhook_path(self, headers: dict[str, str]) -> str:
        return f"/v1/webhooks/mpesa/{headers[CALLBACK_TOKEN_HEADER]}"


DRIVER = MpesaDriver()
