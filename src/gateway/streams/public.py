"""What a browser's stream shows of a feed's item: the payment's public subset
(gateway.payments.public), never the full payment, its customer or its client secret."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from gateway.payments.public import public_payment_json
from gateway.streams.feed import Item


def public_item(item: Item, methods: list[str]) -> dict[str, Any] | None:
    """The payment as the item shows it, public fields only; None for an item about anything else
    (a refund's events)."""
    obj = item.object
    if obj.get("object") != "payment":
        return None
    # An event's object is the payment as the API showed it then: the same fields as the row.
    return public_payment_json(SimpleNamespace(**obj), methods)
