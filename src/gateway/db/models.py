"""Imports every model so that alembic and the mapper registry see the whole schema."""

from gateway.db.base import Base
from gateway.events.models import Event
from gateway.merchants.models import ApiKey, Merchant
from gateway.payments.models import Payment
from gateway.refunds.models import Refund
from gateway.webhooks.inbound.models import InboundWebhook
from gateway.webhooks.outbound.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Base",
    "Event",
    "InboundWebhook",
    "Merchant",
    "Payment",
    "Refund",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
