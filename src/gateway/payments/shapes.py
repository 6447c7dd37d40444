"""The parts of a payment as the API shows it: its next action, how it was paid, its customer and its
route (schemas.PaymentOut holds them; payment_view renders stored JSONB in their key order)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from typing_extensions import TypeAliasType


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


def shown_details(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    return {k: stored.get(k) for k in _DETAIL_KEYS[stored["type"]]}


def shown_routing(stored: dict[str, Any] | None) -> dict[str, Any] | None:
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
