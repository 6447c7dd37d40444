"""M-Pesa's payout side (providers/payouts.py): B2C, sent once, settled by its Result callback.

Mixed into MpesaProvider, which supplies the accounts, the OAuth'd POST and the callback URL. The
Result arrives at the same secret-token URL as STK callbacks and reversal results ({public
url}/v1/webhooks/mpesa/{token}); its token is its proof (Daraja signs nothing, and no status query
exists to confirm it by), so it is applied as it comes (payout_capabilities.query_before_acting is
False) and the reconciler, with nothing to ask, leaves a payout whose Result never came pending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.providers import base as b
from gateway.providers.accounts import mode_name
from gateway.providers.mpesa import b2c
from gateway.providers.mpesa import transformers as tf
from gateway.providers.mpesa.settings import Account, MpesaSettings
from gateway.providers.payouts import (
    MOBILE_MONEY,
    PayoutCapabilities,
    PayoutRef,
    PayoutRequest,
    PayoutResult,
    payout_failed,
)


class MpesaPayouts:
    if TYPE_CHECKING:
        _settings: MpesaSettings
        _timeout: float

        def _account(self, livemode: bool) -> Account | None: ...
        def _token(self) -> str | None: ...
        @property
        def _callback_url(self) -> str: ...
        async def _post(
            self, account: Account, path: str, body: dict[str, Any], *, seconds: float
        ) -> tuple[int, dict[str, Any]]: ...

    def _payout_capabilities(self) -> PayoutCapabilities:
        return PayoutCapabilities(
            currencies=frozenset({tf.CURRENCY}),
            destination_types=frozenset({MOBILE_MONEY}),
            amount_multiple_of=tf.KES,
            check_destination=b2c.check_destination,
            status_query=False,
            query_before_acting=False,
            reconcile_after_seconds=self._settings.reconcile_after_seconds,
        )

    def payouts_configured(self, livemode: bool) -> bool:
        account = self._account(livemode)
        return account is not None and account.b2c is not None and self._token() is not None

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        account = self._account(request.livemode)
        if account is None or account.b2c is None or self._token() is None:
            mode = mode_name(request.livemode)
            raise b.ProviderMisconfigured(
                f"mpesa: the {mode}-mode B2C shortcode, initiator or callback token is missing"
            )
        problem = tf.amount_problem(request.amount, request.currency)
        if problem is not None:
            return payout_failed(*problem)
        body = b2c.body(
            account.b2c, request, command_id=self._settings.b2c_command_id, result_url=self._callback_url
        )
        # One POST, never repeated here: a timeout or an unreadable answer leaves the payout pending.
        status, data = await self._post(account, b2c.B2C_PATH, body, seconds=self._timeout)
        result = b2c.answer_result(status, data)
        if result is None:
            raise b.ProviderUnavailable(f"mpesa: B2C answered {status} without a verdict")
        return result

    async def fetch_payout(self, ref: PayoutRef) -> PayoutResult:
        # Daraja has no synchronous B2C status: only the Result (at the ResultURL) settles a payout.
        return PayoutResult(status="pending", provider_reference=ref.provider_reference)
