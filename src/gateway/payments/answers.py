"""How a payment answers its caller: the rendered answer (a decline is a 402 with the payment
inside) and the problem a provider failure becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderMisconfiguredError,
    ProviderTimeout,
)
from gateway.payments import state
from gateway.payments.models import Payment
from gateway.payments.schemas import dump, payment_json
from gateway.problems import problem_body
from gateway.providers.base import ProviderFailure, ProviderMisconfigured, ProviderTimedOut

log = structlog.get_logger("gateway.payments")


@dataclass(frozen=True)
class Rendered:
    """A finished answer: the status and the exact bytes the client gets (and a replay repeats)."""

    status: int
    body: bytes
    media_type: str = "application/json"
    # The answer repeats an earlier request's (found in PostgreSQL, Redis having forgotten it).
    replayed: bool = False


def render_payment(
    payment: Payment,
    request_id: str | None,
    *,
    created: bool = False,
    replayed: bool = False,
    client_secret: bool = False,
    view: dict[str, Any] | None = None,
) -> Rendered:
    """A declined payment answers 402 with the payment inside; anything else answers with the payment.
    `view`: the payment as this caller may see it (default: payment_json, with the client secret if
    `client_secret`, for answers to a secret or restricted key)."""
    out = view if view is not None else payment_json(payment, client_secret=client_secret)
    if payment.status == state.S.FAILED and payment.failure_code:
        body = problem_body(
            status=402,
            code=payment.failure_code,
            title="The payment was declined",
            detail=payment.failure_message or "The provider declined the payment.",
            request_id=request_id,
            payment=out,
        )
        return Rendered(402, body, "application/problem+json", replayed)
    return Rendered(201 if created else 200, dump(out), replayed=replayed)


def provider_error(
    e: ProviderFailure,
    payment: Payment,
    *,
    then: str = "The payment stays pending: retry with the same Idempotency-Key, or call sync.",
    refund: str | None = None,
) -> GatewayError:
    """Maps a provider failure to our error; `then` tells the client what state it left behind.
    `payment` in the problem is the payment object, as in a 402 (docs/api.md); `refund` an id."""
    ids: dict[str, Any] = {"payment": payment_json(payment)} | ({"refund": refund} if refund else {})
    if isinstance(e, ProviderTimedOut):
        return ProviderTimeout("The provider did not answer in time. " + then, **ids)
    if isinstance(e, ProviderMisconfigured):
        log.error("provider_misconfigured", error=str(e), payment_id=payment.id, refund=refund)
        return ProviderMisconfiguredError("The provider rejected the gateway's credentials. " + then, **ids)
    return ProviderError("The provider failed. " + then, **ids)
