"""What a payment tells its rail: the checks a provider's request must pass before anything is
stored or sent (create and confirm alike), and the request and references an adapter is given.

An attempt (payment_attempts) is one start of a rail. Attempt 1 speaks to the provider under the
payment's own id; attempt n > 1 (a retry after a failed one) under `{payment id}_{n}`, so the provider
sees a new payment (its idempotency key, reference or tx_ref are new) and an answer about an earlier
attempt is told apart from the current one's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.errors import CurrencyNotSupported, InvalidPhone, InvalidRequest, ProviderNotConfigured
from gateway.kit.money import format_amount
from gateway.payments.models import Payment
from gateway.providers.base import Customer, PaymentProvider, PaymentRef, PaymentRequest, RefundRef


def attempt_key(payment_id: str, attempt: int) -> str:
    """The id the provider knows attempt `attempt` of a payment by."""
    return payment_id if attempt <= 1 else f"{payment_id}_{attempt}"


def split_attempt_key(key: str) -> tuple[str, int | None]:
    """(payment id, attempt number) of a key a provider echoes; None: the payment's own id (attempt
    1, or a payment made with its provider at create)."""
    head, sep, tail = key.rpartition("_")
    if sep and tail.isdigit() and head.count("_") == 1:
        return head, int(tail)
    return key, None


def is_current(payment: Payment, key: str) -> bool:
    """Whether `key` (the id a provider echoed) names the payment's current attempt."""
    return names_attempt(payment.attempt, key)


def names_attempt(attempt: int, key: str) -> bool:
    """Whether `key` names attempt `attempt` of its payment (0: none started, the payment's own id)."""
    _, number = split_attempt_key(key)
    return (number or 1) == max(attempt, 1)


def started_at(p: Payment) -> datetime:
    """When the rail's current attempt started: its TTLs run from here."""
    return p.attempted_at or p.created_at


def check_rail(
    provider: PaymentProvider,
    *,
    amount: int,
    currency: str,
    phone: str | None,
    payment_method: str | None,
    livemode: bool,
) -> None:
    """Refuses (422) a request this provider cannot take, before anything is stored or sent."""
    if not provider.is_configured(livemode):
        mode = "live" if livemode else "test"
        raise ProviderNotConfigured(
            f"The {provider.name} provider has no {mode}-mode credentials.", param="provider"
        )
    caps = provider.capabilities
    if currency not in caps.currencies:
        raise CurrencyNotSupported(
            f"{provider.name} does not take {currency}.", param="currency", supported=sorted(caps.currencies)
        )
    if caps.check_phone is not None:
        problem = caps.check_phone(phone, livemode)
        if problem is not None:
            raise InvalidPhone(
                problem,
                errors=[{"loc": ["body", "customer", "phone"], "type": "invalid_phone", "msg": problem}],
            )
    if amount % caps.amount_multiple_of:
        step = format_amount(caps.amount_multiple_of, currency)
        shown = format_amount(amount, currency)
        raise InvalidRequest(
            f"{provider.name} takes only multiples of {step}; {shown} is not one.",
            errors=[
                {
                    "loc": ["body", "amount"],
                    "type": "amount_not_supported",
                    "msg": f"must be a multiple of {caps.amount_multiple_of} ({step})",
                }
            ],
        )
    methods = caps.payment_methods
    if methods is not None and payment_method is not None and payment_method not in methods:
        raise InvalidRequest(
            f"{provider.name} does not know the payment method {payment_method!r}.",
            errors=[
                {
                    "loc": ["body", "payment_method"],
                    "type": "invalid_payment_method",
                    "msg": f"one of: {', '.join(sorted(methods))}",
                }
            ],
        )


def rail_request(p: Payment, return_to: str | None = None) -> PaymentRequest:
    """What the provider is asked to collect, under the current attempt's key; a redirect rail sends
    the customer back to `return_to`, else to the payment's return_url."""
    return PaymentRequest(
        payment_id=attempt_key(p.id, p.attempt),
        amount=p.amount,
        currency=p.currency,
        livemode=p.livemode,
        created_at=started_at(p),
        payment_method=p.payment_method,
        customer=Customer(p.customer_name, p.customer_email, p.customer_phone, p.customer_location),
        description=p.description,
        reference=p.reference,
        metadata=p.metadata_,
        return_url=return_to or p.return_url,
    )


def payment_ref(p: Payment) -> PaymentRef:
    """How the provider finds the payment's current attempt again (sync, cancel, refund, reconciler)."""
    return PaymentRef(
        payment_id=attempt_key(p.id, p.attempt),
        provider_reference=p.provider_reference,
        amount=p.amount,
        currency=p.currency,
        livemode=p.livemode,
        created_at=started_at(p),
        payment_method=p.payment_method,
        receipt=p.provider_receipt,
        customer_phone=p.customer_phone,
        private=p.provider_private,
    )


def refund_ref(refund: Any, payment: Payment) -> RefundRef:
    return RefundRef(
        refund_id=refund.id,
        provider_reference=refund.provider_reference,
        payment=payment_ref(payment),
        amount=refund.amount,
        created_at=refund.created_at,
    )
