"""Flutterwave v3 Transfers answered as Flutterwave answers (Flutterwave/Node-v3 documentation/transfers.md:
the create answer and the transfer list; the v3 webhook docs' transfer.completed sample): transfers
kept by reference, `GET /v3/transfers/{id}` and `GET /v3/transfers?reference=` answer from them.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import respx

from support import FLUTTERWAVE_API, FLUTTERWAVE_SECRET_HASH

TRANSFERS = f"{FLUTTERWAVE_API}/v3/transfers"
CREATED_AT = "2023-03-11T01:14:21.000Z"
_ids = itertools.count(random.randrange(10**5, 9 * 10**5))
LOW_BALANCE = "DISBURSE FAILED: Insufficient funds in customer wallet"


@dataclass
class Kept:
    body: dict[str, Any]
    status: str = "NEW"
    complete_message: str = ""
    id: int = field(default_factory=lambda: next(_ids))

    def data(self) -> dict[str, Any]:
        """The transfer as POST /v3/transfers and GET /v3/transfers[/{id}] answer it."""
        return {
            "id": self.id,
            "account_number": self.body["account_number"],
            "bank_code": self.body["account_bank"],
            "full_name": self.body.get("beneficiary_name") or "N/A",
            "created_at": CREATED_AT,
            "currency": self.body["currency"],
            "debit_currency": self.body["currency"],
            "amount": number(self.body["amount"]),
            "fee": 26.875,
            "status": self.status,
            "reference": self.body["reference"],
            "meta": self.body.get("meta"),
            "narration": self.body["narration"],
            "approver": None,
            "complete_message": self.complete_message,
            "requires_approval": 0,
            "is_approved": 1,
            "bank_name": "ACCESS BANK NIGERIA",
        }

    def webhook(self) -> bytes:
        """transfer.completed as the v3 webhook docs show it (`fullname`, no `full_name`)."""
        data = self.data()
        data["fullname"] = data.pop("full_name")
        return json.dumps({"event": "transfer.completed", "event.type": "Transfer", "data": data}).encode()


def number(value: Decimal | int) -> int | float:
    """A JSON number as Flutterwave writes amounts: 5000, 125.5."""
    return int(value) if value == int(value) else float(value)


def verif_hash() -> dict[str, str]:
    return {"content-type": "application/json", "verif-hash": FLUTTERWAVE_SECRET_HASH}


class FakeTransfers:
    def __init__(self, router: respx.Router) -> None:
        self.transfers: dict[str, Kept] = {}
        self.initial = ("NEW", "")
        self.create = router.post(TRANSFERS).mock(side_effect=self._create)
        self.by_id = router.get(url__regex=rf"^{re.escape(TRANSFERS)}/(?P<ident>[0-9]+)$").mock(
            side_effect=self._by_id
        )
        self.listed = router.get(url__regex=rf"^{re.escape(TRANSFERS)}(\?.*)?$").mock(side_effect=self._list)

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content, parse_float=Decimal)
        if body["reference"] in self.transfers:
            error = {
                "status": "error",
                "message": "Transfer with this reference already exists",
                "data": None,
            }
            return httpx.Response(400, json=error)
        kept = self.transfers[body["reference"]] = Kept(body, *self.initial)
        return httpx.Response(200, content=self._envelope("Transfer Queued Successfully", kept.data()))

    def _by_id(self, request: httpx.Request, ident: str) -> httpx.Response:
        for kept in self.transfers.values():
            if kept.id == int(ident):
                return httpx.Response(200, content=self._envelope("Transfer fetched", kept.data()))
        return httpx.Response(404, json={"status": "error", "message": "Transfer not found", "data": None})

    def _list(self, request: httpx.Request) -> httpx.Response:
        reference = request.url.params.get("reference")
        found = [k.data() for k in self.transfers.values() if reference in (None, k.body["reference"])]
        page = {"page_info": {"total": len(found), "current_page": 1, "total_pages": 1}}
        return httpx.Response(200, content=self._envelope("Transfers fetched", found, meta=page))

    @staticmethod
    def _envelope(message: str, data: Any, **extra: Any) -> bytes:
        return json.dumps({"status": "success", "message": message, **extra, "data": data}).encode()
