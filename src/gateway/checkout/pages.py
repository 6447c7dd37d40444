"""The checkout's HTML: one Jinja2 template per page, fed by `view()`, which decides what the
customer sees for each state of the payment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gateway.checkout import assets
from gateway.checkout.display import format_money, phone_format
from gateway.checkout.i18n import Messages
from gateway.checkout.service import MOBILE_MONEY, OPEN, REDIRECT, SANDBOX_SCENARIOS, Checkout
from gateway.payments.rails import started_at

# The error codes a redirect back to the page may carry (?error=): anything else is shown as generic.
# The first live channel the script tries: "ws" (then SSE, then polling) or "sse" (then polling).
LIVE: Final = "ws"
ERRORS: Final = frozenset(
    {"invalid_phone", "method_missing", "csrf", "rate_limited", "provider", "not_retryable", "generic"}
)

# The name of the company whose page a redirect rail sends the customer to (not translated).
BRANDS: Final = {
    "paystack": "Paystack",
    "flutterwave": "Flutterwave",
    "wave": "Wave",
    "stripe": "Stripe",
    "paypal": "PayPal",
    "razorpay": "Razorpay",
    "orange": "Orange Money",
}

ENV: Final = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals["asset"] = assets.url


def _kind(method: str) -> str:
    if method in MOBILE_MONEY:
        return "mobile"
    if method in REDIRECT:
        return "redirect"
    return method if method in ("cash", "sandbox") else "other"


def _post_fields(action: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The fields of a next step that is a form posted to the provider (`method: POST`), as text."""
    target = action.get("redirect_to_url") or {}
    fields = target.get("fields")
    if target.get("method") != "POST" or not isinstance(fields, dict):
        return None
    return [(str(k), str(v)) for k, v in fields.items()]


def _masked(phone: str | None) -> str:
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    return "•" * max(0, len(digits) - 3) + digits[-3:] if digits else ""


def stage(c: Checkout, chosen: str | None = None) -> str:
    """choose | approve | redirect | cash | waiting | succeeded | failed | expired | canceled

    `chosen`: the method the customer picked without a confirm (cash: paid in person, recorded by
    the merchant), shown while the payment still waits for it."""
    p = c.payment
    if chosen == "cash" and "cash" in c.methods and c.can_confirm:
        return "cash"
    if p.status == "requires_payment_method":
        return "choose"
    if p.status in OPEN:
        kind = (p.next_action or {}).get("type")
        if kind == "mobile_money_prompt":
            return "approve"
        if kind == "redirect_to_url" and p.provider != "sandbox":
            return "redirect"
        if kind == "collect_cash":
            return "cash"
        return "waiting"
    if p.status in ("succeeded", "partially_refunded", "refunded"):
        return "succeeded"
    return p.status if p.status in ("failed", "expired", "canceled") else "waiting"


def view(c: Checkout, locale: str, csrf: str, error: str | None, chosen: str | None = None) -> dict[str, Any]:
    p = c.payment
    t = Messages(locale)
    amount = format_money(p.amount, p.currency, locale)
    phones = phone_format(p.currency)
    action = p.next_action or {}
    redirect = (action.get("redirect_to_url") or {}).get("url")
    # A rail whose page is reached by a form post (Razorpay's Hosted Checkout): its fields, else None.
    form = _post_fields(action)
    prompt = action.get("mobile_money_prompt") or {}
    # The prompt's countdown: the rail's own TTL from the attempt's start (the reconciler expires the
    # payment then); none for a rail without one.
    deadline = started_at(p) + timedelta(seconds=c.action_seconds) if c.action_seconds else None
    return {
        "t": t,
        "locale": locale,
        "checkout_id": p.checkout_id,
        "merchant": c.merchant_name,
        "amount": amount,
        "currency": p.currency,
        "description": p.description,
        "livemode": p.livemode,
        "status": p.status,
        "stage": stage(c, chosen),
        "cash_instructions": c.cash_instructions,
        "can_confirm": c.can_confirm,
        "methods": [{"id": m, "kind": _kind(m), "label": t(f"method.{m}")} for m in c.methods],
        "scenarios": [{"id": s, "label": t(f"scenario.{s}")} for s in SANDBOX_SCENARIOS],
        "phone": phones,
        "csrf": csrf,
        "error": t(f"error.{error if error in ERRORS else 'generic'}") if error else None,
        "provider": BRANDS.get(p.provider or "", t(f"method.{p.provider}") if p.provider else ""),
        "redirect_url": redirect,
        "redirect_fields": form,
        "prompt_phone": _masked(prompt.get("phone") or p.customer_phone),
        "deadline": int(deadline.timestamp()) if deadline else None,
        "time_left": _clock(deadline),
        "failure_code": p.failure_code,
        "has_return": bool(p.return_url),
        "live": LIVE,
    }


def _clock(deadline: datetime | None) -> str:
    """m:ss left, as the script shows it (the page without JavaScript shows it once)."""
    if deadline is None:
        return ""
    left = max(0, int((deadline - datetime.now(UTC)).total_seconds()))
    return f"{left // 60}:{left % 60:02d}"


def render(name: str, context: dict[str, Any]) -> str:
    return ENV.get_template(name).render(context)
