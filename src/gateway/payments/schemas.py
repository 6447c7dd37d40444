"""What the payments API answers: the payment (its model and its fast JSON twin), its attempts and
lists (requests.py holds what it takes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from typing_extensions import TypeAliasType

from gateway.payments.fields import (
    PaymentStatus,
)
from gateway.payments.requests import Locale


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


# What each kind of next action holds. Extra keys a provider adds are kept (extra="allow"), so
# the stored action is shown as it was.
class RedirectToUrl(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: str
    return_url: str | None = None


class MobileMoneyPrompt(BaseModel):
    model_config = ConfigDict(extra="allow")
    phone: str | None = None
    message: str


class UseClientSecret(BaseModel):
    model_config = ConfigDict(extra="allow")
    client_secret: str


class CollectCash(BaseModel):
    model_config = ConfigDict(extra="allow")


NextActionType = TypeAliasType(
    "NextActionType", Literal["redirect_to_url", "mobile_money_prompt", "use_client_secret", "collect_cash"]
)


class NextAction(BaseModel):
    """What the customer must do; the object named by `type` holds the details."""

    type: NextActionType
    redirect_to_url: RedirectToUrl | None = None
    mobile_money_prompt: MobileMoneyPrompt | None = None
    use_client_secret: UseClientSecret | None = None
    collect_cash: CollectCash | None = None

    # Only the member `type` names is shown: the others are left out, not null. No return annotation
    # on purpose: with one, pydantic would document NextAction as that type instead of its fields.
    @model_serializer(mode="wrap")
    def _only_its_kind(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        return {k: v for k, v in handler(self).items() if v is not None}


CardFunding = TypeAliasType("CardFunding", Literal["credit", "debit", "prepaid", "unknown"])


class CardDetails(BaseModel):
    """A card payment: what the provider says about the card, never its number."""

    type: Literal["card"]
    brand: str | None = Field(description="visa, mastercard, amex, verve, ... (lower case)")
    last4: str | None = Field(description="The card number's last four digits", pattern=r"^[0-9]{4}$")
    exp_month: int | None = Field(ge=1, le=12)
    exp_year: int | None
    funding: CardFunding | None
    country: str | None = Field(description="The issuer's country, ISO 3166-1 alpha-2", pattern=r"^[A-Z]{2}$")


class MobileMoneyDetails(BaseModel):
    """A mobile-money payment: the operator, the payer's number's last four digits and the receipt."""

    type: Literal["mobile_money"]
    operator: str | None = Field(description="mpesa, mtn, wave, airtel, ...")
    phone_last4: str | None = Field(description="The paying number's last four digits", pattern=r"^[0-9]{4}$")
    receipt: str | None = Field(
        description="The operator's transaction id, as on the customer's SMS", max_length=64
    )


class CashDetails(BaseModel):
    """Cash collected in person."""

    type: Literal["cash"]
    till: str | None = Field(
        description="The till or cash session that took it (the payment's payment_method)"
    )


PaymentMethodDetails = Annotated[CardDetails | MobileMoneyDetails | CashDetails, Field(discriminator="type")]
# Each type's keys in the models' order: JSONB keeps no key order, the API shows this one.
_DETAIL_KEYS: dict[str, tuple[str, ...]] = {
    "card": tuple(CardDetails.model_fields),
    "mobile_money": tuple(MobileMoneyDetails.model_fields),
    "cash": tuple(CashDetails.model_fields),
}


def _details(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    return {k: stored.get(k) for k in _DETAIL_KEYS[stored["type"]]}


def _routing(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """In the model's key order (JSONB keeps none)."""
    if stored is None:
        return None
    return {
        "route": stored["route"],
        "attempts": [
            {"number": a["number"], "provider": a["provider"], "outcome": a["outcome"]}
            for a in stored["attempts"]
        ],
    }


class CustomerOut(BaseModel):
    name: str | None
    email: str | None
    phone: str | None
    location: str | None


RoutingOutcome = TypeAliasType("RoutingOutcome", Literal["provider_unavailable", "current"])


class RoutingAttempt(BaseModel):
    number: int = Field(description="The attempt's number (payment_attempts.number)")
    provider: str
    outcome: RoutingOutcome = Field(
        description="`provider_unavailable`: the provider could not take the payment (no connection, "
        "5xx or 429) and the next provider of the route was tried; `current`: the attempt the payment "
        "is on (its status is the payment's)"
    )


class Routing(BaseModel):
    """How a payment made with `"provider": "auto"` was routed."""

    route: list[str] = Field(description="The providers the routing rules chose, in the order tried")
    attempts: list[RoutingAttempt]


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


def payment_json(p: Any, *, client_secret: bool = False) -> dict[str, Any]:
    """The API's view of a payment (ORM object or row) as plain data: `PaymentOut`'s fields in its
    order with its values, timestamps as aware datetimes that `dump` (orjson, UTC as "Z") renders as
    Pydantic does (tests hold the two byte-identical). Several times cheaper than the model.

    `client_secret`: only answers to a secret or restricted key show it; events, webhooks, logs and
    streams (the default) hold null."""
    next_action = p.next_action
    return {
        "id": p.id,
        "object": "payment",
        "amount": p.amount,
        "amount_refunded": p.amount_refunded,
        "currency": p.currency,
        "status": p.status,
        "provider": p.provider,
        "payment_method": p.payment_method,
        "payment_method_details": _details(p.payment_method_details),
        "customer": {
            "name": p.customer_name,
            "email": p.customer_email,
            "phone": p.customer_phone,
            "location": p.customer_location,
        },
        "description": p.description,
        "reference": p.reference,
        "metadata": p.metadata_,
        "livemode": p.livemode,
        "provider_reference": p.provider_reference,
        "next_action": (
            NextAction.model_validate(next_action).model_dump(mode="json") if next_action else None
        ),
        "failure_code": p.failure_code,
        "failure_message": p.failure_message,
        "return_url": p.return_url,
        "client_secret": p.client_secret if client_secret else None,
        "checkout_url": checkout_url(p),
        "locale": p.locale,
        "allow_retries": p.allow_retries,
        "payment_link": p.payment_link_id,
        "cash_session": p.cash_session,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "completed_at": p.completed_at,
        "routing": _routing(p.routing),
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
