"""What GET and PUT /v1/admin/merchants/{id}/payout-limits take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from gateway.kit.money import CURRENCY_EXPONENTS
from gateway.payments.fields import Amount
from gateway.payouts.limits import ANY, Draft, Effective, MerchantLimits, ModeLimits, Source

MAX_ROWS = 200  # more than there are currencies


def _currency(v: str) -> str:
    # The code `invalid_currency`, as every currency field answers; "*" is any currency not named.
    if v != ANY and v not in CURRENCY_EXPONENTS:
        hint = " (currency codes are upper case)" if v.upper() in CURRENCY_EXPONENTS else ""
        raise PydanticCustomError(
            "invalid_currency",
            "{value} is neither an ISO 4217 currency code nor '*'{hint}",
            {"value": v, "hint": hint},
        )
    return v


LimitCurrency = Annotated[
    str,
    AfterValidator(_currency),
    Field(
        min_length=1,
        max_length=3,
        description='ISO 4217 code, upper case, or "*": any currency the merchant has no row for',
        json_schema_extra={"pattern": r"^([A-Z]{3}|\*)$"},
    ),
]


class PayoutLimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: LimitCurrency
    max_per_payout: Amount | None = Field(None, description="Minor units; null: the next rule's limit")
    max_per_day: Amount | None = Field(None, description="Minor units per UTC day; null: the next rule's")

    @model_validator(mode="after")
    def _sensible(self) -> PayoutLimitIn:
        if self.max_per_payout is None and self.max_per_day is None:
            raise PydanticCustomError("limit_required", "give max_per_payout, max_per_day or both")
        if (
            self.max_per_payout is not None
            and self.max_per_day is not None
            and self.max_per_payout > self.max_per_day
        ):
            raise PydanticCustomError("invalid_limit_range", "max_per_payout must not be above max_per_day")
        return self


def _unique(rows: list[PayoutLimitIn]) -> list[PayoutLimitIn]:
    seen: set[str] = set()
    for row in rows:
        if row.currency in seen:
            raise PydanticCustomError(
                "duplicate_currency", "{currency} is given twice", {"currency": row.currency}
            )
        seen.add(row.currency)
    return rows


class PayoutLimitsIn(BaseModel):
    """The merchant's whole set of rows in one mode, replacing the ones there (an empty list removes
    them: the defaults hold again)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "livemode": False,
                    "limits": [
                        {"currency": "KES", "max_per_payout": 5_000_000, "max_per_day": 20_000_000},
                        {"currency": "*", "max_per_payout": None, "max_per_day": 10_000_000},
                    ],
                }
            ]
        },
    )

    livemode: StrictBool
    limits: Annotated[list[PayoutLimitIn], AfterValidator(_unique)] = Field(max_length=MAX_ROWS)

    def drafts(self) -> list[Draft]:
        return [Draft(r.currency, r.max_per_payout, r.max_per_day) for r in self.limits]


class PayoutLimitOut(BaseModel):
    currency: str
    max_per_payout: int | None
    max_per_day: int | None
    updated_at: datetime


class EffectiveLimitOut(BaseModel):
    currency: str = Field(description='"*": a currency named nowhere else')
    max_per_payout: int | None = Field(description="null: no limit")
    max_per_payout_source: Source = Field(
        description="`merchant` (its own row), `default` (the deployment's setting) or `none`"
    )
    max_per_day: int | None
    max_per_day_source: Source


class ModeLimitsOut(BaseModel):
    livemode: bool
    limits: list[PayoutLimitOut] = Field(description="The merchant's own rows (what PUT set)")
    effective: list[EffectiveLimitOut]


class PayoutLimits(BaseModel):
    object: Literal["payout_limits"] = "payout_limits"
    merchant: str
    test: ModeLimitsOut
    live: ModeLimitsOut


def _effective(e: Effective) -> EffectiveLimitOut:
    return EffectiveLimitOut(
        currency=e.currency,
        max_per_payout=e.per_payout.amount,
        max_per_payout_source=e.per_payout.source,
        max_per_day=e.per_day.amount,
        max_per_day_source=e.per_day.source,
    )


def _mode(m: ModeLimits) -> ModeLimitsOut:
    return ModeLimitsOut(
        livemode=m.livemode,
        limits=[
            PayoutLimitOut(
                currency=r.currency,
                max_per_payout=r.max_per_payout,
                max_per_day=r.max_per_day,
                updated_at=r.updated_at,
            )
            for r in m.own
        ],
        effective=[_effective(e) for e in m.effective],
    )


def limits_out(m: MerchantLimits) -> PayoutLimits:
    return PayoutLimits(merchant=m.merchant_id, test=_mode(m.test), live=_mode(m.live))
