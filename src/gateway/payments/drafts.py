"""What a create or a confirm writes: the new payment and attempt rows, and the checks of what a
confirm may carry (PaymentService, service.py, does the writing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic_core import PydanticCustomError

from gateway.errors import InvalidEmail, InvalidPhone, PaymentAlreadyConfirmed
from gateway.kit.ids import new_id
from gateway.merchants.service import Principal
from gateway.payments import state
from gateway.payments.fields import normalize_email, normalize_phone
from gateway.payments.models import Payment, PaymentAttempt
from gateway.payments.requests import PaymentCreate
from gateway.payments.secrets import new_checkout_id, new_client_secret
from gateway.providers.base import PaymentProvider


@dataclass(frozen=True)
class Confirmation:
    """What a confirm chooses: the rail, and what the customer gave it (phone in E.164 or as typed)."""

    provider: str
    payment_method: str | None = None
    phone: str | None = None
    email: str | None = None
    # Where a redirect rail sends the customer back: the hosted checkout's own page when it confirms
    # (it shows the outcome, then goes on to the merchant's signed return_url); else return_url.
    return_to: str | None = None
    # With the cash rail: the drawer session the merchant takes the cash into (payments/cash_sessions.py).
    cash_session: str | None = None


# Rails a customer may not choose from a browser: cash is recorded as collected by the merchant.
MERCHANT_ONLY = frozenset({"cash"})


def confirmable(payment: Payment) -> None:
    if payment.status == state.S.REQUIRES_PAYMENT_METHOD:
        return
    if payment.status == state.S.FAILED and payment.allow_retries:
        return  # a definitive no from the provider: the customer may try again
    raise PaymentAlreadyConfirmed(
        f"This payment was already confirmed (status {payment.status!r})"
        + ("; it does not allow retries." if payment.status == state.S.FAILED else "."),
        status_now=payment.status,
    )


def checked_phone(value: str) -> str:
    try:
        return normalize_phone(value)
    except PydanticCustomError as e:
        raise InvalidPhone(
            str(e), errors=[{"loc": ["body", "customer", "phone"], "type": "invalid_phone", "msg": str(e)}]
        ) from e


def checked_email(value: str) -> str:
    try:
        return normalize_email(value)
    except PydanticCustomError as e:
        raise InvalidEmail(
            str(e), errors=[{"loc": ["body", "customer", "email"], "type": "invalid_email", "msg": str(e)}]
        ) from e


def attempt_row(payment: Payment, number: int, at: datetime) -> PaymentAttempt:
    """The attempt a payment is on now, as a row (a payment created with its rail, before a retry)."""
    assert payment.provider is not None
    return PaymentAttempt(
        id=new_id("att"),
        payment_id=payment.id,
        number=number,
        provider=payment.provider,
        payment_method=payment.payment_method,
        provider_account_id=payment.provider_account_id,
        provider_reference=payment.provider_reference,
        status=payment.status,
        failure_code=payment.failure_code,
        failure_message=payment.failure_message,
        created_at=at,
        updated_at=payment.updated_at,
    )


def next_attempt_row(
    payment_id: str,
    number: int,
    provider: str,
    payment_method: str | None,
    account_id: str | None,
    at: datetime,
) -> PaymentAttempt:
    """A new attempt, pending on `provider` (a confirm's, or the routing's next provider)."""
    return PaymentAttempt(
        id=new_id("att"),
        payment_id=payment_id,
        number=number,
        provider=provider,
        payment_method=payment_method,
        provider_account_id=account_id,
        provider_reference=None,
        status=state.S.PENDING,
        failure_code=None,
        failure_message=None,
        created_at=at,
        updated_at=at,
    )


def new_row(
    principal: Principal,
    body: PaymentCreate,
    key: str,
    fingerprint: str,
    provider: PaymentProvider | None,
    lease: timedelta,
    account_id: str | None,
) -> Payment:
    """A new payment: pending and leased to this request when it names its rail; else waiting for a
    confirm (requires_payment_method: no lease, nothing for the reconciler to ask)."""
    now = datetime.now(UTC)
    customer = body.customer
    payment_id = new_id("pay")
    return Payment(
        id=payment_id,
        merchant_id=principal.merchant_id,
        livemode=principal.livemode,
        amount=body.amount,
        amount_refunded=0,
        currency=body.currency,
        status=state.S.PENDING if provider is not None else state.S.REQUIRES_PAYMENT_METHOD,
        provider=body.provider,
        payment_method=body.payment_method,
        customer_name=customer.name if customer else None,
        customer_email=customer.email if customer else None,
        customer_phone=customer.phone if customer else None,
        customer_location=customer.location if customer else None,
        description=body.description,
        reference=body.reference,
        metadata_=body.metadata,
        return_url=body.return_url,
        provider_reference=None,
        next_action=None,
        failure_code=None,
        failure_message=None,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        provider_lease_until=now + lease if provider is not None else None,
        next_reconcile_at=(
            now + timedelta(seconds=provider.capabilities.reconcile_after_seconds)
            if provider is not None
            else None
        ),
        reconcile_attempts=0,
        created_at=now,
        updated_at=now,
        completed_at=None,
        payment_method_details=None,
        provider_receipt=None,
        provider_account_id=account_id,
        client_secret=new_client_secret(payment_id),
        checkout_id=new_checkout_id(),
        locale=body.locale,
        allow_retries=body.allow_retries,
        cash_session=body.cash_session,
    )
