"""Imports every table so that alembic sees the whole schema."""

from gateway.cash_drawers.models import cash_sessions
from gateway.db.base import metadata
from gateway.events.models import events
from gateway.merchants.models import api_keys, merchants
from gateway.payment_links.models import payment_links
from gateway.payments.models import payment_attempts, payments
from gateway.payouts.models import payout_daily_totals, payout_limits, payouts
from gateway.provider_accounts.models import provider_accounts
from gateway.refunds.models import refunds
from gateway.routing_rules.models import routing_rules
from gateway.webhooks.inbound.models import inbound_webhooks
from gateway.webhooks.outbound.models import webhook_attempts, webhook_deliveries, webhook_endpoints

__all__ = [
    "api_keys",
    "cash_sessions",
    "events",
    "inbound_webhooks",
    "merchants",
    "metadata",
    "payment_attempts",
    "payment_links",
    "payments",
    "payout_daily_totals",
    "payout_limits",
    "payouts",
    "provider_accounts",
    "refunds",
    "routing_rules",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
]
