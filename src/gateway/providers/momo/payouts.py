"""MTN MoMo's payout side: Disbursement transfers (providers/payouts.py), I/O only.

The transfer goes through the Disbursement product, with its own subscription key, API user and key
and its own token (`POST /disbursement/token/`), exactly as refunds do; bodies are shaped by
payout_transformers.py (docs/providers/momo.md, "Payouts").

create_payout is called once per payout, ever: the X-Reference-Id is uuid5(our payout id), a 409
(MoMo already holds that reference) is read as "already created" and answered by the status GET,
and a timeout or a 5xx is raised for the reconciler, whose fetch_payout asks
`GET /disbursement/v1_0/transfer/{referenceId}`. Nothing here ever sends a transfer twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from gateway.providers import base as b
from gateway.providers.momo import payout_transformers as pt
from gateway.providers.momo.settings import DISBURSEMENT, Product
from gateway.providers.momo.transformers import error_code
from gateway.providers.payouts import (
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
    from gateway.providers.momo.adapter import MomoProvider

log = structlog.get_logger("gateway.providers.momo")

TRANSFER_PATH = "/disbursement/v1_0/transfer"


class NoTransferYet(b.ProviderUnavailable):
    """MoMo does not know the transfer's reference (yet)."""


class MomoPayouts:
    """The payout side of one MomoProvider (same accounts, client and token cache)."""

    def __init__(self, adapter: MomoProvider):
        self._adapter = adapter
        settings = adapter._settings
        self._not_found_after = settings.payout_not_found_after_seconds
        self.capabilities = PayoutCapabilities(
            currencies=frozenset(settings.currencies),
            destination_types=frozenset({MOBILE_MONEY}),
            check_destination=self.destination_problem,
            # An unsigned callback at a static URL proves nothing: the status GET is applied instead.
            query_before_acting=True,
            reconcile_after_seconds=settings.reconcile_after_seconds,
        )

    def configured(self, livemode: bool) -> bool:
        return self._adapter._product(DISBURSEMENT, livemode) is not None

    def destination_problem(
        self, destination: PayoutDestination, currency: str, livemode: bool
    ) -> tuple[str, str] | None:
        account = self._adapter._accounts.get(livemode)
        return pt.destination_problem(destination, account.target_environment if account else None)

    async def create(self, request: PayoutRequest) -> PayoutResult:
        product = self._adapter._require(DISBURSEMENT, request.livemode)
        problem = self.destination_problem(request.destination, request.currency, request.livemode)
        if problem is not None:  # asked before the payout existed; never sent if it slipped through
            return payout_failed(*problem)
        reference = pt.payout_reference_id(request.payout_id)
        r = await self._adapter._call(
            product, "POST", TRANSFER_PATH, reference=reference, body=pt.transfer_body(request), callback=True
        )
        pending = PayoutResult(status="pending", provider_reference=reference)
        if 200 <= r.status < 300 or r.status == 409:
            # 202 Accepted, or 409 RESOURCE_ALREADY_EXIST: MoMo holds a transfer under our reference.
            # Its status now turns an immediate refusal (unknown payee) into a failed payout at once.
            if r.status == 409:
                log.info("momo_transfer_duplicate", payout_id=request.payout_id, reference=reference)
            elif not self._adapter._settings.confirm_after_create:
                return pending
            try:
                found = await self._status(product, reference, request.payout_id)
            except b.ProviderFailure as e:
                log.warning("momo_transfer_confirm_failed", payout_id=request.payout_id, error=str(e))
                return pending
            return found or pending
        if r.status == 404:
            # The host has no such operation: nothing was created (the base URL is wrong).
            log.error("momo_transfer_not_found", base_url=product.base_url)
            return payout_failed(
                "provider_misconfigured", f"MTN MoMo answered 404 for {TRANSFER_PATH} at its base URL."
            )
        code = error_code(r.json())
        log.warning("momo_transfer_refused", status=r.status, error=code, payout_id=request.payout_id)
        failure_code, message = pt.refused(r.json())
        return PayoutResult(
            status="failed", provider_reference=reference, failure_code=failure_code, failure_message=message
        )

    async def _status(self, product: Product, reference: str, payout_id: str) -> PayoutResult | None:
        path = f"{TRANSFER_PATH}/{reference}"
        return await self._adapter._status(
            product, path, payout_id, lambda data: pt.payout_result(data, reference)
        )

    async def fetch(self, ref: PayoutRef) -> PayoutResult:
        product = self._adapter._require(DISBURSEMENT, ref.livemode)
        reference = ref.provider_reference or pt.payout_reference_id(ref.payout_id)
        found = await self._status(product, reference, ref.payout_id)
        if found is not None:
            return found
        # MoMo stores a transfer before it answers 202: one it still does not know long after was never
        # received, and nothing can come of it.
        return not_found(
            ref,
            self._not_found_after,
            "MTN MoMo never received the transfer.",
            NoTransferYet(f"momo does not know transfer {reference} (yet)"),
        )
