"""A local Paystack for the browser tests: its API (initialize, verify) on plain HTTP, as the gateway
calls it, and its hosted payment page on HTTPS (a throwaway certificate; the browser context accepts
it), as a customer's browser reaches checkout.paystack.com. The checkout's CSP lets a form post
redirect to an https: origin only, so the page must be https for the redirect to be allowed.

Paying on the page posts Paystack's signed `charge.success` webhook to the gateway, then sends the
browser to the `callback_url` with `trxref` and `reference`, as Paystack does. Bodies and the
signature come from the contract suite's driver (drivers/paystack.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from drivers.paystack import initialize_answer, sign, transaction, verify_answer
from gateway.embedded import free_port


@dataclass
class Started:
    reference: str
    amount: int
    currency: str
    callback_url: str | None
    paid: bool = False


@dataclass
class FakePaystack:
    webhook_url: str  # the gateway's /v1/webhooks/paystack
    api_url: str = ""
    page_url: str = ""
    started: dict[str, Started] = field(default_factory=dict)  # access code -> transaction
    page_views: int = 0

    def api(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/transaction/initialize", self._initialize, methods=["POST"]),
                Route("/transaction/verify/{reference}", self._verify, methods=["GET"]),
            ]
        )

    def pages(self) -> Starlette:
        return Starlette(routes=[Route("/{access}", self._page, methods=["GET", "POST"])])

    async def _initialize(self, request: Request) -> Response:
        if request.headers.get("authorization", "").split(" ")[0] != "Bearer":
            return JSONResponse({"status": False, "message": "Invalid key"}, 401)
        sent = orjson.loads(await request.body())
        answer = initialize_answer(sent["reference"])
        access = answer["data"]["access_code"]
        answer["data"]["authorization_url"] = f"{self.page_url}/{access}"
        self.started[access] = Started(
            sent["reference"], int(sent["amount"]), sent["currency"], sent.get("callback_url")
        )
        return JSONResponse(answer)

    async def _verify(self, request: Request) -> Response:
        ref = request.path_params["reference"]
        t = next((t for t in self.started.values() if t.reference == ref), None)
        if t is None:
            return JSONResponse({"status": False, "message": "Transaction reference not found"}, 400)
        status = "success" if t.paid else "abandoned"
        return JSONResponse(verify_answer(transaction(ref, t.amount, t.currency, status)))

    async def _page(self, request: Request) -> Response:
        t = self.started.get(request.path_params["access"])
        if t is None:
            return HTMLResponse("<h1>Invalid transaction</h1>", 404)
        if request.method == "GET":
            self.page_views += 1
            return HTMLResponse(
                f"<!doctype html><title>Paystack</title><h1>Pay {t.currency} {t.amount / 100:.2f}</h1>"
                '<form method="post"><button type="submit">Pay now</button></form>'
            )
        t.paid = True
        body = orjson.dumps(
            {"event": "charge.success", "data": transaction(t.reference, t.amount, t.currency, "success")}
        )
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(self.webhook_url, content=body, headers=sign(body))
        assert r.status_code == 200, r.text
        back = f"{t.callback_url}?{urlencode({'trxref': t.reference, 'reference': t.reference})}"
        return RedirectResponse(back, status_code=302)


def _certificate(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_file), str(cert_file)


@contextlib.asynccontextmanager
async def _serve(app: Any, port: int, **tls: str) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **tls))  # type: ignore[arg-type]
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def fake_paystack(webhook_url: str, directory: Path) -> AsyncIterator[FakePaystack]:
    fake = FakePaystack(webhook_url)
    api_port, page_port = free_port(), free_port()
    key_file, cert_file = _certificate(directory)
    fake.api_url, fake.page_url = f"http://127.0.0.1:{api_port}", f"https://127.0.0.1:{page_port}"
    async with (
        _serve(fake.api(), api_port),
        _serve(fake.pages(), page_port, ssl_keyfile=key_file, ssl_certfile=cert_file),
    ):
        yield fake
