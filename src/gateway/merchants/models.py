"""Merchants and their API keys: tables (schema for alembic) and row types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, String, Table

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

merchants = Table(
    "merchants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    timestamp("created_at", now=True),
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
)


@dataclass(slots=True, frozen=True)
class Merchant:
    id: str
    name: str
    created_at: datetime


@dataclass(slots=True, frozen=True)
class ApiKey:
    id: str
    merchant_id: str
    key_hash: str
    prefix: str
    livemode: bool
    created_at: datetime
    revoked_at: datetime | None


MERCHANTS = RowSpec(merchants, Merchant)
API_KEYS = RowSpec(api_keys, ApiKey)
