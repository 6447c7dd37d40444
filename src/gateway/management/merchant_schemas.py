"""Merchants and their API keys as the admin API and the keys API take and show them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from typing_extensions import TypeAliasType

from gateway.merchants.keys import MAX_ROLL_SECONDS, key_status
from gateway.merchants.models import ApiKey, Merchant
from gateway.merchants.scopes import SCOPES

MerchantStatus = TypeAliasType("MerchantStatus", Literal["active", "disabled"])
KeyType = TypeAliasType("KeyType", Literal["secret", "publishable", "restricted"])
KeyMode = TypeAliasType("KeyMode", Literal["test", "live"])
KeyStatus = TypeAliasType("KeyStatus", Literal["active", "expired", "revoked"])
# The document lists the scopes; the check stays in merchants.keys.checked_scopes, so an unknown one
# is answered with its own code (`invalid_scopes`), as the CLI's is.
Scope = TypeAliasType("Scope", Annotated[str, Field(max_length=40, json_schema_extra={"enum": list(SCOPES)})])
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
RateLimit = Annotated[
    StrictInt,
    Field(ge=1, le=100_000, description="Requests per second per API key; null: the mode's default"),
]


class MerchantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Mama Mboga Shop"}]})

    name: Name
    rate_limit: RateLimit | None = None


class MerchantUpdate(BaseModel):
    """Only the fields sent change; `rate_limit: null` goes back to the mode's default."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    status: MerchantStatus | None = Field(
        None, description="`disabled`: every key and token of the merchant is refused (403 merchant_disabled)"
    )
    rate_limit: RateLimit | None = None


class MerchantOut(BaseModel):
    id: str
    object: Literal["merchant"] = "merchant"
    name: str
    status: MerchantStatus
    rate_limit: int | None = Field(description="Requests per second per API key; null: the mode's default")
    created: datetime
    updated_at: datetime


class MerchantList(BaseModel):
    object: Literal["list"] = "list"
    data: list[MerchantOut]
    has_more: bool


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"mode": "test", "type": "secret"},
                {"mode": "test", "type": "restricted", "scopes": ["payments:read", "events:read"]},
            ]
        },
    )

    mode: KeyMode | None = Field(
        None, description="Admin API: default `test`. Keys API: the calling key's mode (another is refused)"
    )
    type: KeyType = "secret"
    scopes: list[Scope] | None = Field(
        None, max_length=len(SCOPES), description="Restricted keys only: what the key may do (at least one)"
    )


class ApiKeyRoll(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"expires_in": 86_400}]})

    expires_in: StrictInt = Field(
        ge=0,
        le=MAX_ROLL_SECONDS,
        description="Seconds the old key keeps working beside the new one (0: it stops now; at most 7 days)",
    )


class ApiKeyOut(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    merchant: str
    type: KeyType
    mode: KeyMode
    livemode: bool
    prefix: str = Field(description="The key's first 12 characters (`sk_test_Ab3d`)")
    last4: str
    scopes: list[Scope] | None = Field(description="A restricted key's scopes; null for other types")
    status: KeyStatus
    created: datetime
    expires_at: datetime | None = Field(description="A rolled key stops working then")
    revoked_at: datetime | None
    rolled_to: str | None = Field(description="The key a roll made in this one's place")


class ApiKeyWithSecret(ApiKeyOut):
    """The answers that make a key (create, roll) carry it in clear, once."""

    secret: str | None = Field(
        description="The key itself: store it now, it is never shown again. null in an idempotent "
        "replay of the answer (docs/api.md)"
    )


class ApiKeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ApiKeyOut]
    has_more: bool


def merchant_out(m: Merchant) -> MerchantOut:
    return MerchantOut(
        id=m.id,
        name=m.name,
        status=m.status,
        rate_limit=m.rate_limit,
        created=m.created_at,
        updated_at=m.updated_at,
    )


def api_key_out(k: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=k.id,
        merchant=k.merchant_id,
        type=k.type,
        mode="live" if k.livemode else "test",
        livemode=k.livemode,
        prefix=k.prefix,
        last4=k.last4,
        scopes=k.scopes,
        status=key_status(k),
        created=k.created_at,
        expires_at=k.expires_at,
        revoked_at=k.revoked_at,
        rolled_to=k.rolled_to,
    )


def api_key_with_secret(k: ApiKey, secret: str | None) -> ApiKeyWithSecret:
    return ApiKeyWithSecret(**api_key_out(k).model_dump(), secret=secret)
