"""The sandbox: a deterministic simulated provider that needs no account and no network.

It keeps only cancellations (in Redis); everything else follows from the test value and the time
since the payment was created, so any replica answers the same. Its webhooks are real: signed per the
Standard Webhooks spec and POSTed to this gateway's own `/v1/webhooks/sandbox`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.kit.money import CURRENCY_EXPONENTS
from gateway.kit.signing import standard_webhook_signature, verify_standard_webhook
from gateway.kit.tasks import TaskGroup
from gateway.providers.base import (
    Capabilities,
    Flow,
    PaymentRef,
    PaymentRequest,
    PaymentResult,
    ProviderTimedOut,
    ProviderUnavailable,
    RefundRef,
    RefundRequest,
    RefundResult,
    WebhookEvent,
    WebhookVerificationError,
    json_object,
)
from gateway.providers.sandbox import transformers as tf
from gateway.providers.sandbox.payouts import SandboxPayouts
from gateway.providers.sandbox.settings import SandboxSettings

log = structlog.get_logger("gateway.providers.sandbox")

# Currencies of the rails the gateway serves, plus a 0- and a 3-decimal one for tests of minor units.
SANDBOX_CURRENCIES = frozenset(
    {
        "KES",
        "UGX",
        "TZS",
        "RWF",
        "NGN",
        "GHS",
        "ZAR",
        "XOF",
        "XAF",
        "EGP",
        "MAD",
        "ETB",
        "ZMW",
        "MWK",
        "USD",
        "EUR",
        "GBP",
        "BHD",
        "JPY",
    }
)


class SandboxProvider(SandboxPayouts):
    name = "sandbox"

    def __init__(self, settings: SandboxSettings, redis: Redis, webhook_url: str):
        self._settings = settings
        self._redis = redis
        # Its webhooks go to this gateway's own public address, like any provider's would.
        self._webhook_url = webhook_url
        self._http = httpx.AsyncClient(timeout=10.0)
        self._tasks = TaskGroup("sandbox")
        self.capabilities = Capabilities(
            currencies=SANDBOX_CURRENCIES,
            flows=frozenset({Flow.DIRECT, Flow.REDIRECT}),
            refunds=settings.refunds,
            partial_refunds=settings.refunds,
            cancel=True,
            payment_methods=frozenset(tf.SCENARIOS),
            reconcile_after_seconds=settings.reconcile_after_seconds,
            action_ttl_seconds=settings.action_ttl_seconds,
            in_process=True,
            answer=self.answer,
        )
        self.payout_capabilities = self._payout_capabilities(SANDBOX_CURRENCIES)

    def is_configured(self, livemode: bool) -> bool:
        # Test mode only: a live key can never move money through a simulator.
        return not livemode

    @property
    def _secret(self) -> str:
        return self._settings.webhook_secret.get_secret_value()

    def _scenario(self, payment_method: str | None) -> tf.Scenario:
        scenario = tf.scenario_for(payment_method)
        # The API validates test values before calling us; an unknown one here is a bug upstream.
        assert scenario is not None, payment_method
        return scenario

    def _outcome_due(self, created_at: datetime) -> bool:
        elapsed = datetime.now(UTC).timestamp() - created_at.timestamp()
        return elapsed >= self._settings.action_delay_seconds

    async def _canceled(self, reference: str) -> bool:
        return bool(await self._redis.exists(f"sandbox:canceled:{reference}"))

    def answer(self, request: PaymentRequest) -> PaymentResult:
        """What create_payment answers (Capabilities.answer): the test value's scenario, nothing done."""
        scenario = self._scenario(request.payment_method)
        reference = tf.reference_for(request.payment_id)
        if scenario.immediate == "error":
            raise ProviderUnavailable("sandbox: simulated provider error (HTTP 500)", outage=True)
        if scenario.immediate == "timeout":
            raise ProviderTimedOut("sandbox: simulated provider timeout")
        next_action = None
        if scenario.immediate == "requires_action":
            next_action = {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": f"https://sandbox.gateway.invalid/authorize/{reference}",
                    "return_url": request.return_url,
                },
            }
        return tf.result(
            scenario, scenario.immediate, reference, request.amount, request.currency, next_action
        )

    async def create_payment(self, request: PaymentRequest) -> PaymentResult:
        result = self.answer(request)
        scenario = self._scenario(request.payment_method)
        if (
            result.status == "requires_action"
            and scenario.outcome is not None
            and self._settings.send_webhooks
        ):
            self._schedule_webhook(request, scenario, tf.reference_for(request.payment_id))
        return result

    async def fetch_payment(self, ref: PaymentRef) -> PaymentResult:
        scenario = self._scenario(ref.payment_method)
        reference = tf.reference_for(ref.payment_id)
        if await self._canceled(reference):
            return tf.result(scenario, "canceled", reference, ref.amount, ref.currency)
        if scenario.immediate == "requires_action" and (
            scenario.outcome is None or not self._outcome_due(ref.created_at)
        ):
            return tf.result(scenario, "requires_action", reference, ref.amount, ref.currency)
        assert scenario.outcome is not None
        return tf.result(scenario, scenario.outcome, reference, ref.amount, ref.currency)

    async def cancel_payment(self, ref: PaymentRef) -> PaymentResult:
        current = await self.fetch_payment(ref)
        if current.status != "requires_action":
            return current  # too late: the provider already settled it
        reference = tf.reference_for(ref.payment_id)
        await self._redis.set(f"sandbox:canceled:{reference}", "1", ex=30 * 86_400)
        return tf.result(self._scenario(ref.payment_method), "canceled", reference, ref.amount, ref.currency)

    async def refund_payment(self, request: RefundRequest) -> RefundResult:
        scenario = self._scenario(request.payment.payment_method)
        reference = tf.refund_reference_for(request.refund_id)
        currency = request.payment.currency
        outcome = tf.refund_outcome(scenario)
        if scenario.refund in ("succeeded", "failed"):
            return tf.refund_result(scenario, outcome, reference, request.amount, currency)
        payload = tf.refund_webhook_payload(
            event_id=f"sbevt_{reference}_{outcome}",
            refund_id=request.refund_id,
            reference=reference,
            payment_id=request.payment.payment_id,
            status=outcome,
            amount=request.amount,
            currency=currency,
            created=int(time.time()),
        )
        if scenario.refund == "webhook_first":
            # The provider's webhook reaches the gateway before the provider's API answers.
            await self._deliver(payload)
        elif self._settings.send_webhooks:
            self._tasks.spawn(self._deliver_after(payload, self._settings.action_delay_seconds), reference)
        return tf.refund_result(scenario, "pending", reference, request.amount, currency)

    async def fetch_refund(self, ref: RefundRef) -> RefundResult:
        scenario = self._scenario(ref.payment.payment_method)
        reference = tf.refund_reference_for(ref.refund_id)
        status = tf.refund_outcome(scenario)
        if scenario.refund in ("async_succeeded", "async_failed") and not self._outcome_due(ref.created_at):
            status = "pending"
        return tf.refund_result(scenario, status, reference, ref.amount, ref.payment.currency)

    def _schedule_webhook(self, request: PaymentRequest, scenario: tf.Scenario, reference: str) -> None:
        assert scenario.outcome is not None
        payload = tf.webhook_payload(
            event_id=f"sbevt_{reference}_{scenario.outcome}",
            payment_id=request.payment_id,
            reference=reference,
            status=scenario.outcome,
            amount=request.amount,
            currency=request.currency,
            scenario=scenario,
            created=int(time.time()),
        )
        elapsed = datetime.now(UTC).timestamp() - request.created_at.timestamp()
        delay = self._settings.action_delay_seconds - elapsed
        self._tasks.spawn(self._deliver_after(payload, delay, reference), reference)

    def _spawn_delivery(self, payload: dict[str, Any], delay: float, key: str) -> None:
        self._tasks.spawn(self._deliver_after(payload, delay), key)

    async def _deliver_after(
        self, payload: dict[str, Any], delay: float, canceled_ref: str | None = None
    ) -> None:
        await asyncio.sleep(max(delay, 0.0))
        if canceled_ref is not None and await self._canceled_when_redis_answers(canceled_ref):
            return
        await self._deliver(payload)

    async def _canceled_when_redis_answers(self, reference: str) -> bool:
        """Whether the payment was canceled meanwhile; through a Redis outage, asked again until
        Redis is back (as a provider's own queue would hold its notification), so the outcome is
        sent late rather than lost."""
        pause = 0.5
        while True:
            try:
                return await self._canceled(reference)
            except RedisError as e:
                if pause == 0.5:
                    log.warning(
                        "sandbox_webhook_waiting_for_redis", reference=reference, error=type(e).__name__
                    )
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)

    async def _deliver(self, payload: dict[str, Any]) -> None:
        body = orjson.dumps(payload)
        msg_id = f"msg_{payload['id']}"
        # Like a real provider, retry a few times; after that a sync (or the reconciler) resolves it.
        for attempt in range(5):
            ts = int(time.time())
            headers = {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": standard_webhook_signature(self._secret, msg_id, ts, body),
            }
            try:
                r = await self._http.post(self._webhook_url, content=body, headers=headers)
                if r.status_code < 300:
                    return
                log.warning("sandbox_webhook_rejected", status=r.status_code, attempt=attempt)
            except httpx.HTTPError as e:
                log.warning("sandbox_webhook_failed", error=type(e).__name__, attempt=attempt)
            await asyncio.sleep(0.5 * 2**attempt)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        msg_id = headers.get("webhook-id")
        ts = headers.get("webhook-timestamp")
        sig = headers.get("webhook-signature")
        if not (msg_id and ts and sig):
            raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
        if not verify_standard_webhook(self._secret, msg_id, ts, body, sig, now=int(time.time())):
            raise WebhookVerificationError("signature mismatch or timestamp outside tolerance")
        payload = json_object(body)
        return [tf.interpret(payload)]

    def interpret_webhook(self, payload: dict[str, Any]) -> WebhookEvent:
        return tf.interpret(payload)

    async def aclose(self) -> None:
        await self._tasks.aclose()
        await self._http.aclose()


# Every currency the sandbox takes has an ISO 4217 exponent (checked at import, not at request time).
assert CURRENCY_EXPONENTS.keys() >= SANDBOX_CURRENCIES
