"""The routing_rules table (schema for alembic) and its row type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, SmallInteger, String, Table

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

# A merchant's ordered rules in one mode: the first rule whose conditions all hold (a NULL condition
# holds for every payment) names the provider; the next matching rules are the fallbacks. A PUT
# replaces the whole list in one transaction.
routing_rules = Table(
    "routing_rules",
    metadata,
    Column("merchant_id", String(40), ForeignKey("merchants.id"), primary_key=True),
    Column("livemode", Boolean, primary_key=True),
    # 1, 2, 3...: the order the rules are tried in.
    Column("position", SmallInteger, primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("currency", String(3)),
    # ISO 3166-1 alpha-2 of the customer's phone number (its calling code, through phonenumbers).
    Column("phone_country", String(2)),
    # card | mobile_money | cash: the payment's `payment_method_type`.
    Column("payment_method_type", String(32)),
    # Inclusive bounds, in the payment currency's minor units.
    Column("amount_min", BigInteger),
    Column("amount_max", BigInteger),
    timestamp("created_at", now=True),
)


@dataclass(slots=True, frozen=True)
class RoutingRule:
    merchant_id: str
    livemode: bool
    position: int
    provider: str
    currency: str | None
    phone_country: str | None
    payment_method_type: str | None
    amount_min: int | None
    amount_max: int | None
    created_at: datetime


ROUTING_RULES = RowSpec(routing_rules, RoutingRule)
