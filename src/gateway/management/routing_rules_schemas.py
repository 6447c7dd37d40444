"""What PUT and GET /v1/routing-rules take and answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from gateway.payments.fields import Amount, Currency, PaymentMethodType
from gateway.routing_rules.models import RoutingRule
from gateway.routing_rules.service import MAX_RULES, Draft


def _country(v: str) -> str:
    if phonenumbers.country_code_for_region(v) == 0:
        raise PydanticCustomError(
            "invalid_country",
            "{value} is not a country with a calling code (ISO 3166-1 alpha-2)",
            {"value": v},
        )
    return v


Country = Annotated[
    str,
    Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, upper case"),
    AfterValidator(_country),
]


class RoutingRuleIn(BaseModel):
    """One rule: its provider, and the conditions a payment must meet (each left out holds for all)."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    currency: Currency | None = None
    phone_country: Country | None = Field(
        None, description="The country of the customer's phone number (customer.phone)"
    )
    payment_method_type: PaymentMethodType | None = Field(
        None, description="The payment's payment_method_type"
    )
    amount_min: Amount | None = Field(None, description="Inclusive, in minor units")
    amount_max: Amount | None = Field(None, description="Inclusive, in minor units")

    @model_validator(mode="after")
    def _range(self) -> RoutingRuleIn:
        if self.amount_min is not None and self.amount_max is not None and self.amount_min > self.amount_max:
            raise PydanticCustomError("invalid_amount_range", "amount_min must not be above amount_max")
        return self

    def draft(self) -> Draft:
        return Draft(
            provider=self.provider,
            currency=self.currency,
            phone_country=self.phone_country,
            payment_method_type=self.payment_method_type,
            amount_min=self.amount_min,
            amount_max=self.amount_max,
        )


class RoutingRulesIn(BaseModel):
    """The whole ordered list, replacing the one in the key's mode (an empty list removes them all)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {"provider": "mpesa", "currency": "KES", "phone_country": "KE"},
                        {"provider": "stripe", "payment_method_type": "card", "amount_max": 500000},
                        {"provider": "paystack", "currency": "NGN"},
                    ]
                }
            ]
        },
    )

    rules: list[RoutingRuleIn] = Field(max_length=MAX_RULES)


class RoutingRuleOut(BaseModel):
    position: int = Field(description="1 for the rule tried first")
    provider: str
    currency: str | None
    phone_country: str | None
    payment_method_type: PaymentMethodType | None
    amount_min: int | None
    amount_max: int | None


class RoutingRules(BaseModel):
    object: Literal["routing_rules"] = "routing_rules"
    livemode: bool
    rules: list[RoutingRuleOut]


def rules_out(livemode: bool, rows: list[RoutingRule]) -> RoutingRules:
    fields: dict[str, Any]
    out = []
    for r in rows:
        fields = {
            "position": r.position,
            "provider": r.provider,
            "currency": r.currency,
            "phone_country": r.phone_country,
            "payment_method_type": r.payment_method_type,
            "amount_min": r.amount_min,
            "amount_max": r.amount_max,
        }
        out.append(RoutingRuleOut.model_validate(fields))
    return RoutingRules(livemode=livemode, rules=out)
