"""Request and response bodies of the payouts API, and how a destination is shown (masked)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from gateway.payments.fields import Amount, Currency, Metadata, Phone
from gateway.providers.payouts import MOBILE_MONEY, PayoutDestination

# Named: one schema each in the OpenAPI document, one enum each in generated clients.
PayoutStatus = TypeAliasType("PayoutStatus", Literal["pending", "succeeded", "failed", "canceled"])
DestinationType = TypeAliasType("DestinationType", Literal["mobile_money", "bank_account"])


def _digits_or_letters(v: str) -> str:
    if not re.fullmatch(r"[0-9A-Za-z-]{1,34}", v):  # IBANs are the longest account numbers: 34
        raise PydanticCustomError(
            "invalid_destination", "account_number is 1 to 34 letters, digits or dashes"
        )
    return v


def _bank_code(v: str) -> str:
    if not re.fullmatch(r"[0-9A-Za-z_-]{1,32}", v):
        raise PydanticCustomError("invalid_destination", "bank_code is 1 to 32 letters, digits, - or _")
    return v


AccountNumber = Annotated[str, Field(max_length=34), AfterValidator(_digits_or_letters)]
BankCode = Annotated[str, Field(max_length=32), AfterValidator(_bank_code)]


class DestinationIn(BaseModel):
    """mobile_money: `phone` (E.164); bank_account: `account_number` and `bank_code`."""

    model_config = ConfigDict(extra="forbid")

    type: DestinationType
    phone: Phone | None = None
    account_number: AccountNumber | None = None
    bank_code: BankCode | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> DestinationIn:
        if self.type == MOBILE_MONEY:
            if self.phone is None:
                raise PydanticCustomError("invalid_destination", "a mobile_money destination needs a phone")
            if self.account_number is not None or self.bank_code is not None:
                raise PydanticCustomError(
                    "invalid_destination", "a mobile_money destination takes no account_number or bank_code"
                )
        else:
            if self.account_number is None or self.bank_code is None:
                raise PydanticCustomError(
                    "invalid_destination", "a bank_account destination needs account_number and bank_code"
                )
            if self.phone is not None:
                raise PydanticCustomError("invalid_destination", "a bank_account destination takes no phone")
        return self

    def stored(self) -> dict[str, str]:
        """What the payouts row keeps: only the fields given."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class PayoutCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "amount": 150000,
                    "currency": "KES",
                    "provider": "mpesa",
                    "destination": {"type": "mobile_money", "phone": "+254708374149", "name": "Amina"},
                    "reference": "rider-payout-2026-12-05",
                    "metadata": {"rider": "r_118"},
                }
            ]
        },
    )

    amount: Amount
    currency: Currency
    provider: Annotated[str, Field(min_length=1, max_length=32)]
    destination: DestinationIn
    reference: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    metadata: Metadata = Field(default_factory=dict)


class DestinationOut(BaseModel):
    """The destination as answers and events show it: numbers masked but for their last digits."""

    type: DestinationType
    phone: str | None = None
    account_number: str | None = None
    bank_code: str | None = None
    name: str | None = None


class PayoutOut(BaseModel):
    id: str
    object: Literal["payout"] = "payout"
    amount: int
    currency: str
    provider: str
    destination: DestinationOut
    reference: str | None
    status: PayoutStatus
    provider_reference: str | None
    failure_code: str | None
    failure_message: str | None
    metadata: dict[str, str]
    livemode: bool
    submitted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class PayoutList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PayoutOut]
    has_more: bool


@dataclass(frozen=True)
class PayoutFilters:
    status: str | None = None
    provider: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


def _mask(value: str | None, keep_start: int, keep_end: int) -> str | None:
    if value is None:
        return None
    if len(value) <= keep_start + keep_end:
        return "•" * max(len(value) - keep_end, 0) + value[-keep_end:]
    return value[:keep_start] + "•" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def mask_destination(d: dict[str, Any]) -> DestinationOut:
    """A phone keeps its country code's first digits and its last 3 (+254•••••149); an account
    number its last 4; the bank code and name are shown as given."""
    return DestinationOut(
        type=d["type"],
        phone=_mask(d.get("phone"), 4, 3),
        account_number=_mask(d.get("account_number"), 0, 4),
        bank_code=d.get("bank_code"),
        name=d.get("name"),
    )


def destination_of(d: dict[str, Any]) -> PayoutDestination:
    """The stored destination as the provider is handed it (unmasked)."""
    return PayoutDestination(
        type=d["type"],
        phone=d.get("phone"),
        account_number=d.get("account_number"),
        bank_code=d.get("bank_code"),
        name=d.get("name"),
    )


def payout_out(p: Any) -> PayoutOut:
    return PayoutOut(
        id=p.id,
        amount=p.amount,
        currency=p.currency,
        provider=p.provider,
        destination=mask_destination(p.destination),
        reference=p.reference,
        status=p.status,
        provider_reference=p.provider_reference,
        failure_code=p.failure_code,
        failure_message=p.failure_message,
        metadata=p.metadata_,
        livemode=p.livemode,
        submitted_at=p.submitted_at,
        created_at=p.created_at,
        updated_at=p.updated_at,
        completed_at=p.completed_at,
    )
