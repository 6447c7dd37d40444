"""Request and response bodies of the cash drawer sessions API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from gateway.payments.fields import MAX_AMOUNT, Currency, Metadata

# The drawer's name as the merchant calls it, in the path: letters, digits and `.`, `_`, `-`, starting
# with a letter or digit (so never `.` or `..`), at most 64 characters. Case matters: `Till-1` and
# `till-1` are two drawers.
DRAWER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DRAWER_MAX = 64

CashSessionStatus = TypeAliasType("CashSessionStatus", Literal["open", "closed"])


def _at_most_max(v: int) -> int:
    if v > MAX_AMOUNT:
        raise PydanticCustomError("amount_too_large", "amount must be at most {max}", {"max": MAX_AMOUNT})
    return v


# A count of cash may be nothing at all (an empty drawer), unlike a payment's amount.
CashAmount = Annotated[
    StrictInt,
    Field(
        ge=0,
        description="Integer amount in the currency's minor unit, 0 or more",
        json_schema_extra={"maximum": MAX_AMOUNT},
    ),
    AfterValidator(_at_most_max),
]
PersonName = Annotated[str, Field(min_length=1, max_length=100)]


class CashSessionOpen(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"opening_float": 50000, "currency": "KES", "opened_by": "Amina"}],
        },
    )

    opening_float: CashAmount = Field(description="The cash in the drawer when the session opens")
    currency: Currency
    opened_by: PersonName | None = Field(
        None, description="Who opened it, as your staff know them (the API key is recorded anyway)"
    )
    metadata: Metadata = Field(default_factory=dict)


class CashSessionClose(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"counted": 71500, "closed_by": "Amina"}]}
    )

    counted: CashAmount = Field(description="The cash counted in the drawer at the close")
    closed_by: PersonName | None = Field(
        None,
        description="Who counted and closed it, as your staff know them (the API key is recorded anyway)",
    )


class CashSessionActor(BaseModel):
    """Who opened or closed a session: the API key that called, and the name the caller gave."""

    api_key: str = Field(
        description="The id (`key_…`) of the API key (or the access token's key) that called"
    )
    name: str | None = Field(description="The name sent as `opened_by` / `closed_by`, if any")


class CashSessionOut(BaseModel):
    id: str
    object: Literal["cash_session"] = "cash_session"
    drawer: str
    status: CashSessionStatus
    currency: str
    opening_float: int
    counted: int | None = Field(description="At the close: the cash counted (null while open)")
    payments_total: int | None = Field(
        description="At the close: the succeeded cash payments taken into the session"
    )
    refunds_total: int | None = Field(description="At the close: the cash refunds paid out of the session")
    expected: int | None = Field(
        description="At the close: opening_float + payments_total - refunds_total (null while open)"
    )
    difference: int | None = Field(
        description="At the close: counted - expected; above 0 the drawer is over, below 0 short"
    )
    opened_by: CashSessionActor
    closed_by: CashSessionActor | None
    opened_at: datetime
    closed_at: datetime | None
    metadata: dict[str, str]
    livemode: bool
    created_at: datetime
    updated_at: datetime


class CashSessionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CashSessionOut]
    has_more: bool


@dataclass(frozen=True)
class CashSessionFilters:
    drawer: str
    status: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


def session_out(s: Any) -> CashSessionOut:
    return CashSessionOut(
        id=s.id,
        drawer=s.drawer,
        status=s.status,
        currency=s.currency,
        opening_float=s.opening_float,
        counted=s.counted,
        payments_total=s.payments_total,
        refunds_total=s.refunds_total,
        expected=s.expected,
        difference=s.difference,
        opened_by=CashSessionActor(api_key=s.opened_by, name=s.opened_by_name),
        closed_by=(
            CashSessionActor(api_key=s.closed_by, name=s.closed_by_name) if s.closed_by is not None else None
        ),
        opened_at=s.opened_at,
        closed_at=s.closed_at,
        metadata=s.metadata_,
        livemode=s.livemode,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )
