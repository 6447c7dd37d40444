"""A local Daraja (M-Pesa) for the browser tests: a real HTTP server on 127.0.0.1 that answers OAuth,
STK Push and STK Query with the bodies docs/providers/mpesa.md (and /work/shared/providers.md) show,
and, when the test says the customer paid, posts Daraja's callback to the CallBackURL it was given.
The bodies come from the contract suite's driver (drivers/mpesa.py), so both fakes speak alike."""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from drivers.mpesa import RESULT_DESC, checkout_id, merchant_request_id, receipt, stk_callback
from gateway.embedded import free_port


class FakeDaraja:
    def __init__(self) -> None:
        self.pushes: list[dict[str, Any]] = []
        self.checkouts: list[str] = []  # the CheckoutRequestID of each push, in order
        self.queries: list[dict[str, Any]] = []
        self.pushed = asyncio.Event()
        self._outcomes: dict[str, str] = {}  # CheckoutRequestID -> ResultCode, once the customer acted
        self._merchant_request: dict[str, str] = {}
        self._callback_url: dict[str, str] = {}
        self._amount: dict[str, int] = {}
        self.app = Starlette(
            routes=[
                Route("/oauth/v1/generate", self._token, methods=["GET"]),
                Route("/mpesa/stkpush/v1/processrequest", self._push, methods=["POST"]),
                Route("/mpesa/stkpushquery/v1/query", self._query, methods=["POST"]),
            ]
        )
        self.url = ""

    async def _token(self, request: Request) -> Response:
        if (
            request.query_params.get("grant_type") != "client_credentials"
            or "authorization" not in request.headers
        ):
            return JSONResponse(
                {"errorCode": "400.008.01", "errorMessage": "Invalid Authentication passed"}, 400
            )
        token = "".join(random.choices(string.ascii_letters + string.digits, k=28))
        return JSONResponse({"access_token": token, "expires_in": "3599"})

    async def _push(self, request: Request) -> Response:
        sent = orjson.loads(await request.body())
        self.pushes.append(sent)
        checkout, merchant = checkout_id(), merchant_request_id()
        self._merchant_request[checkout] = merchant
        self._callback_url[checkout] = sent["CallBackURL"]
        self._amount[checkout] = int(sent["Amount"]) * 100
        self.checkouts.append(checkout)
        self.pushed.set()
        return JSONResponse(
            {
                "MerchantRequestID": merchant,
                "CheckoutRequestID": checkout,
                "ResponseCode": "0",
                "ResponseDescription": "Success. Request accepted for processing",
                "CustomerMessage": "Success. Request accepted for processing",
            }
        )

    async def _query(self, request: Request) -> Response:
        sent = orjson.loads(await request.body())
        self.queries.append(sent)
        checkout = sent["CheckoutRequestID"]
        code = self._outcomes.get(checkout)
        if code is None:
            return JSONResponse(
                {
                    "requestId": "1-1-1",
                    "errorCode": "500.001.1001",
                    "errorMessage": "The transaction is being processed",
                },
                500,
            )
        return JSONResponse(
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successfully",
                "MerchantRequestID": self._merchant_request[checkout],
                "CheckoutRequestID": checkout,
                "ResultCode": code,
                "ResultDesc": RESULT_DESC.get(code, "Failed"),
            }
        )

    async def customer_pays(self, checkout: str) -> None:
        """The customer enters the PIN: Daraja's state says so, then it posts the callback."""
        self._outcomes[checkout] = "0"
        body = stk_callback(
            checkout,
            self._merchant_request[checkout],
            0,
            amount=self._amount[checkout],
            mpesa_receipt=receipt(),
        )
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                self._callback_url[checkout], content=body, headers={"content-type": "application/json"}
            )
        assert r.status_code == 200, r.text


@contextlib.asynccontextmanager
async def fake_daraja() -> AsyncIterator[FakeDaraja]:
    fake = FakeDaraja()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_config=None))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        await task
