"""What the payments API takes: the create and confirm bodies, the list's query and its filters
(schemas.py holds what it answers)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from gateway.api.pagination import Timestamp
from gateway.payments.fields import (
    Amount,
    Currency,
    Email,
    Metadata,
    PaymentMethod,
    PaymentMethodType,
    PaymentStatus,
    Phone,
)

Locale = TypeAliasType("Locale", Literal["en", "fr"])
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    email: Email | None = None
    phone: Phone | None = None
    location: str | None = Field(None, min_length=1, max_length=200)


class PaymentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "amount": 1500,
                    "currency": "KES",
                    "provider": "sandbox",
                    "payment_method": "pm_success",
                    "customer": {
                        "name": "Amina Otieno",
                        "email": "amina@example.com",
                        "phone": "+254712345678",
                    },
                    "reference": "order_1042",
                    "metadata": {"order_id": "1042"},
                }
            ]
        },
    )

    amount: Amount
    currency: Currency
    provider: str | None = Field(
        None,
        min_length=1,
        max_length=32,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="The rail; `auto`: the first provider your routing rules choose (PUT "
        "/v1/routing-rules), the next ones if it is unavailable. Leave it out to let the customer "
        "choose (status requires_payment_method, then POST /v1/payments/{id}/confirm), or to route it "
        "where you have routing rules",
    )
    payment_method: PaymentMethod | None = Field(
        None, min_length=1, max_length=100, description="Provider-specific method or token; never card data"
    )
    customer: Customer | None = None
    description: str | None = Field(None, max_length=1000)
    reference: str | None = Field(None, min_length=1, max_length=255, description="Your order id")
    metadata: Metadata = Field(default_factory=dict)
    return_url: str | None = Field(None, max_length=2048)
    locale: Locale | None = Field(None, description="The checkout page's language")
    allow_retries: bool = Field(
        True, description="Whether the customer may confirm again after a failed attempt"
    )
    payment_method_type: PaymentMethodType | None = Field(
        None, description="What kind of method pays it: routing rules match it (routed payments only)"
    )
    cash_session: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        description="With provider cash: the open drawer session (`cds_…`) the cash goes into, counted "
        "when the session closes",
    )

    @model_validator(mode="after")
    def _method_needs_provider(self) -> PaymentCreate:
        if self.payment_method is not None and self.provider is None:
            raise PydanticCustomError("missing_provider", "payment_method needs a provider")
        if self.payment_method_type is not None and self.provider not in (None, "auto"):
            raise PydanticCustomError(
                "routing_only", 'payment_method_type chooses a route: use it with provider "auto" or none'
            )
        return self

    @field_validator("return_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not _URL_RE.match(v):
            raise PydanticCustomError("invalid_url", "return_url must be an http(s) URL")
        return v


class ConfirmCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone | None = None
    email: Email | None = None


class PaymentConfirm(BaseModel):
    """The rail the customer (or the merchant) chooses for a payment in requires_payment_method."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "client_secret": "pay_01j..._secret_...",
                    "provider": "mpesa",
                    "customer": {"phone": "+254712345678"},
                }
            ]
        },
    )

    client_secret: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="The payment's client secret: required with a publishable key, ignored otherwise",
    )
    provider: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    payment_method: PaymentMethod | None = Field(
        None, min_length=1, max_length=100, description="Provider-specific method or token; never card data"
    )
    customer: ConfirmCustomer | None = None
    cash_session: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        description="With provider cash: the open drawer session (`cds_…`) the cash goes into, counted "
        "when the session closes",
    )


class PaymentListQuery(BaseModel):
    """The list's query string as one model: FastAPI validates it in one go, not field by field."""

    limit: int = Field(10, ge=1, le=100, description="How many objects, 1-100")
    starting_after: str | None = Field(
        None, max_length=40, description="A payment id: the page of older payments after it"
    )
    ending_before: str | None = Field(
        None, max_length=40, description="A payment id: the page of newer payments before it"
    )
    status: PaymentStatus | None = None
    provider: str | None = Field(None, max_length=32)
    reference: str | None = Field(None, max_length=255)
    customer_email: str | None = Field(None, max_length=320, json_schema_extra={"format": "email"})
    payment_link: str | None = Field(None, max_length=40, description="A payment link id: its payments")
    created_gte: Timestamp | None = None
    created_lt: Timestamp | None = None


@dataclass(frozen=True)
class PaymentFilters:
    status: str | None = None
    provider: str | None = None
    reference: str | None = None
    customer_email: str | None = None
    payment_link: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None
