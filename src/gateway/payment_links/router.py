"""HTTP layer of payment links: the merchant's API under /v1, and the customer's URL /l/{slug}.

/l/{slug} takes no API key (the unguessable slug is the credential) and lives outside /v1, so the
per-key rate limits do not apply to it (gateway.api.ratelimit.limited). It answers 303 to the
payment's hosted checkout. A cookie (HttpOnly, SameSite=Lax, path /l/{slug}, Secure when the public
URL is https) names the payment this browser made from the link by its checkout id, so a reload goes
on with that payment instead of making another. A link without an amount first shows a small form
(no JavaScript, a double-submit CSRF token); errors are HTML pages for browsers and problem+json for
clients that send `Accept: application/json`.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Path, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.deps import Ctx, PaymentsRead, PaymentsWrite
from gateway.api.pagination import Paging, checked_page
from gateway.api.ratelimit import check_link_open
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.errors import GatewayError, InvalidRequest
from gateway.idempotency.guard import OptionalIdempotency, RequiredIdempotency
from gateway.kit.money import from_major, to_major_string
from gateway.payment_links.models import PaymentLink
from gateway.payment_links.schemas import PaymentLinkCreate, PaymentLinkList, PaymentLinkOut, payment_link_out
from gateway.payment_links.service import PaymentLinkService

router = APIRouter(prefix="/payment-links", tags=["payment links"], route_class=GatewayRoute)
# The customer's side: not under /v1, not in the OpenAPI document.
public = APIRouter(include_in_schema=False)

LinkId = Annotated[str, Path(description="A payment link id, `plink_…`", max_length=40)]
PAYMENT_COOKIE = "gw_link_payment"
CSRF_COOKIE = "gw_link_csrf"

_templates = Environment(
    loader=FileSystemLoader(FsPath(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    auto_reload=False,
)


async def _service(request: Request, ctx: Ctx) -> PaymentLinkService:
    return PaymentLinkService(ctx.db, request.app.state.payments)


Service = Annotated[PaymentLinkService, Depends(_service)]


def _out(ctx: Ctx, link: PaymentLink) -> PaymentLinkOut:
    return payment_link_out(link, ctx.settings.base_url, datetime.now(UTC))


@router.post(
    "",
    operation_id="create_payment_link",
    status_code=201,
    response_model=PaymentLinkOut,
    summary="Create a payment link",
    responses=error_responses(400, 401, 409, 422),
)
async def create_payment_link(
    body: PaymentLinkCreate, principal: PaymentsWrite, idem: RequiredIdempotency, service: Service, ctx: Ctx
) -> Response:
    link = await service.create(principal, body)
    return await idem.respond(201, _out(ctx, link).model_dump_json().encode())


@router.get(
    "",
    operation_id="list_payment_links",
    response_model=PaymentLinkList,
    summary="List payment links, newest first",
    responses=error_responses(401, 422),
)
async def list_payment_links(principal: PaymentsRead, service: Service, page: Paging, ctx: Ctx) -> Response:
    rows, has_more = await service.list(principal, checked_page(page, "plink"))
    return json_response(PaymentLinkList(data=[_out(ctx, r) for r in rows], has_more=has_more))


@router.get(
    "/{link_id}",
    operation_id="retrieve_payment_link",
    response_model=PaymentLinkOut,
    summary="Retrieve a payment link",
    responses=error_responses(401, 404),
)
async def retrieve_payment_link(
    link_id: LinkId, principal: PaymentsRead, service: Service, ctx: Ctx
) -> Response:
    return json_response(_out(ctx, await service.get(principal, link_id)))


@router.post(
    "/{link_id}/deactivate",
    operation_id="deactivate_payment_link",
    response_model=PaymentLinkOut,
    summary="Deactivate a payment link: opening it answers 410 from now on",
    responses=error_responses(401, 404, 409),
)
async def deactivate_payment_link(
    link_id: LinkId, principal: PaymentsWrite, idem: OptionalIdempotency, service: Service, ctx: Ctx
) -> Response:
    link = await service.deactivate(principal, link_id)
    return await idem.respond(200, _out(ctx, link).model_dump_json().encode())


# The customer's URL.


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _secure(ctx: Ctx) -> bool:
    return ctx.settings.base_url.startswith("https://")


def _set_cookie(response: Response, ctx: Ctx, slug: str, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path=f"/l/{slug}", httponly=True, secure=_secure(ctx), samesite="lax", max_age=86_400
    )


def _page(name: str, status: int, **values: object) -> HTMLResponse:
    html = _templates.get_template(name).render(**values)
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        },
    )


def _error_page(request: Request, e: GatewayError) -> Response:
    if _wants_json(request):
        raise e
    page = _page("error.html", e.status, title=e.title, detail=e.detail, code=e.code)
    page.headers.update(e.headers)  # Retry-After of a 429
    return page


def _form(
    ctx: Ctx, link: PaymentLink, csrf: str, *, status: int = 200, error: str | None = None, value: str = ""
) -> HTMLResponse:
    response = _page(
        "amount.html",
        status,
        link=link,
        csrf=csrf,
        error=error,
        value=value,
        low=to_major_string(link.min_amount or 1, link.currency),
        high=to_major_string(link.max_amount, link.currency) if link.max_amount else None,
    )
    _set_cookie(response, ctx, link.slug, CSRF_COOKIE, csrf)
    return response


async def _open(
    request: Request, ctx: Ctx, service: PaymentLinkService, slug: str, amount: int | None, csrf: str
) -> Response:
    earlier = request.cookies.get(PAYMENT_COOKIE)
    if earlier is None:
        await check_link_open(ctx, request.client.host if request.client else "unknown")
    opened = await service.open(slug, earlier, amount)
    if opened.payment is None:
        return _form(ctx, opened.link, csrf)
    response = RedirectResponse(f"/checkout/{opened.payment.checkout_id}", status_code=303)
    response.headers["Cache-Control"] = "no-store"
    _set_cookie(response, ctx, slug, PAYMENT_COOKIE, opened.payment.checkout_id)
    return response


@public.get("/l/{slug}")
async def open_payment_link(
    request: Request, slug: Annotated[str, Path(max_length=64)], ctx: Ctx, service: Service
) -> Response:
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    try:
        return await _open(request, ctx, service, slug, None, csrf)
    except GatewayError as e:
        return _error_page(request, e)


@public.post("/l/{slug}")
async def choose_payment_link_amount(
    request: Request, slug: Annotated[str, Path(max_length=64)], ctx: Ctx, service: Service
) -> Response:
    """The amount form's post: `amount` in major units (1500.50), and the CSRF token."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    token, cookie = (form.get("csrf_token") or [""])[0], request.cookies.get(CSRF_COOKIE, "")
    raw = (form.get("amount") or [""])[0].strip().replace(",", "")
    try:
        link = await service.find(slug)
    except GatewayError as e:
        return _error_page(request, e)
    try:
        if not cookie or not secrets.compare_digest(token.encode(), cookie.encode()):
            raise InvalidRequest(
                "The form has expired: please enter the amount again.",
                errors=[
                    {"loc": ["body", "csrf_token"], "msg": "does not match", "type": "csrf_token_invalid"}
                ],
            )
        try:
            amount = from_major(raw, link.currency)
        except ValueError:
            raise InvalidRequest(
                "Enter the amount as a number, e.g. 1500 or 1500.50.",
                errors=[{"loc": ["body", "amount"], "msg": "not an amount", "type": "invalid_amount"}],
            ) from None
        return await _open(request, ctx, service, slug, amount, cookie)
    except GatewayError as e:
        if _wants_json(request) or e.status != 422:
            return _error_page(request, e)
        return _form(ctx, link, cookie or secrets.token_urlsafe(32), status=422, error=e.detail, value=raw)
