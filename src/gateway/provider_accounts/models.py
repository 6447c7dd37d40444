"""The provider_accounts table (schema for alembic) and its row type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, ForeignKey, String, Table, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

# One merchant's account with one provider in one mode. A replaced account keeps its id (payments
# and webhook URLs name it); a deleted one keeps its row, so payments made through it can still be
# synced and refunded, but takes no new payments.
provider_accounts = Table(
    "provider_accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("livemode", Boolean, nullable=False),
    # active | deleted
    Column("status", String(16), server_default=text("'active'"), nullable=False),
    # AES-GCM ciphertext of the credentials' JSON object (kit/secretbox.py): it carries its key id
    # and is bound to (id, merchant_id, provider, livemode), so a copy on another row does not open.
    Column("secrets", Text, nullable=False),
    # The id of the key that encrypted `secrets`, so `gateway secrets rotate` finds the rows left.
    Column("secrets_key_id", String(32), nullable=False),
    # What may be shown: each credential field's last four characters ("…abcd").
    Column("hints", JSONB, server_default=text("'{}'::jsonb"), nullable=False),
    # The provider's non-secret settings for this account.
    Column("settings", JSONB, server_default=text("'{}'::jsonb"), nullable=False),
    timestamp("created_at", now=True),
    timestamp("updated_at", now=True),
    UniqueConstraint("merchant_id", "provider", "livemode"),
)


@dataclass(slots=True, frozen=True)
class ProviderAccount:
    id: str
    merchant_id: str
    provider: str
    livemode: bool
    status: str
    secrets: str
    secrets_key_id: str
    hints: dict[str, str]
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


PROVIDER_ACCOUNTS = RowSpec(provider_accounts, ProviderAccount)
