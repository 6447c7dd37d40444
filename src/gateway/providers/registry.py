"""The one place that knows which providers exist; every call through it is counted and timed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from gateway.providers.base import (
    Capabilities,
    PaymentProvider,
    PaymentRef,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    WebhookEvent,
)

log = structlog.get_logger("gateway.providers")


class _Instrumented:
    """Delegates to an adapter, counting calls per operation (exposed for operators and tests)."""

    def __init__(self, inner: PaymentProvider, calls: Counter[str]):
        self._inner = inner
        self._calls = calls
        self.name = inner.name
        self.capabilities: Capabilities = inner.capabilities

    def _count(self, op: str) -> float:
        self._calls[f"{self.name}.{op}"] += 1
        return time.perf_counter()

    def _done(self, op: str, started: float, outcome: str) -> None:
        log.info(
            "provider_call",
            provider=self.name,
            op=op,
            outcome=outcome,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def is_configured(self, livemode: bool) -> bool:
        return self._inner.is_configured(livemode)

    async def create_payment(self, request: PaymentRequest) -> PaymentResult:
        t = self._count("create_payment")
        try:
            r = await self._inner.create_payment(request)
        except Exception as e:
            self._done("create_payment", t, type(e).__name__)
            raise
        self._done("create_payment", t, r.status)
        return r

    async def fetch_payment(self, ref: PaymentRef) -> PaymentResult:
        t = self._count("fetch_payment")
        try:
            r = await self._inner.fetch_payment(ref)
        except Exception as e:
            self._done("fetch_payment", t, type(e).__name__)
            raise
        self._done("fetch_payment", t, r.status)
        return r

    async def cancel_payment(self, ref: PaymentRef) -> PaymentResult:
        t = self._count("cancel_payment")
        try:
            r = await self._inner.cancel_payment(ref)
        except Exception as e:
            self._done("cancel_payment", t, type(e).__name__)
            raise
        self._done("cancel_payment", t, r.status)
        return r

    async def refund_payment(self, request: RefundRequest) -> RefundResult:
        t = self._count("refund_payment")
        try:
            r = await self._inner.refund_payment(request)
        except Exception as e:
            self._done("refund_payment", t, type(e).__name__)
            raise
        self._done("refund_payment", t, r.status)
        return r

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        return self._inner.verify_webhook(headers, body)

    def interpret_webhook(self, payload: dict[str, Any]) -> WebhookEvent:
        return self._inner.interpret_webhook(payload)

    async def aclose(self) -> None:
        await self._inner.aclose()


class ProviderRegistry:
    def __init__(self, providers: Iterable[PaymentProvider]):
        self.calls: Counter[str] = Counter()
        self._providers: dict[str, PaymentProvider] = {
            p.name: _Instrumented(p, self.calls) for p in providers
        }

    def get(self, name: str) -> PaymentProvider | None:
        return self._providers.get(name)

    def names(self) -> list[str]:
        return sorted(self._providers)

    async def aclose(self) -> None:
        for p in self._providers.values():
            await p.aclose()
