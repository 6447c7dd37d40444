"""The gateway's peers in the fault suite, on 127.0.0.1: a Paystack stand-in that counts every call,
and a merchant's webhook endpoint that can keep deliveries in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from drivers.paystack import charge_answer, transaction, verify_answer
from receiver import Received, serving

# --- a provider on 127.0.0.1 ------------------------------------------------------------------------

DECLINED_CARD = "AUTH_declined0"  # the saved card FakePaystack declines; any other AUTH_ code pays


@dataclass
class FakePaystack:
    """Paystack's `POST /transaction/charge_authorization` and `GET /transaction/verify/{reference}`.

    A charge is taken (the transaction exists at Paystack) before anything is answered, as on the
    real service, where a timeout or a 5xx says nothing about whether the charge happened. A repeated
    reference is refused as Paystack refuses it ("Duplicate Transaction Reference"), so a second
    charge can never happen here: `charges` counts how often the gateway tried.

    `mode`: "ok" answers the charge after `answer_after` seconds; "timeout" answers after
    `hold_seconds` (longer than the gateway waits); "error" answers 500, 502 and 503 in turn.
    """

    port: int
    secret_key: str
    mode: str = "ok"
    answer_after: float = 0.0
    hold_seconds: float = 3.0
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors_sent: Counter[int] = field(default_factory=Counter)
    in_flight: int = 0  # charges taken and not answered yet

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, operation: str, references: Collection[str] | None = None) -> Counter[str]:
        """Calls of `operation` ("charge", "verify") per reference."""
        return Counter(
            {
                ref: n
                for (op, ref), n in self.calls.items()
                if op == operation and (references is None or ref in references)
            }
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path, method = scope["path"], scope["method"]
        if request.headers.get("authorization") != f"Bearer {self.secret_key}":
            status, answer = 401, {"status": False, "message": "Invalid key"}
        elif method == "POST" and path == "/transaction/charge_authorization":
            try:
                body = orjson.loads(await request.body())
            except ClientDisconnect:  # the gateway died while sending it: no charge was asked for
                return
            self.in_flight += 1
            try:
                reply = await self._charge(body)
            finally:
                self.in_flight -= 1
            if isinstance(reply, Response):
                await reply(scope, receive, send)
                return
            status, answer = reply
        elif method == "GET" and path.startswith("/transaction/verify/"):
            status, answer = self._verify(path.rsplit("/", 1)[-1])
        else:
            status, answer = 404, {"status": False, "message": "Not found"}
        await Response(orjson.dumps(answer), status, media_type="application/json")(scope, receive, send)

    async def _charge(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | Response:
        ref = body["reference"]
        self.calls["charge", ref] += 1
        if ref in self.transactions:
            return 400, {"status": False, "message": "Duplicate Transaction Reference"}
        declined = body["authorization_code"] == DECLINED_CARD
        tx = transaction(
            ref,
            body["amount"],
            body["currency"],
            "failed" if declined else "success",
            "Declined" if declined else "Successful",
        )
        self.transactions[ref] = tx  # taken: whatever reaches the gateway now, Paystack has it
        if self.mode == "timeout":
            await asyncio.sleep(self.hold_seconds)
        elif self.mode == "error":
            status = (500, 502, 503)[sum(self.errors_sent.values()) % 3]
            self.errors_sent[status] += 1
            if status == 500:
                return Response(b'{"status":false,"message":"An error occurred"}', 500)
            return Response(b"upstream connect error or disconnect/reset before headers", status)
        await asyncio.sleep(self.answer_after)
        return 200, charge_answer(tx)

    def _verify(self, ref: str) -> tuple[int, dict[str, Any]]:
        self.calls["verify", ref] += 1
        tx = self.transactions.get(ref)
        if tx is None:
            return 400, {"status": False, "message": "Transaction reference not found"}
        return 200, verify_answer(tx)


@contextlib.asynccontextmanager
async def fake_paystack(port: int, secret_key: str) -> AsyncIterator[FakePaystack]:
    app = FakePaystack(port, secret_key)
    async with serving(app, port, force_exit=True):  # a held charge does not hold the test's end
        yield app


def paystack_reference(payment_id: str) -> str:
    """The reference the gateway gives Paystack for a test-mode payment (docs/providers/paystack.md)."""
    prefix, body = payment_id.split("_", 1)
    return f"{prefix}-{body}-test"


# --- a merchant's webhook receiver -----------------------------------------------------------------


@dataclass
class HoldingReceiver:
    """A merchant's webhook endpoint on 127.0.0.1 that records every arrival as it comes in and,
    while `holding`, keeps its answer back until `release()`: deliveries stay in flight."""

    port: int
    arrivals: list[Received] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # webhook-ids of the deliveries held
    holding: bool = False
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def release(self) -> None:
        self.holding = False
        self._release.set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            body = await request.body()
        except ClientDisconnect:  # the worker died mid-send: nothing arrived
            return
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.arrivals.append(Received(headers, body))
        if self.holding:
            self.held.append(headers["webhook-id"])
            await self._release.wait()
        await Response(b"ok", 200)(scope, receive, send)


@contextlib.asynccontextmanager
async def holding_receiver(port: int) -> AsyncIterator[HoldingReceiver]:
    app = HoldingReceiver(port)
    async with serving(app, port, force_exit=True):
        yield app
