"""Airtel Money's disbursements answered as Airtel answers (docs/providers/airtel.md, "Payouts"):
disbursements kept by transaction.id, a repeated id is refused as a duplicate (DP00900001011), the
status query answers from what is kept, an unknown id is "transaction not found" (DP00900001015).
The payee's national number picks what Airtel does with a new disbursement."""

from __future__ import annotations

import base64
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from drivers.airtel import ACCESS_TOKEN, envelope, token_body
from support import AIRTEL_API

DISBURSE = f"{AIRTEL_API}/standard/v1/disbursements/"
PLAIN_PIN = "1234"
# Airtel's key pair for the tests: the public half encrypts the PIN as an operator does once (or the
# portal does), the private half is Airtel's, to show the PIN arrives as it was encrypted.
_AIRTEL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
AIRTEL_PUBLIC_PEM = _AIRTEL_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
ENCRYPTED_PIN = base64.b64encode(
    _AIRTEL_KEY.public_key().encrypt(PLAIN_PIN.encode(), padding.PKCS1v15())
).decode()

# Ugandan payees (+256): the national number Airtel gets, and what the fake does with it.
PAYEE = "+256752000009"  # paid at once (TS)
PAYEE_SLOW = "+256752000001"  # ambiguous at first (DP00900001000), TIP until settled
PAYEE_POOR = "+256752000007"  # refused: our wallet's balance is too low (DP00900001007)
PAYEE_LIMIT = "+256752000003"  # refused: over the limit (DP00900001003)
REFUSED = {"752000007": "DP00900001007", "752000003": "DP00900001003"}
_ids = itertools.count(10_000)


def decrypt_pin(encrypted: str) -> str:
    return _AIRTEL_KEY.decrypt(base64.b64decode(encrypted), padding.PKCS1v15()).decode()


@dataclass
class Disbursement:
    body: dict[str, Any]
    status: str = "TS"
    code: str = "DP00900001001"

    def enquiry(self) -> dict[str, Any]:
        """GET /standard/v1/disbursements/{id}."""
        tid = self.body["transaction"]["id"]
        message = {"TS": "Success", "TF": "Failed", "TIP": "In process", "TA": "Ambiguous"}[self.status]
        return {
            "data": {"transaction": {"id": tid, "message": message, "status": self.status}},
            "status": envelope(self.code, success=True, message="SUCCESS"),
        }


def answer(
    tid: str, code: str, status: str | None, *, success: bool = True, result: str = "ESB000010"
) -> Any:
    transaction: dict[str, Any] = {"reference_id": f"APC{next(_ids)}", "id": tid}
    if status is not None:
        transaction |= {"airtel_money_id": f"partner-{tid}", "status": status}
    return {"data": {"transaction": transaction}, "status": envelope(code, success=success, result=result)}


class FakeDisbursements:
    """Airtel's token, disbursement and disbursement status, state kept by transaction.id."""

    def __init__(self, router: respx.Router, base: str = AIRTEL_API) -> None:
        self.kept: dict[str, Disbursement] = {}
        self.token = router.post(f"{base}/auth/oauth2/token").respond(200, json=token_body())
        self.disburse = router.post(f"{base}/standard/v1/disbursements/").mock(side_effect=self._disburse)
        self.status = router.get(
            url__regex=rf"^{re.escape(base)}/standard/v1/disbursements/(?P<tid>[^/?]+)$"
        ).mock(side_effect=self._status)

    def take(self, request: httpx.Request) -> Disbursement:
        body = json.loads(request.content)
        kept = Disbursement(body)
        msisdn = body["payee"]["msisdn"]
        if msisdn in REFUSED:
            kept.status, kept.code = "TF", REFUSED[msisdn]
        elif msisdn == "752000001":
            kept.status, kept.code = "TIP", "DP00900001000"
        self.kept[body["transaction"]["id"]] = kept
        return kept

    def _disburse(self, request: httpx.Request) -> httpx.Response:
        tid = json.loads(request.content)["transaction"]["id"]
        if tid in self.kept:
            dup = envelope(
                "DP00900001011", success=False, message="Duplicate transaction id", result="ESB000041"
            )
            return httpx.Response(200, json={"data": {}, "status": dup})
        kept = self.take(request)
        if kept.status == "TF":
            return httpx.Response(200, json=answer(tid, kept.code, "TF", success=False, result="ESB000011"))
        if kept.status == "TIP":
            return httpx.Response(200, json=answer(tid, kept.code, None, success=False, result="ESB000001"))
        return httpx.Response(200, json=answer(tid, kept.code, "TS"))

    def _status(self, request: httpx.Request, tid: str) -> httpx.Response:
        kept = self.kept.get(tid)
        if kept is None:
            status = envelope(
                "DP00900001015", success=False, message="Transaction not found", result="ESB000045"
            )
            return httpx.Response(200, json={"data": {}, "status": status})
        return httpx.Response(200, json=kept.enquiry())


__all__ = ["ACCESS_TOKEN", "FakeDisbursements"]
