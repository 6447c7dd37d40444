"""Daraja's B2C side for the payout tests, shaped as Daraja sends it: OAuth, the v3 payment request's
synchronous answer, and the Result it POSTs to the ResultURL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import respx

from support import MPESA_API

PHONE, MSISDN = "+254708374149", "254708374149"
REFUSED_2040 = (
    "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service."
)


def accepted(request: httpx.Request) -> httpx.Response:
    """Daraja's synchronous answer: the request is queued; the outcome comes to the ResultURL."""
    sent = json.loads(request.content)
    return httpx.Response(
        200,
        json={
            "ConversationID": f"AG_{datetime.now(UTC):%Y%m%d}_{sent['OriginatorConversationID'][-20:]}",
            "OriginatorConversationID": sent["OriginatorConversationID"],
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        },
    )


def daraja(router: respx.Router, api: str = MPESA_API) -> respx.Route:
    router.get(f"{api}/oauth/v1/generate", params={"grant_type": "client_credentials"}).mock(
        return_value=httpx.Response(200, json={"access_token": uuid.uuid4().hex, "expires_in": "3599"})
    )
    return router.post(f"{api}/mpesa/b2c/v3/paymentrequest").mock(side_effect=accepted)


def result(payout_id: str, conversation: str, code: int = 0, amount_kes: int = 1500) -> bytes:
    """What Daraja POSTs to the ResultURL once the B2C payment is processed (or refused)."""
    body: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": "The service request is processed successfully." if code == 0 else REFUSED_2040,
        "OriginatorConversationID": payout_id,
        "ConversationID": conversation,
        "TransactionID": "NLJ41HAY6Q" if code == 0 else "NLJ0000000",
    }
    if code == 0:
        body["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "TransactionAmount", "Value": amount_kes},
                {"Key": "TransactionReceipt", "Value": "NLJ41HAY6Q"},
                {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -4510.00},
                {"Key": "ReceiverPartyPublicName", "Value": f"{MSISDN} - John Doe"},
                {"Key": "TransactionCompletedDateTime", "Value": "19.12.2019 11:45:50"},
                {"Key": "B2CUtilityAccountAvailableFunds", "Value": 10116.00},
                {"Key": "B2CWorkingAccountAvailableFunds", "Value": 900000.00},
            ]
        }
    body["ReferenceData"] = {
        "ReferenceItem": {
            "Key": "QueueTimeoutURL",
            "Value": "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit",
        }
    }
    return orjson.dumps({"Result": body})


def payout_body(phone: str = PHONE, amount: int = 150_000, **extra: Any) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "KES",
        "provider": "mpesa",
        "destination": {"type": "mobile_money", "phone": phone},
        "reference": "Rider payout week 49",
        **extra,
    }
