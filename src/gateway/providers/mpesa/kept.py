"""What the M-Pesa adapter keeps in Redis, shared by every worker and replica: per payment, the
accepted push (CheckoutRequestID and the prompt shown to the merchant), so a retried create never
prompts the customer twice and a sync knows what to query. (The MpesaReceiptNumber a reversal names
is on the payment row, `provider_receipt`, not here.)
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from redis.asyncio import Redis

from gateway.providers.mpesa.transformers import PushAccepted

log = structlog.get_logger("gateway.providers.mpesa")

PUSH_TTL_SECONDS = 7 * 86_400


class Kept:
    def __init__(self, redis: Redis):
        self._redis = redis

    async def save_push(self, payment_id: str, accepted: PushAccepted, next_action: dict[str, Any]) -> None:
        record = {
            "checkout": accepted.checkout_request_id,
            "merchant_request": accepted.merchant_request_id,
            "next_action": next_action,
        }
        try:
            await self._redis.set(f"mpesa:push:{payment_id}", orjson.dumps(record), ex=PUSH_TTL_SECONDS)
        except Exception as e:  # the push went through; the payment row gets its reference anyway
            log.warning("mpesa_push_not_kept", payment_id=payment_id, error=type(e).__name__)

    async def load_push(self, payment_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(f"mpesa:push:{payment_id}")
        if raw is None:
            return None
        record = orjson.loads(raw)
        return record if isinstance(record, dict) and isinstance(record.get("checkout"), str) else None
