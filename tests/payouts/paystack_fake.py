"""Paystack Transfers answered as Paystack answers (PaystackOSS/doc-code-snippets: the transfer initiate
answer, the recipient answer and the transfer.* webhook samples; docs/providers/paystack.md "Payouts").

Recipients are kept by account (a duplicate account number answers the existing record, as Paystack
documents), transfers by reference; `GET /transfer/verify/{reference}` answers from what is kept.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

from support import PAYSTACK_API

RECIPIENT = f"{PAYSTACK_API}/transferrecipient"
TRANSFER = f"{PAYSTACK_API}/transfer"
VERIFY = f"{PAYSTACK_API}/transfer/verify"
CREATED_AT = "2025-08-04T10:32:40.000Z"
_ids = itertools.count(random.randrange(10**7, 9 * 10**7))
_codes = itertools.count(random.randrange(10**5, 9 * 10**5))

OTP_MESSAGE = "Transfer requires OTP to continue"
QUEUED_MESSAGE = "Transfer has been queued"
LOW_BALANCE = {"status": False, "message": "Your balance is not enough to fulfil this request"}


def recipient_data(body: dict[str, Any], code: str) -> dict[str, Any]:
    """`POST /transferrecipient`'s data (the M-Pesa till sample's shape)."""
    return {
        "active": True,
        "createdAt": CREATED_AT,
        "currency": body["currency"],
        "description": None,
        "domain": "test",
        "email": None,
        "id": next(_ids),
        "integration": 845995,
        "metadata": None,
        "name": body["name"],
        "recipient_code": code,
        "type": body["type"],
        "updatedAt": CREATED_AT,
        "is_deleted": False,
        "isDeleted": False,
        "details": {
            "authorization_code": None,
            "account_number": body["account_number"],
            "account_name": None,
            "bank_code": body["bank_code"],
            "bank_name": "Test Bank",
        },
    }


@dataclass
class Kept:
    body: dict[str, Any]
    status: str
    id: int = field(default_factory=lambda: next(_ids))
    code: str = field(default_factory=lambda: f"TRF_{next(_codes):x}pq7z")

    def data(self) -> dict[str, Any]:
        """The transfer as POST /transfer and GET /transfer/verify answer it (doc-code-snippets)."""
        return {
            "transfersessionid": [],
            "transfertrials": [],
            "domain": "test",
            "amount": self.body["amount"],
            "currency": self.body["currency"],
            "reference": self.body["reference"],
            "source": "balance",
            "source_details": None,
            "reason": self.body["reason"],
            "status": self.status,
            "failures": None,
            "transfer_code": self.code,
            "titan_code": None,
            "transferred_at": None,
            "id": self.id,
            "integration": 463433,
            "request": 1068439313,
            "recipient": 56824902,
            "createdAt": CREATED_AT,
            "updatedAt": CREATED_AT,
        }

    def event(self, name: str) -> dict[str, Any]:
        """transfer.success / failed / reversed (doc-code-snippets' events.js shape)."""
        status = {"transfer.success": "success", "transfer.failed": "failed", "transfer.reversed": "reversed"}
        data = self.data() | {"status": status[name]}
        for drop in ("transfersessionid", "transfertrials", "request", "createdAt", "updatedAt"):
            del data[drop]
        data |= {
            "integration": {"id": 463433, "is_live": True, "business_name": "Boom Boom Industries NG"},
            "recipient": {"recipient_code": "RCP_a8wkxiychzdzfgs", "type": "nuban", "domain": "test"},
            "session": {"provider": None, "id": None},
            "created_at": CREATED_AT,
            "updated_at": CREATED_AT,
        }
        return {"event": name, "data": data}


class FakeTransfers:
    def __init__(self, router: respx.Router) -> None:
        self.recipients: dict[tuple[str, str, str], str] = {}
        self.transfers: dict[str, Kept] = {}
        self.initial = "pending"  # what POST /transfer answers: pending | success | otp
        self.recipient = router.post(RECIPIENT).mock(side_effect=self._recipient)
        self.transfer = router.post(TRANSFER).mock(side_effect=self._transfer)
        self.verify = router.get(url__regex=rf"^{re.escape(VERIFY)}/(?P<ref>[^/?]+)$").mock(
            side_effect=self._verify
        )

    def _recipient(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        account = (body["type"], body["bank_code"], body["account_number"])
        code = self.recipients.setdefault(account, f"RCP_{next(_codes):x}rcpt")
        message = "Transfer recipient created successfully"
        return httpx.Response(
            201, json={"status": True, "message": message, "data": recipient_data(body, code)}
        )

    def _transfer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["reference"] in self.transfers:
            return httpx.Response(400, json={"status": False, "message": "Duplicate Transfer Reference"})
        kept = self.transfers[body["reference"]] = Kept(body, self.initial)
        message = OTP_MESSAGE if self.initial == "otp" else QUEUED_MESSAGE
        return httpx.Response(200, json={"status": True, "message": message, "data": kept.data()})

    def _verify(self, request: httpx.Request, ref: str) -> httpx.Response:
        kept = self.transfers.get(ref)
        if kept is None:
            return httpx.Response(404, json={"status": False, "message": "Transfer not found"})
        return httpx.Response(
            200, json={"status": True, "message": "Transfer retrieved", "data": kept.data()}
        )
