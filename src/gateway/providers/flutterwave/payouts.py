"""Flutterwave's payout side: v3 Transfers (providers/payouts.py), I/O only; bodies in
payout_transformers.py (docs/providers/flutterwave.md, "Payouts").

create_payout is called at most once per payout: `POST /v3/transfers` with `reference` = our payout
id. A timeout or 5xx is raised (the transfer may exist) and fetch_payout finds it again, by
Flutterwave's id once known (`GET /v3/transfers/{id}`), else by our reference
(`GET /v3/transfers?reference=…`); it is never sent twice. Transfer webhooks (`transfer.completed`)
prove nothing by themselves (a static `verif-hash`), so the gateway asks that GET before acting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from gateway.providers import base as b
from gateway.providers.flutterwave import payout_transformers as pt
from gateway.providers.flutterwave.transformers import MalformedAnswer
from gateway.providers.payouts import (
    BANK_ACCOUNT,
    MOBILE_MONEY,
    PayoutCapabilities,
    PayoutDestination,
    PayoutRef,
    PayoutRequest,
    PayoutResult,
    not_found,
    payout_failed,
)

if TYPE_CHECKING:
    from gateway.providers.flutterwave.adapter import FlutterwaveProvider
    from gateway.providers.flutterwave.settings import FlutterwaveSettings

log = structlog.get_logger("gateway.providers.flutterwave")


class NoTransferYet(b.ProviderUnavailable):
    """Flutterwave has no transfer under the payout's reference (yet)."""


class FlutterwavePayouts:
    """The payout side of one FlutterwaveProvider (same accounts and client)."""

    def __init__(self, adapter: FlutterwaveProvider, settings: FlutterwaveSettings):
        self._adapter = adapter
        self._operators = dict(settings.transfer_default_operators)
        self._not_found_after = settings.payout_not_found_after_seconds
        self.capabilities = PayoutCapabilities(
            currencies=frozenset(settings.transfer_currencies),
            destination_types=frozenset({MOBILE_MONEY, BANK_ACCOUNT}),
            check_destination=self.destination_problem,
            query_before_acting=True,
            reconcile_after_seconds=settings.payout_reconcile_after_seconds,
        )

    def configured(self, livemode: bool) -> bool:
        return self._adapter.is_configured(livemode)

    def destination_problem(
        self, destination: PayoutDestination, currency: str, livemode: bool
    ) -> tuple[str, str] | None:
        return pt.destination_problem(destination, currency, default_operators=self._operators)

    def _sender(self, livemode: bool) -> dict[str, str] | None:
        account = self._adapter._accounts.get(livemode)
        if account is None:
            return None
        values = {
            "sender": account.transfer_sender,
            "sender_country": account.transfer_sender_country,
            "mobile_number": account.transfer_sender_mobile,
        }
        return {k: v for k, v in values.items() if v} or None

    async def create(self, request: PayoutRequest) -> PayoutResult:
        if not self._adapter.is_configured(request.livemode):
            raise b.ProviderMisconfigured("flutterwave: this mode has no secret key for transfers")
        problem = self.destination_problem(request.destination, request.currency, request.livemode)
        if problem is not None:  # asked before the payout existed; never sent if it slipped through
            return payout_failed(*problem)
        body = pt.transfer_body(
            request, default_operators=self._operators, sender=self._sender(request.livemode)
        )
        status, answer = await self._adapter._call("POST", "/v3/transfers", request.livemode, body=body)
        if status < 300 and answer.ok and isinstance(answer.data, dict):
            return self._read(answer.data, request.payout_id)
        if 400 <= status < 500 or not answer.ok:
            if pt.has_marker(answer.message, pt.DUPLICATE_MARKERS):
                # Flutterwave already holds a transfer under our reference: that one is the payout.
                log.info("flutterwave_transfer_duplicate", payout_id=request.payout_id)
                found = await self._by_reference(request.payout_id, request.livemode)
                return found or PayoutResult("pending")
            log.warning("flutterwave_transfer_refused", status=status, reason=answer.message[:200])
            return pt.transfer_refused(answer.message)
        raise b.ProviderUnavailable(f"flutterwave: POST /v3/transfers answered {status}")

    def _read(self, data: dict[str, Any], payout_id: str) -> PayoutResult:
        try:
            return pt.transfer_result(data, payout_id)
        except MalformedAnswer as e:
            log.warning("flutterwave_unexpected_answer", op="transfer", error=str(e))
            raise b.ProviderUnavailable(f"flutterwave: transfer: {e}") from e

    async def _by_reference(self, payout_id: str, livemode: bool) -> PayoutResult | None:
        # [P] the list endpoint filtered by our reference (many integrations use it; not in v3's docs).
        status, answer = await self._adapter._call(
            "GET", "/v3/transfers", livemode, params={"reference": payout_id}
        )
        if status < 300 and answer.ok and isinstance(answer.data, list):
            mine = [t for t in answer.data if isinstance(t, dict) and t.get("reference") == payout_id]
            return self._read(mine[0], payout_id) if mine else None
        raise b.ProviderUnavailable(f"flutterwave: GET /v3/transfers?reference answered {status}")

    async def fetch(self, ref: PayoutRef) -> PayoutResult:
        ident = ref.provider_reference
        if ident is not None and ident.isdigit():
            status, answer = await self._adapter._call("GET", f"/v3/transfers/{ident}", ref.livemode)
            if status < 300 and answer.ok and isinstance(answer.data, dict):
                return self._read(answer.data, ref.payout_id)
            raise b.ProviderUnavailable(f"flutterwave: GET /v3/transfers/{ident} answered {status}")
        found = await self._by_reference(ref.payout_id, ref.livemode)
        if found is not None:
            return found
        return not_found(
            ref,
            self._not_found_after,
            "Flutterwave never received the transfer.",
            NoTransferYet(f"flutterwave has no transfer under reference {ref.payout_id} (yet)"),
        )
