"""MoMo's Disbursement answered as MoMo answers (momoapi.mtn.co.rw's transfer operations, docs/providers/
momo.md "Payouts"): transfers kept by X-Reference-Id, a repeated reference is a 409, the status GET
answers from what is kept, an unknown reference is a 404."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import respx

from support import MOMO_API

TRANSFER = f"{MOMO_API}/disbursement/v1_0/transfer"
LIVE_API = "https://proxy.momoapi.mtn.co.ug"
# docs/providers/momo.md, "Payouts": the transfer's X-Reference-Id namespace, written out here.
PAYOUT_NAMESPACE = uuid.UUID("5b0f4f0e-8a43-5d8e-9d0b-6d6f6d6f706f")
DISBURSEMENT_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSMjU2In0.eyJjbGllbnRJZCI6ImRpc2J1cnNlIn0.c2ln"
PAYEE = "+46733123499"  # a sandbox number that ends SUCCESSFUL
NOT_FOUND = {"code": "RESOURCE_NOT_FOUND", "message": "Requested resource was not found."}
DUPLICATE = {
    "code": "RESOURCE_ALREADY_EXIST",
    "message": "Duplicated reference id. Creation of resource failed.",
}


def reference_id(payout_id: str) -> str:
    return str(uuid.uuid5(PAYOUT_NAMESPACE, payout_id))


@dataclass
class Transfer:
    body: dict[str, Any]
    status: str = "PENDING"
    reason: str | None = None

    def status_body(self) -> dict[str, Any]:
        """GET /disbursement/v1_0/transfer/{referenceId} (and the callback): momoapi.mtn.co.rw's sample."""
        out: dict[str, Any] = {
            "amount": self.body["amount"],
            "currency": self.body["currency"],
            "financialTransactionId": "363440463",
            "externalId": self.body["externalId"],
            "payee": self.body["payee"],
            "payerMessage": self.body["payerMessage"],
            "payeeNote": self.body["payeeNote"],
            "status": self.status,
        }
        if self.status != "SUCCESSFUL":
            del out["financialTransactionId"]
        if self.reason is not None:
            out["reason"] = self.reason
        return out


class FakeDisbursement:
    """MoMo's Disbursement token, transfer and transfer status, state kept by X-Reference-Id."""

    def __init__(self, router: respx.Router, base: str = MOMO_API) -> None:
        self.transfers: dict[str, Transfer] = {}
        self.outcome: tuple[str, str | None] = ("PENDING", None)
        self.token = router.post(f"{base}/disbursement/token/").respond(
            200, json={"access_token": DISBURSEMENT_TOKEN, "token_type": "access_token", "expires_in": 3600}
        )
        self.transfer = router.post(f"{base}/disbursement/v1_0/transfer").mock(side_effect=self._transfer)
        self.status = router.get(
            url__regex=rf"^{re.escape(base)}/disbursement/v1_0/transfer/(?P<ref>[^/?]+)$"
        ).mock(side_effect=self._status)

    def _transfer(self, request: httpx.Request) -> httpx.Response:
        ref = request.headers["X-Reference-Id"]
        if ref in self.transfers:
            return httpx.Response(409, json=DUPLICATE)
        self.transfers[ref] = Transfer(json.loads(request.content), *self.outcome)
        return httpx.Response(202)

    def _status(self, request: httpx.Request, ref: str) -> httpx.Response:
        kept = self.transfers.get(ref)
        if kept is None:
            return httpx.Response(404, json=NOT_FOUND)
        return httpx.Response(200, json=kept.status_body())
