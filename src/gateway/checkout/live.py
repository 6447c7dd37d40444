"""The checkout's live updates, authorized by the checkout id alone and showing only the public
subset of the payment (`payments/public.py`): Server-Sent Events from the merchant's Redis channel,
and status.json for polling. The WebSocket is the streams core's (`serve_payment_socket`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson
import structlog
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from gateway.checkout import service
from gateway.context import AppContext
from gateway.events.publisher import channel
from gateway.payments import repository as payments_repo
from gateway.payments.models import Payment
from gateway.payments.public import public_payment_json
from gateway.payments.service import PaymentService
from gateway.streams.service import StreamInterrupted, Subscription, event_source

log = structlog.get_logger("gateway.checkout")


def public_json(payment: Payment, methods: list[str]) -> bytes:
    return orjson.dumps(public_payment_json(payment, methods))


async def status_response(payments: PaymentService, payment: Payment) -> Response:
    methods = await payments.methods(payment.merchant_id, payment.livemode, payment.currency)
    return Response(public_json(payment, methods), media_type="application/json")


async def event_stream(ctx: AppContext, payments: PaymentService, payment: Payment) -> EventSourceResponse:
    """The payment now, then again after each of its events, until its outcome is known. Subscribed
    before the first read, so no change between the two is missed."""
    sub = await Subscription(ctx.redis, channel(payment.merchant_id, payment.livemode)).open()
    return event_source(ctx, _messages(ctx, payments, payment, sub), sub.closing)


async def _messages(
    ctx: AppContext, payments: PaymentService, payment: Payment, sub: Subscription
) -> AsyncGenerator[ServerSentEvent, None]:
    checkout_id = payment.checkout_id
    try:
        current = await payments_repo.get_by_checkout_id(ctx.db, checkout_id)
        assert current is not None
        methods = await payments.methods(current.merchant_id, current.livemode, current.currency)
        yield ServerSentEvent(data=public_json(current, methods).decode())
        while current.status in service.OPEN or current.status == "requires_payment_method":
            got = await sub.next()
            if got is None:
                return
            obj = got[0].get("data", {}).get("object", {})
            if obj.get("id") != payment.id and obj.get("payment") != payment.id:
                continue
            current = await payments_repo.get_by_checkout_id(ctx.db, checkout_id)
            assert current is not None
            yield ServerSentEvent(data=public_json(current, methods).decode())
    except (StreamInterrupted, RedisError, OSError, TimeoutError) as e:
        log.warning("stream_interrupted", stream="checkout", error=type(e).__name__)
    finally:
        await sub.close()
