"""What the payments API answers: the payment (its model and its fast JSON twin), its attempts and
lists (requests.py holds what it takes; shapes.py the payment's parts)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from gateway.payments.fields import (
    PaymentStatus,
)
from gateway.payments.requests import Locale
from gateway.payments.shapes import (
    CustomerOut,
    NextAction,
    PaymentMethodDetails,
    Routing,
    shown_details,
    shown_routing,
)


class PaymentAttemptOut(BaseModel):
    """One start of the payment's rail: a confirm, or the create that named its provider."""

    id: str
    object: Literal["payment_attempt"] = "payment_attempt"
    payment: str
    number: int = Field(description="1 for the first attempt, then 2, 3... for each retry")
    provider: str
    payment_method: str | None
    provider_reference: str | None
    status: PaymentStatus
    failure_code: str | None
    failure_message: str | None
    created_at: datetime
    updated_at: datetime


class PaymentAttemptList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PaymentAttemptOut]
    has_more: bool


def attempt_out(a: Any) -> PaymentAttemptOut:
    return PaymentAttemptOut(
        id=a.id,
        payment=a.payment_id,
        number=a.number,
        provider=a.provider,
        payment_method=a.payment_method,
        provider_reference=a.provider_reference,
        status=a.status,
        failure_code=a.failure_code,
        failure_message=a.failure_message,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


class PaymentOut(BaseModel):
    id: str
    object: Literal["payment"] = "payment"
    amount: int
    amount_refunded: int
    currency: str
    status: PaymentStatus
    provider: str | None = Field(description="The rail (null until the payment is confirmed)")
    payment_method: str | None
    payment_method_details: PaymentMethodDetails | None = Field(
        description="How the customer paid, once the provider has said (null until then)"
    )
    customer: CustomerOut
    description: str | None
    reference: str | None
    metadata: dict[str, str]
    livemode: bool
    provider_reference: str | None
    next_action: NextAction | None
    failure_code: str | None
    failure_message: str | None
    return_url: str | None
    client_secret: str | None = Field(
        description="The browser's right to read and confirm this payment (`pay_…_secret_…`): in "
        "answers to a secret or restricted key only; null in events, webhooks and other views"
    )
    checkout_url: str = Field(description="The hosted checkout page of this payment")
    locale: Locale | None
    allow_retries: bool
    payment_link: str | None = Field(description="The payment link (`plink_…`) that made it, if any")
    cash_session: str | None = Field(
        description="A cash payment's drawer session (`cds_…`), if it was taken into one"
    )
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    routing: Routing | None = Field(
        description="A payment made with provider `auto`: its route and attempts; null for any other"
    )


class PaymentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PaymentOut]
    has_more: bool


class _PublicUrl:
    """Where customers reach this gateway (settings.base_url): the runtime sets it at start."""

    base = "http://127.0.0.1:8000"


def set_public_url(base_url: str) -> None:
    _PublicUrl.base = base_url.rstrip("/")


def checkout_url(p: Any) -> str:
    return f"{_PublicUrl.base}/checkout/{p.checkout_id}"


# What the API shows of a payment: the row's fields `payment_view` reads, in its order. Reads that
# only answer (retrieve, list) select just these columns and render the record as it comes.
SHOWN = (
    "id",
    "amount",
    "amount_refunded",
    "currency",
    "status",
    "provider",
    "payment_method",
    "payment_method_details",
    "customer_name",
    "customer_email",
    "customer_phone",
    "customer_location",
    "description",
    "reference",
    "metadata_",
    "livemode",
    "provider_reference",
    "next_action",
    "failure_code",
    "failure_message",
    "return_url",
    "client_secret",
    "checkout_id",
    "locale",
    "allow_retries",
    "payment_link_id",
    "cash_session",
    "created_at",
    "updated_at",
    "completed_at",
    "routing",
)
_shown = operator.attrgetter(*SHOWN)


def payment_json(p: Any, *, client_secret: bool = False) -> dict[str, Any]:
    """The API's view of a payment (ORM object or row) as plain data: `PaymentOut`'s fields in its
    order with its values, timestamps as aware datetimes that `dump` (orjson, UTC as "Z") renders as
    Pydantic does (tests hold the two byte-identical). Several times cheaper than the model.

    `client_secret`: only answers to a secret or restricted key show it; events, webhooks, logs and
    streams (the default) hold null."""
    return payment_view(_shown(p), client_secret=client_secret)


def payment_view(values: Sequence[Any], *, client_secret: bool = False) -> dict[str, Any]:
    """`payment_json` of a payment's `SHOWN` values, in that order: a database record of those
    columns as it comes, with no row object built for it (retrieve and list render each record so)."""
    # One unpacking of the record (a C loop) rather than an attribute or index per field.
    (
        id_,
        amount,
        amount_refunded,
        currency,
        status,
        provider,
        payment_method,
        payment_method_details,
        customer_name,
        customer_email,
        customer_phone,
        customer_location,
        description,
        reference,
        metadata,
        livemode,
        provider_reference,
        next_action,
        failure_code,
        failure_message,
        return_url,
        secret,
        checkout_id,
        locale,
        allow_retries,
        payment_link_id,
        cash_session,
        created_at,
        updated_at,
        completed_at,
        routing,
    ) = values
    return {
        "id": id_,
        "object": "payment",
        "amount": amount,
        "amount_refunded": amount_refunded,
        "currency": currency,
        "status": status,
        "provider": provider,
        "payment_method": payment_method,
        "payment_method_details": shown_details(payment_method_details),
        "customer": {
            "name": customer_name,
            "email": customer_email,
            "phone": customer_phone,
            "location": customer_location,
        },
        "description": description,
        "reference": reference,
        "metadata": metadata,
        "livemode": livemode,
        "provider_reference": provider_reference,
        "next_action": (
            NextAction.model_validate(next_action).model_dump(mode="json") if next_action else None
        ),
        "failure_code": failure_code,
        "failure_message": failure_message,
        "return_url": return_url,
        "client_secret": secret if client_secret else None,
        "checkout_url": f"{_PublicUrl.base}/checkout/{checkout_id}",
        "locale": locale,
        "allow_retries": allow_retries,
        "payment_link": payment_link_id,
        "cash_session": cash_session,
        "created_at": created_at,
        "updated_at": updated_at,
        "completed_at": completed_at,
        "routing": shown_routing(routing),
    }


def dump(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def payment_out(p: Any, *, client_secret: bool = False) -> PaymentOut:
    """The API's view of a payment row as the model (OpenAPI's schema; payment_json is its fast twin)."""
    return PaymentOut(
        id=p.id,
        amount=p.amount,
        amount_refunded=p.amount_refunded,
        currency=p.currency,
        status=p.status,
        provider=p.provider,
        payment_method=p.payment_method,
        payment_method_details=p.payment_method_details,
        customer=CustomerOut(
            name=p.customer_name, email=p.customer_email, phone=p.customer_phone, location=p.customer_location
        ),
        description=p.description,
        reference=p.reference,
        metadata=p.metadata_,
        livemode=p.livemode,
        provider_reference=p.provider_reference,
        next_action=NextAction.model_validate(p.next_action) if p.next_action else None,
        failure_code=p.failure_code,
        failure_message=p.failure_message,
        return_url=p.return_url,
        client_secret=p.client_secret if client_secret else None,
        checkout_url=checkout_url(p),
        locale=p.locale,
        allow_retries=p.allow_retries,
        payment_link=p.payment_link_id,
        cash_session=p.cash_session,
        created_at=p.created_at,
        updated_at=p.updated_at,
        completed_at=p.completed_at,
        routing=p.routing,
    )
