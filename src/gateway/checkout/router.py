"""The hosted checkout: `/checkout/{checkout_id}` (docs/api.md, "Hosted checkout").

Server-rendered; a plain form post confirms the payment and answers 303 back to the page, so the
page works without JavaScript. The script adds live updates only, through checkout-scoped
endpoints the checkout id authorizes: a WebSocket, Server-Sent Events, then polling status.json.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, Path, Request, WebSocket
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.deps import Ctx
from gateway.checkout import live, pages, security, service
from gateway.checkout.assets import response as asset_response
from gateway.checkout.display import phone_format
from gateway.checkout.i18n import Messages, pick_locale
from gateway.context import AppContext
from gateway.errors import GatewayError
from gateway.payments.drafts import MERCHANT_ONLY, Confirmation
from gateway.payments.models import Payment
from gateway.payments.service import PaymentService

log = structlog.get_logger("gateway.checkout")

router = APIRouter(prefix="/checkout", include_in_schema=False)

CheckoutId = Annotated[str, Path(max_length=40)]
_NONCE_MAX = 64


def _payments(request: Request) -> PaymentService:
    payments: PaymentService = request.app.state.payments
    return payments


def _secure(response: Response) -> Response:
    response.headers.update(security.headers())
    return response


def _not_found(request: Request) -> Response:
    locale = pick_locale(None, request.headers.get("accept-language"))
    html = pages.render("not_found.html", {"t": Messages(locale), "locale": locale})
    return _secure(HTMLResponse(html, status_code=404))


def _page_url(checkout_id: str, error: str | None = None) -> str:
    return f"/checkout/{checkout_id}" + (f"?error={error}" if error else "")


def _back(checkout_id: str, error: str | None = None) -> Response:
    return _secure(RedirectResponse(_page_url(checkout_id, error), status_code=303))


@router.get("/static/{name}")
async def static_file(name: Annotated[str, Path(max_length=64)]) -> Response:
    found = asset_response(name)
    return found if found is not None else Response(status_code=404)


@router.get("/{checkout_id}")
async def checkout_page(request: Request, checkout_id: CheckoutId, ctx: Ctx) -> Response:
    payment = await service.find(ctx, checkout_id)
    if payment is None:
        return _not_found(request)
    checkout = await service.load(ctx, _payments(request), payment)
    locale = pick_locale(payment.locale, request.headers.get("accept-language"))
    nonce = request.cookies.get(security.CSRF_COOKIE)
    if not nonce or len(nonce) > _NONCE_MAX:
        nonce = security.new_nonce()
    csrf = security.csrf_token(payment.client_secret, checkout_id, nonce)
    query = request.query_params
    context = pages.view(checkout, locale, csrf, query.get("error"), query.get("method"))
    name = "fragment.html" if request.headers.get("x-checkout-fragment") else "page.html"
    response = HTMLResponse(pages.render(name, context))
    response.set_cookie(
        security.CSRF_COOKIE,
        nonce,
        path=f"/checkout/{checkout_id}",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.headers["Content-Language"] = locale
    return _secure(response)


@router.post("/{checkout_id}")
async def checkout_confirm(request: Request, checkout_id: CheckoutId, ctx: Ctx) -> Response:
    form = await _form(request)
    csrf_token, method, scenario = form.get("csrf_token"), form.get("method"), form.get("scenario")
    phone, email = form.get("phone"), form.get("email")
    payment = await service.find(ctx, checkout_id)
    if payment is None:
        return _not_found(request)
    if not csrf_token and not method:
        # A provider posting the customer back (Razorpay's callback_url: razorpay_payment_id, …): no
        # evidence of anything; the page shows what the gateway knows.
        return _back(checkout_id)
    nonce = request.cookies.get(security.CSRF_COOKIE)
    if not security.csrf_ok(payment.client_secret, checkout_id, nonce, csrf_token):
        return _back(checkout_id, "csrf")
    client = request.client.host if request.client else "unknown"
    if not await service.within_limits(ctx, payment, client):
        return _back(checkout_id, "rate_limited")
    checkout = await service.load(ctx, _payments(request), payment)
    if not checkout.can_confirm:
        return _back(checkout_id, None if payment.status != "failed" else "not_retryable")
    if not method or method not in checkout.methods:
        return _back(checkout_id, "method_missing")
    if method in MERCHANT_ONLY:
        # Cash is paid in person and recorded by the merchant: nothing to confirm, the page says how.
        return _secure(RedirectResponse(f"/checkout/{checkout_id}?method={method}", status_code=303))
    confirmation = _confirmation(payment, method, scenario, phone, email)
    if confirmation is None:
        return _back(checkout_id, "invalid_phone")
    # A redirect rail brings the customer back to this page (the outcome, then the signed return).
    confirmation = replace(confirmation, return_to=f"{ctx.settings.base_url}/checkout/{checkout_id}")
    try:
        payment = await service.confirm(_payments(request), payment, confirmation)
    except GatewayError as e:
        log.info("checkout_confirm_refused", checkout_payment=payment.id, code=e.code)
        return _back(checkout_id, _error_of(e, payment))
    url = ((payment.next_action or {}).get("redirect_to_url") or {}).get("url")
    if url and method != "sandbox" and payment.status in service.OPEN and not _posted(payment):
        # A redirect rail: straight to the provider's page, which brings the customer back here.
        return _secure(RedirectResponse(url, status_code=303))
    return _back(checkout_id)


def _posted(payment: Payment) -> bool:
    """A provider page reached by a form post (Razorpay's Hosted Checkout): a redirect cannot post, so
    the page shows the form and its button instead."""
    return ((payment.next_action or {}).get("redirect_to_url") or {}).get("method") == "POST"


_FIELDS = {"csrf_token": 128, "method": 40, "scenario": 40, "phone": 40, "email": 200}


async def _form(request: Request) -> dict[str, str]:
    """The form's fields (application/x-www-form-urlencoded, as a browser posts it): the known ones,
    each cut at its length; anything else is ignored."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), max_num_fields=20)
    return {k: v[: _FIELDS[k]] for k, v in reversed(pairs) if k in _FIELDS}


def _confirmation(
    payment: Payment, method: str, scenario: str | None, phone: str | None, email: str | None
) -> Confirmation | None:
    """None when a mobile-money number is missing or not of the payment's country."""
    if method == "sandbox":
        chosen = scenario if scenario in service.SANDBOX_SCENARIOS else "pm_success"
        return Confirmation(provider=method, payment_method=chosen)
    number = None
    if method in service.MOBILE_MONEY:
        fmt = phone_format(payment.currency)
        number = fmt.normalize(phone or "") if fmt else (phone or "").strip() or None
        if number is None:
            return None
    return Confirmation(provider=method, phone=number, email=(email or "").strip() or None)


def _error_of(e: GatewayError, payment: Payment) -> str:
    code = e.code
    if code == "invalid_phone":
        return "invalid_phone"
    if code == "payment_already_confirmed":
        return "not_retryable"
    if e.status >= 500 or code.startswith("provider"):
        return "provider"
    return "generic"


@router.get("/{checkout_id}/status.json")
async def checkout_status(request: Request, checkout_id: CheckoutId, ctx: Ctx) -> Response:
    payment = await service.find(ctx, checkout_id)
    if payment is None:
        return _secure(Response(status_code=404))
    return _secure(await live.status_response(_payments(request), payment))


@router.get("/{checkout_id}/events")
async def checkout_events(request: Request, checkout_id: CheckoutId, ctx: Ctx) -> Response:
    payment = await service.find(ctx, checkout_id)
    if payment is None:
        return _secure(Response(status_code=404))
    return _secure(await live.event_stream(ctx, _payments(request), payment))


@router.websocket("/{checkout_id}/ws")
async def checkout_socket(ws: WebSocket, checkout_id: CheckoutId) -> None:
    ctx: AppContext = ws.app.state.ctx
    payments: PaymentService = ws.app.state.payments
    await live.socket(ws, ctx, payments, await service.find(ctx, checkout_id))


@router.get("/{checkout_id}/return")
async def checkout_return(request: Request, checkout_id: CheckoutId, ctx: Ctx) -> Response:
    """The merchant's return_url, signed, once the outcome is known (else back to the page)."""
    payment = await service.find(ctx, checkout_id)
    if payment is None:
        return _not_found(request)
    if (
        payment.return_url is None
        or payment.status in service.OPEN
        or payment.status == "requires_payment_method"
    ):
        return _back(checkout_id)
    url = security.signed_return_url(payment.return_url, payment.id, payment.client_secret)
    return _secure(RedirectResponse(url, status_code=303))
