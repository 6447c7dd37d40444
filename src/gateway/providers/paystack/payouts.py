"""Paystack's payout side: Transfers (providers/payouts.py), I/O only; bodies in payout_transformers.py
(docs/providers/payouts.md's rules, docs/providers/paystack.md "Payouts").

A payout is two calls, made once (create_payout is called at most once per payout):

1. `POST /transferrecipient`. Any failure here, a timeout included, fails the payout: no transfer
   was asked for, and none ever will be under its reference, so nothing can still move. A recipient
   is not cached: Paystack answers the existing record for an account it already holds, so making it
   again is harmless, and a deactivated recipient is never reused from a stale cache.
2. `POST /transfer` with `reference` = our payout id (+ the mode mark). Paystack keeps one transfer
   per reference; a timeout or 5xx here is raised (the answer is unknown) and fetch_payout asks
   `GET /transfer/verify/{reference}` instead of ever sending the transfer again.

An account with transfer OTPs enabled answers `status: "otp"`: the gateway never finalizes a transfer
with an OTP, so the payout fails at once with `transfers_otp_enabled` (Paystack abandons the transfer
after 30 minutes) and the error is logged for the operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from gateway.providers import base as b
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
from gateway.providers.paystack import payout_transformers as pt
from gateway.providers.paystack.transformers import UnexpectedAnswer, accepted, message_of

if TYPE_CHECKING:
    from gateway.providers.paystack.adapter import PaystackProvider
    from gateway.providers.paystack.settings import PaystackSettings

log = structlog.get_logger("gateway.providers.paystack")


class NoTransferYet(b.ProviderUnavailable):
    """Paystack does not know the transfer's reference (yet)."""


class PaystackPayouts:
    """The payout side of one PaystackProvider (same accounts and client)."""

    def __init__(self, adapter: PaystackProvider, settings: PaystackSettings):
        self._adapter = adapter
        self._recipient_types = dict(settings.transfer_recipient_types)
        self._mobile_money = frozenset(settings.transfer_mobile_money_currencies)
        self._operators = dict(settings.transfer_default_operators)
        self._not_found_after = settings.payout_not_found_after_seconds
        self.capabilities = PayoutCapabilities(
            currencies=frozenset(self._recipient_types) | self._mobile_money,
            destination_types=frozenset({MOBILE_MONEY, BANK_ACCOUNT}),
            check_destination=self.destination_problem,
            # transfer.* webhooks are signed with the secret key (HMAC-SHA512): proof, applied as sent.
            query_before_acting=False,
            reconcile_after_seconds=settings.payout_reconcile_after_seconds,
        )

    def configured(self, livemode: bool) -> bool:
        return self._adapter.is_configured(livemode)

    def destination_problem(
        self, destination: PayoutDestination, currency: str, livemode: bool
    ) -> tuple[str, str] | None:
        return pt.destination_problem(
            destination,
            currency,
            recipient_types=self._recipient_types,
            mobile_money_currencies=self._mobile_money,
            default_operators=self._operators,
        )

    async def _post(self, path: str, livemode: bool, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return await self._adapter._call("POST", path, livemode, body=body)

    async def create(self, request: PayoutRequest) -> PayoutResult:
        if not self._adapter.is_configured(request.livemode):
            raise b.ProviderMisconfigured("paystack: this mode has no secret key for transfers")
        problem = self.destination_problem(request.destination, request.currency, request.livemode)
        if problem is not None:  # asked before the payout existed; never sent if it slipped through
            return payout_failed(*problem)
        reference = pt.transfer_reference(request.payout_id, request.livemode)
        recipient = pt.recipient_body(
            request.destination,
            request.currency,
            recipient_types=self._recipient_types,
            default_operators=self._operators,
        )
        try:
            status, answer = await self._post("/transferrecipient", request.livemode, recipient)
        except (b.ProviderTimedOut, b.ProviderUnavailable) as e:
            # No transfer was asked for: the payout can fail for certain, and be made again.
            log.warning("paystack_recipient_unavailable", payout_id=request.payout_id, error=str(e))
            return payout_failed(
                "provider_unavailable",
                "Paystack could not be reached to register the recipient; nothing was sent.",
            )
        if not accepted(answer):  # whatever the HTTP status: no transfer was asked for
            log.warning("paystack_recipient_refused", status=status, reason=message_of(answer)[:200])
            return pt.transfer_refused(answer, "recipient")
        try:
            code = pt.recipient_code(answer)
        except UnexpectedAnswer as e:
            log.warning("paystack_unexpected_answer", op="transferrecipient", error=str(e))
            return payout_failed(
                "provider_unavailable", "Paystack's recipient answer was unreadable; nothing was sent."
            )
        # From here on the transfer may exist: an unknown answer is raised, never resent.
        status, answer = await self._post(
            "/transfer", request.livemode, pt.transfer_body(request, code, reference)
        )
        if accepted(answer):
            return self._read(answer.get("data"), reference, request.payout_id)
        if pt.has_marker(answer, pt.DUPLICATE_MARKERS):
            # Paystack already holds a transfer under our reference: that one is the payout.
            log.info("paystack_transfer_duplicate", payout_id=request.payout_id)
            return await self._verify(reference, request.livemode, request.payout_id) or PayoutResult(
                "pending"
            )
        if 200 <= status < 300:  # `status: false` in a 2xx: no verdict we can read
            raise b.ProviderUnavailable(f"paystack: transfer: status false in an HTTP {status} answer")
        log.warning("paystack_transfer_refused", status=status, reason=message_of(answer)[:200])
        return pt.transfer_refused(answer, "transfer")

    def _read(self, data: Any, reference: str, payout_id: str) -> PayoutResult:
        if not isinstance(data, dict):
            raise b.ProviderUnavailable("paystack: a transfer answer without data")
        try:
            result = pt.transfer_result(data, reference)
        except (UnexpectedAnswer, ValueError, KeyError) as e:
            log.warning("paystack_unexpected_answer", op="transfer", error=str(e))
            raise b.ProviderUnavailable(f"paystack: transfer: {e}") from e
        if result.failure_code == pt.OTP_REFUSED[0]:
            log.error("paystack_transfers_otp_enabled", payout_id=payout_id)
        return result

    async def _verify(self, reference: str, livemode: bool, payout_id: str) -> PayoutResult | None:
        """The transfer under our reference; None when Paystack has none."""
        status, answer = await self._adapter._call("GET", f"/transfer/verify/{reference}", livemode)
        if accepted(answer):
            return self._read(answer.get("data"), reference, payout_id)
        if status in (400, 404):  # "Transfer not found" [U: the exact status and text]
            return None
        raise b.ProviderUnavailable(f"paystack: verify transfer answered HTTP {status}")

    async def fetch(self, ref: PayoutRef) -> PayoutResult:
        reference = pt.transfer_reference(ref.payout_id, ref.livemode)
        found = await self._verify(reference, ref.livemode, ref.payout_id)
        if found is not None:
            return found
        return not_found(
            ref,
            self._not_found_after,
            "Paystack never received the transfer.",
            NoTransferYet(f"paystack does not know transfer {reference} (yet)"),
        )
