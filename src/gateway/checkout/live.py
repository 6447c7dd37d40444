"""The checkout's live updates, authorized by the checkout id alone and showing only the public
subset of the payment (`payments/public.py`): the streams core's WebSocket and Server-Sent Events
(the same Redis feed, in their public form), and status.json for polling."""

from __future__ import annotations

import orjson
from sse_starlette import EventSourceResponse
from starlette.responses import Response
from starlette.websockets import WebSocket

from gateway.api.responses import JSONBytes
from gateway.context import AppContext
from gateway.payments.models import Payment
from gateway.payments.public import public_payment_json
from gateway.payments.service import PaymentService
from gateway.streams.feed import owner, payment_view
from gateway.streams.service import payment_stream
from gateway.streams.sockets import CLOSE_POLICY, serve_payment_socket


async def _methods(payments: PaymentService, payment: Payment) -> list[str]:
    return await payments.methods(payment.merchant_id, payment.livemode, payment.currency)


async def status_response(payments: PaymentService, payment: Payment) -> Response:
    body = orjson.dumps(public_payment_json(payment, await _methods(payments, payment)))
    return JSONBytes(body)


async def event_stream(ctx: AppContext, payments: PaymentService, payment: Payment) -> EventSourceResponse:
    """The payment now, then again at each change, until its outcome is known."""
    principal = owner(payment.merchant_id, payment.livemode)
    view = await payment_view(ctx, payments, principal, payment.id)
    methods = await _methods(payments, payment)
    return await payment_stream(ctx, payments, principal, view, None, public_methods=methods)


def same_origin(ws: WebSocket) -> bool:
    """A browser always sends Origin on a WebSocket handshake: only this page's own may connect."""
    origin = ws.headers.get("origin")
    return origin is None or origin.split("://", 1)[-1] == ws.headers.get("host")


async def socket(ws: WebSocket, ctx: AppContext, payments: PaymentService, payment: Payment | None) -> None:
    if payment is None or not same_origin(ws):
        await ws.close(CLOSE_POLICY)
        return
    methods = await _methods(payments, payment)
    await ws.accept()
    await serve_payment_socket(ws, ctx, payment, public=True, methods=methods)
