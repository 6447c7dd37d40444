"""A payment's browser credentials: its client secret and its checkout id (docs/api.md, "Checkout")."""

from __future__ import annotations

import hmac
import secrets

from gateway.payments.models import Payment


def new_client_secret(payment_id: str) -> str:
    """`pay_…_secret_…`: 192 random bits after the id (Stripe's shape), so a log line that shows
    one also shows which payment it opens, and nothing else does."""
    return f"{payment_id}_secret_{secrets.token_urlsafe(24)}"


def new_checkout_id() -> str:
    """The hosted checkout's id (`/checkout/{id}`): 192 random bits, unrelated to the payment's id."""
    return f"cs_{secrets.token_urlsafe(24)}"


def client_secret_matches(payment: Payment, given: str | None) -> bool:
    """Constant time: a wrong secret tells nothing about the right one."""
    return given is not None and hmac.compare_digest(payment.client_secret.encode(), given.encode())
