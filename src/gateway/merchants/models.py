"""Merchants and their API keys: tables (schema for alembic) and row types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, text
from sqlalchemy.dialects.postgresql import ARRAY

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

KEY_TYPES = ("secret", "publishable", "restricted")

merchants = Table(
    "merchants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    timestamp("created_at", now=True),
    # active | disabled: a disabled merchant's keys and tokens are refused (403 merchant_disabled).
    Column("status", String(16), server_default=text("'active'"), nullable=False),
    # Requests per second per API key, overriding the mode's default (GATEWAY_RATE_LIMITS__...).
    Column("rate_limit", Integer),
    timestamp("updated_at", now=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), index=True, nullable=False),
    # SHA-256 of the key: keys are 192-bit random, so a fast hash is enough and lookups stay O(1).
    Column("key_hash", String(64), unique=True, nullable=False),
    # First characters, to tell keys apart in a dashboard without storing them.
    Column("prefix", String(20), nullable=False),
    Column("livemode", Boolean, nullable=False),
    timestamp("created_at", now=True),
    timestamp("revoked_at"),
    # secret (sk_) | publishable (pk_) | restricted (rk_)
    Column("type", String(16), server_default=text("'secret'"), nullable=False),
    # A restricted key's scopes (payments:read, ...); NULL for secret and publishable keys.
    Column("scopes", ARRAY(String(40))),
    # The key's last four characters, shown beside the prefix.
    Column("last4", String(4), server_default=text("''"), nullable=False),
    # A rolled key keeps working until then; NULL: no expiry.
    timestamp("expires_at"),
    # The key a roll made in this one's place.
    Column("rolled_to", String(40)),
)


@dataclass(slots=True, frozen=True)
class Merchant:
    id: str
    name: str
    created_at: datetime
    status: str
    rate_limit: int | None
    updated_at: datetime


@dataclass(slots=True, frozen=True)
class ApiKey:
    id: str
    merchant_id: str
    key_hash: str
    prefix: str
    livemode: bool
    created_at: datetime
    revoked_at: datetime | None
    type: str
    scopes: list[str] | None
    last4: str
    expires_at: datetime | None
    rolled_to: str | None


MERCHANTS = RowSpec(merchants, Merchant)
API_KEYS = RowSpec(api_keys, ApiKey)
