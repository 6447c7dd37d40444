"""The one place that knows which providers exist; every call through it is counted and timed (the
log line and the metrics: gateway_provider_request_duration_seconds, gateway_provider_errors_total)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, TypeVar

import structlog

from gateway import metrics
from gateway.providers.base import (
    Capabilities,
    PaymentProvider,
    PaymentRef,
    PaymentRequest,
    PaymentResult,
    RefundRef,
    RefundRequest,
    RefundResult,
    WebhookEvent,
    remote_verifier,
)
from gateway.providers.payouts import (
    PayoutCapabilities,
    PayoutProvider,
    PayoutRef,
    PayoutRequest,
    PayoutResult,
    payout_side,
)

log = structlog.get_logger("gateway.providers")
R = TypeVar("R")


class _Instrumented:
    """Delegates to an adapter, counting calls per operation (exposed for operators and tests)."""

    def __init__(self, inner: PaymentProvider, calls: Counter[str]):
        self._inner = inner
        self._calls = calls
        self.name = inner.name
        self.capabilities: Capabilities = inner.capabilities

    async def _call(self, op: str, call: Awaitable[R]) -> R:
        self._calls[f"{self.name}.{op}"] += 1
        started = time.perf_counter()
        outcome = "error"
        error: str | None = None
        try:
            result = await call
            outcome = str(getattr(result, "status", "ok"))
            return result
        except Exception as e:
            outcome = error = type(e).__name__
            raise
        finally:
            elapsed = time.perf_counter() - started
            metrics.provider_call(self.name, op, elapsed, error)
            log.info("provider_call", provider=self.name, op=op, outcome=outcome, ms=round(elapsed * 1000, 1))

    def is_configured(self, livemode: bool) -> bool:
        return self._inner.is_configured(livemode)

    async def create_payment(self, request: PaymentRequest) -> PaymentResult:
        return await self._call("create_payment", self._inner.create_payment(request))

    async def fetch_payment(self, ref: PaymentRef) -> PaymentResult:
        return await self._call("fetch_payment", self._inner.fetch_payment(ref))

    async def cancel_payment(self, ref: PaymentRef) -> PaymentResult:
        return await self._call("cancel_payment", self._inner.cancel_payment(ref))

    async def refund_payment(self, request: RefundRequest) -> RefundResult:
        return await self._call("refund_payment", self._inner.refund_payment(request))

    async def fetch_refund(self, ref: RefundRef) -> RefundResult:
        return await self._call("fetch_refund", self._inner.fetch_refund(ref))

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        return self._inner.verify_webhook(headers, body)

    async def verify_webhook_async(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        """The adapter's own asynchronous verification where it has one (counted as a provider
        call: it asks the provider), else its verify_webhook."""
        if (remote := remote_verifier(self._inner)) is not None:
            return await self._call("verify_webhook", remote.verify_webhook_async(headers, body))
        return self._inner.verify_webhook(headers, body)

    def interpret_webhook(self, payload: dict[str, Any]) -> WebhookEvent:
        return self._inner.interpret_webhook(payload)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def payout_side(self) -> PayoutProvider | None:
        """The adapter's payout side, counted and timed like its payment calls; None if it pays nothing."""
        inner = payout_side(self._inner)
        return None if inner is None else _InstrumentedPayouts(self, inner)


class _InstrumentedPayouts:
    """The payout side of an instrumented adapter (providers/payouts.py)."""

    def __init__(self, outer: _Instrumented, inner: PayoutProvider):
        self._outer = outer
        self._inner = inner
        self.name = inner.name
        self.payout_capabilities: PayoutCapabilities = inner.payout_capabilities

    def payouts_configured(self, livemode: bool) -> bool:
        return self._inner.payouts_configured(livemode)

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        return await self._outer._call("create_payout", self._inner.create_payout(request))

    async def fetch_payout(self, ref: PayoutRef) -> PayoutResult:
        return await self._outer._call("fetch_payout", self._inner.fetch_payout(ref))


class ProviderRegistry:
    def __init__(self, providers: Iterable[PaymentProvider]):
        self.calls: Counter[str] = Counter()
        self._providers: dict[str, PaymentProvider] = {
            p.name: _Instrumented(p, self.calls) for p in providers
        }

    def get(self, name: str) -> PaymentProvider | None:
        return self._providers.get(name)

    def instrument(self, adapter: PaymentProvider) -> PaymentProvider:
        """Another adapter of a known provider (a merchant's own account), counted with the others."""
        return _Instrumented(adapter, self.calls)

    def names(self) -> list[str]:
        return sorted(self._providers)

    async def aclose(self) -> None:
        for p in self._providers.values():
            await p.aclose()
