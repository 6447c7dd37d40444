"""A merchant's integration, written against the client openapi-python-client generates from the
live gateway's /openapi.json (`make api-check` generates it as the package `gateway_client`).

Not a pytest file: it needs the generated package. It fails (an AssertionError, exit 1) as soon as
the client cannot read what the server answers, errors included, as the typed objects the
document promises.

    python tests/contract/client_script.py BASE_URL SECRET_KEY
"""

from __future__ import annotations

import sys
import uuid
from typing import Any, TypeVar

from gateway_client import AuthenticatedClient
from gateway_client.api.events import list_events
from gateway_client.api.payments import (
    cancel_payment,
    create_payment,
    list_payment_events,
    list_payments,
    retrieve_payment,
)
from gateway_client.api.refunds import create_refund
from gateway_client.models import (
    Currency,
    EventList,
    PaymentCreate,
    PaymentList,
    PaymentOut,
    PaymentStatus,
    Problem,
    RefundCreate,
    RefundOut,
    RefundReason,
    RefundStatus,
)
from gateway_client.types import Unset


def key() -> str:
    return str(uuid.uuid4())


def payment(method: str, amount: int = 1500) -> PaymentCreate:
    return PaymentCreate(amount=amount, currency=Currency.KES, provider="sandbox", payment_method=method)


T = TypeVar("T")


def expect(value: Any, kind: type[T]) -> T:
    assert isinstance(value, kind), f"expected {kind.__name__}, got {value!r}"
    return value


def main(base_url: str, secret_key: str) -> None:
    client = AuthenticatedClient(base_url=base_url, token=secret_key, raise_on_unexpected_status=True)
    steps = 0

    # Create with an idempotency key, then read it back and find it in the list.
    first_key = key()
    paid = expect(
        create_payment.sync(client=client, body=payment("pm_success"), idempotency_key=first_key), PaymentOut
    )
    assert (paid.status, paid.amount, paid.currency) == (PaymentStatus.SUCCEEDED, 1500, "KES")
    again = expect(retrieve_payment.sync(paid.id, client=client), PaymentOut)
    assert (again.id, again.status) == (paid.id, PaymentStatus.SUCCEEDED)
    listed = expect(list_payments.sync(client=client, status=PaymentStatus.SUCCEEDED, limit=100), PaymentList)
    assert paid.id in [p.id for p in listed.data]
    steps += 3

    # The same key and body again: the same payment (a replay).
    replay = expect(
        create_payment.sync(client=client, body=payment("pm_success"), idempotency_key=first_key), PaymentOut
    )
    assert replay.id == paid.id
    # The same key with another body: a typed 422 idempotency_key_reused.
    reused = expect(
        create_payment.sync(client=client, body=payment("pm_success", 1600), idempotency_key=first_key),
        Problem,
    )
    assert (reused.status, reused.code) == (422, "idempotency_key_reused"), reused
    steps += 2

    # Refund part of it.
    refund = expect(
        create_refund.sync(
            paid.id,
            client=client,
            body=RefundCreate(amount=500, reason=RefundReason.REQUESTED_BY_CUSTOMER),
            idempotency_key=key(),
        ),
        RefundOut,
    )
    assert (refund.payment, refund.amount, refund.status) == (paid.id, 500, RefundStatus.SUCCEEDED)
    too_much = expect(
        create_refund.sync(paid.id, client=client, body=RefundCreate(amount=5000), idempotency_key=key()),
        Problem,
    )
    assert (too_much.status, too_much.code, too_much.remaining) == (422, "refund_exceeds_remaining", 1000)
    steps += 2

    # Cancel another payment, one still waiting for the customer.
    waiting = expect(
        create_payment.sync(client=client, body=payment("pm_action_never"), idempotency_key=key()), PaymentOut
    )
    assert waiting.status == PaymentStatus.REQUIRES_ACTION
    assert not isinstance(waiting.next_action, Unset | None)
    assert waiting.next_action.type_ == "redirect_to_url", waiting.next_action
    canceled = expect(cancel_payment.sync(waiting.id, client=client, idempotency_key=key()), PaymentOut)
    assert canceled.status == PaymentStatus.CANCELED
    not_again = expect(cancel_payment.sync(waiting.id, client=client, idempotency_key=key()), Problem)
    assert (not_again.status, not_again.code) == (409, "payment_not_cancelable")
    steps += 3

    # A decline: a typed 402 Problem whose `payment` is the failed payment.
    declined = expect(
        create_payment.sync(client=client, body=payment("pm_card_declined"), idempotency_key=key()), Problem
    )
    assert (declined.status, declined.code) == (402, "card_declined"), declined
    failed = expect(declined.payment, PaymentOut)
    assert (failed.status, failed.failure_code) == (PaymentStatus.FAILED, "card_declined")
    steps += 1

    # Validation and missing objects are typed Problems too.
    invalid = expect(
        create_payment.sync(client=client, body=payment("pm_success", 0), idempotency_key=key()), Problem
    )
    assert (invalid.status, invalid.code) == (422, "validation_error"), invalid
    assert not isinstance(invalid.errors, Unset | None)
    assert invalid.errors[0].loc == ["body", "amount"]
    missing = expect(retrieve_payment.sync("pay_" + "0" * 26, client=client), Problem)
    assert (missing.status, missing.code) == (404, "resource_missing")
    steps += 2

    # Events: each one's data.object is a typed payment or refund.
    events = expect(list_events.sync(client=client, payment=paid.id, limit=100), EventList)
    types = {e.type_ for e in events.data}
    assert {"payment.created", "payment.succeeded", "refund.created", "refund.succeeded"} <= types, types
    for event in events.data:
        obj = event.data.object_
        expect(obj, RefundOut if event.type_.startswith("refund.") else PaymentOut)
    trail = expect(list_payment_events.sync(canceled.id, client=client), EventList)
    assert trail.data[0].type_ == "payment.canceled"
    assert expect(trail.data[0].data.object_, PaymentOut).status == PaymentStatus.CANCELED
    steps += 2

    print(f"client_script: {steps} passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
