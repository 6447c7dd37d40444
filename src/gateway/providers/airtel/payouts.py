"""Airtel Money's payout side: disbursements (providers/payouts.py), I/O only.

Same application, token cache and market headers as collections (adapter.py); bodies are shaped by
payout_transformers.py (docs/providers/airtel.md, "Payouts").

create_payout is called once per payout, ever, and sends one POST: `transaction.id` is our payout id,
a duplicate answer (Airtel already holds that id) is read as "already created" and answered by the
status query, and a timeout, a 5xx or an ambiguous answer leaves the payout pending for the
reconciler, whose fetch_payout asks `GET /standard/v1/disbursements/{id}`. Nothing here ever sends a
disbursement twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from gateway.providers import base as b
from gateway.providers.accounts import mode_name
from gateway.providers.airtel import payout_transformers as pt
from gateway.providers.airtel.settings import AirtelAccount
from gateway.providers.airtel.transformers import MalformedAnswer
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
    from gateway.providers.airtel.adapter import AirtelProvider

log = structlog.get_logger("gateway.providers.airtel")

DISBURSE_PATH = "/standard/v1/disbursements/"


class NoDisbursementYet(b.ProviderUnavailable):
    """Airtel does not know the disbursement's id (yet)."""


class AirtelPayouts:
    """The payout side of one AirtelProvider (same accounts, client and token cache)."""

    def __init__(self, adapter: AirtelProvider):
        self._adapter = adapter
        settings = adapter._settings
        self._not_found_after = settings.payout_not_found_after_seconds
        self.capabilities = PayoutCapabilities(
            currencies=settings.currencies(),
            destination_types=frozenset({MOBILE_MONEY}),
            check_destination=self.destination_problem,
            # A callback (hash or not) names no amount: the status query is applied instead.
            query_before_acting=True,
            reconcile_after_seconds=settings.reconcile_after_seconds,
        )

    def _account(self, livemode: bool) -> AirtelAccount | None:
        account = self._adapter._accounts.get(livemode)
        return account if account is not None and account.disbursement_pin else None

    def _require(self, livemode: bool) -> tuple[AirtelAccount, str]:
        account = self._account(livemode)
        if account is None or account.disbursement_pin is None:
            raise b.ProviderMisconfigured(
                f"airtel: no {mode_name(livemode)}-mode disbursement PIN is configured"
            )
        return account, account.disbursement_pin

    def configured(self, livemode: bool) -> bool:
        return self._account(livemode) is not None

    def destination_problem(
        self, destination: PayoutDestination, currency: str, livemode: bool
    ) -> tuple[str, str] | None:
        account = self._adapter._accounts.get(livemode)
        problem = pt.destination_problem(destination, account.country if account else None)
        if problem is None and account is not None and currency not in account.currencies:
            # The mode's market holds one set of currencies; the API's 422 names the destination.
            return ("invalid_destination", f"Airtel Money ({account.country}) does not pay out {currency}.")
        return problem

    async def create(self, request: PayoutRequest) -> PayoutResult:
        account, pin = self._require(request.livemode)
        problem = self.destination_problem(request.destination, request.currency, request.livemode)
        if problem is not None:  # asked before the payout existed; never sent if it slipped through
            return payout_failed(*problem)
        payout_id = request.payout_id
        r = await self._adapter._call(
            account,
            "POST",
            DISBURSE_PATH,
            request.currency,
            body=pt.disbursement_body(request, pin),
            outages_checked=False,
        )
        pending = PayoutResult(status="pending", provider_reference=payout_id)
        if r.status >= 500 or r.status == 429:
            # Airtel's 5xx (ESB000001/ESB000004) say nothing: the disbursement may exist. Never resent.
            log.warning("airtel_disbursement_unknown", payout_id=payout_id, status=r.status)
            raise b.ProviderTimedOut(f"airtel: POST {DISBURSE_PATH} answered {r.status}")
        if r.status == 404 and not r.object():
            # The host has no such operation: nothing was created (the base URL is wrong).
            log.error("airtel_disbursement_not_found", base_url=account.base_url)
            return payout_failed(
                "provider_misconfigured", f"Airtel Money answered 404 for {DISBURSE_PATH} at its base URL."
            )
        try:
            found = pt.create_answer(r.json(), payout_id)
        except MalformedAnswer:
            return pending
        if found is None:
            log.info("airtel_disbursement_duplicate", payout_id=payout_id)
            try:
                return await self._status(account, payout_id, request.currency) or pending
            except b.ProviderFailure as e:
                log.warning("airtel_disbursement_confirm_failed", payout_id=payout_id, error=str(e))
                return pending
        if found.status == "failed":
            log.warning(
                "airtel_disbursement_refused", status=r.status, payout_id=payout_id, code=found.failure_code
            )
        return found

    async def _status(self, account: AirtelAccount, payout_id: str, currency: str) -> PayoutResult | None:
        """The status query's answer; None when Airtel does not know the id."""
        path = DISBURSE_PATH + payout_id
        r = await self._adapter._call(account, "GET", path, currency)
        if r.status not in (200, 400, 404):
            raise b.ProviderUnavailable(f"airtel: GET {DISBURSE_PATH}… answered {r.status}")
        data = r.json()
        if r.status == 404 and not r.object():
            return None
        try:
            return pt.fetch_answer(data, payout_id)
        except MalformedAnswer as e:
            log.error("airtel_disbursement_unreadable", payout_id=payout_id, status=r.status, error=str(e))
            raise b.ProviderUnavailable(f"airtel: {e}") from e

    async def fetch(self, ref: PayoutRef) -> PayoutResult:
        account, _ = self._require(ref.livemode)
        found = await self._status(account, ref.payout_id, ref.currency)
        if found is not None:
            return found
        # Long after it was sent Airtel still does not know it: it never arrived [U: how soon Airtel
        # stores a disbursement; GATEWAY_AIRTEL__PAYOUT_NOT_FOUND_AFTER_SECONDS says how long to wait].
        return not_found(
            ref,
            self._not_found_after,
            "Airtel Money never received the disbursement.",
            NoDisbursementYet(f"airtel does not know disbursement {ref.payout_id} (yet)"),
        )
