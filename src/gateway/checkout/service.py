"""The hosted checkout's reads and its one write (confirm), over the payments service.

The checkout id is the page's only credential: what is read here is what the page shows (the
public subset of the payment, the merchant's name, the methods). Confirm acts as the payment's own
browser would with the publishable key: a publishable principal of the payment's merchant and mode,
and the payment's client secret, which never leaves the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.api.ratelimit import check_confirm
from gateway.context import AppContext
from gateway.errors import RateLimited
from gateway.merchants import repository as merchants
from gateway.merchants.service import Principal
from gateway.payments import repository as payments_repo
from gateway.payments.drafts import Confirmation
from gateway.payments.models import Payment
from gateway.payments.service import PaymentService
from gateway.provider_accounts import repository as provider_accounts

# How the page collects each rail (anything else is shown as a plain "continue").
MOBILE_MONEY: Final = frozenset({"mpesa", "momo", "airtel"})
REDIRECT: Final = frozenset({"paystack", "flutterwave", "wave", "stripe", "paypal", "razorpay", "orange"})
# The sandbox's scenarios a customer can pick on the page (README, "Sandbox test values").
SANDBOX_SCENARIOS: Final = (
    "pm_success",
    "pm_card_declined",
    "pm_insufficient_funds",
    "pm_action_success",
    "pm_action_failure",
)
OPEN: Final = frozenset({"pending", "requires_action", "processing"})


@dataclass(frozen=True)
class Checkout:
    payment: Payment
    merchant_name: str
    methods: list[str]
    # How long the customer has to act on the current attempt (its rail's prompt, else its TTL).
    action_seconds: float | None = None
    # What a customer who chooses cash is told (the merchant's cash account's `instructions`).
    cash_instructions: str | None = None

    @property
    def can_confirm(self) -> bool:
        p = self.payment
        return p.status == "requires_payment_method" or (p.status == "failed" and p.allow_retries)


def principal_of(payment: Payment) -> Principal:
    """The browser's identity for this payment: its merchant and mode, as a publishable key."""
    return Principal(
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        key_id=f"checkout:{payment.checkout_id}",
        key_type="publishable",
    )


async def find(ctx: AppContext, checkout_id: str) -> Payment | None:
    if not checkout_id.startswith("cs_") or len(checkout_id) > 40:
        return None
    return await payments_repo.get_by_checkout_id(ctx.db, checkout_id)


async def load(ctx: AppContext, payments: PaymentService, payment: Payment) -> Checkout:
    merchant = await merchants.get(ctx.db, payment.merchant_id)
    name = merchant.name if merchant is not None else ""
    methods = await payments.methods(payment.merchant_id, payment.livemode, payment.currency)
    rail = payments.registry.get(payment.provider) if payment.provider else None
    caps = rail.capabilities if rail else None
    seconds = caps and (caps.prompt_seconds or caps.action_ttl_seconds)
    return Checkout(payment, name, methods, seconds or None, await _cash_instructions(ctx, payment, methods))


async def _cash_instructions(ctx: AppContext, payment: Payment, methods: list[str]) -> str | None:
    if "cash" not in methods:
        return None
    account = await provider_accounts.active(ctx.db, payment.merchant_id, "cash", payment.livemode)
    text = account.settings.get("instructions") if account is not None else None
    return text if isinstance(text, str) and text else None


async def confirm(payments: PaymentService, payment: Payment, confirmation: Confirmation) -> Payment:
    return await payments.confirm(principal_of(payment), payment.id, payment.client_secret, confirmation)


async def within_limits(ctx: AppContext, payment: Payment, address: str) -> bool:
    """Spends one confirm of the payment's quota and one of the address's, the same quotas as
    POST /v1/payments/{id}/confirm (settings.rate_limits.confirm_per_payment, confirm_per_ip)."""
    try:
        await check_confirm(ctx, payment.id, address, None)
    except RateLimited:
        return False
    return True
