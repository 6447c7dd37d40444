"""The sandbox's payout side (providers/payouts.py): test mode only, deterministic, no network but
its own signed webhooks. The scenario follows from the destination (payout_values.py) and the time
since submission, so every replica answers alike."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gateway.providers.base import ProviderTimedOut, ProviderUnavailable
from gateway.providers.payouts import (
    BANK_ACCOUNT,
    MOBILE_MONEY,
    PayoutCapabilities,
    PayoutRef,
    PayoutRequest,
    PayoutResult,
)
from gateway.providers.sandbox import payout_values as pv
from gateway.providers.sandbox.settings import SandboxSettings


class SandboxPayouts:
    """Mixed into SandboxProvider, which supplies the settings, the task group and the delivery."""

    _settings: SandboxSettings

    def _payout_capabilities(self, currencies: frozenset[str]) -> PayoutCapabilities:
        return PayoutCapabilities(
            currencies=currencies,
            destination_types=frozenset({MOBILE_MONEY, BANK_ACCOUNT}),
            reconcile_after_seconds=self._settings.reconcile_after_seconds,
        )

    def payouts_configured(self, livemode: bool) -> bool:
        return not livemode  # a live key never pays out through a simulator

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        scenario = pv.payout_scenario(request.destination)
        reference = pv.payout_reference_for(request.payout_id)
        if scenario.immediate == "error":
            raise ProviderUnavailable("sandbox: simulated provider error (HTTP 500)")
        if scenario.immediate == "timeout":
            raise ProviderTimedOut("sandbox: simulated provider timeout")
        if scenario.immediate == "pending" and scenario.outcome is not None and self._settings.send_webhooks:
            payload = pv.payout_webhook_payload(
                event_id=f"sbevt_{reference}_{scenario.outcome}",
                payout_id=request.payout_id,
                reference=reference,
                scenario=scenario,
                status=scenario.outcome,
                amount=request.amount,
                currency=request.currency,
                created=int(time.time()),
            )
            self._spawn_delivery(payload, self._settings.action_delay_seconds, reference)
        return pv.payout_result(scenario, scenario.immediate, reference)

    async def fetch_payout(self, ref: PayoutRef) -> PayoutResult:
        scenario = pv.payout_scenario(ref.destination)
        reference = pv.payout_reference_for(ref.payout_id)
        started = ref.submitted_at or ref.created_at
        due = datetime.now(UTC).timestamp() - started.timestamp() >= self._settings.action_delay_seconds
        if scenario.outcome is None or (scenario.immediate == "pending" and not due):
            return pv.payout_result(scenario, "pending", reference)
        return pv.payout_result(scenario, scenario.outcome, reference)

    def _spawn_delivery(self, payload: dict[str, Any], delay: float, key: str) -> None:
        raise NotImplementedError  # SandboxProvider's
