"""Airtel Money Collections: USSD push, transaction enquiry, callbacks, refunds (docs/providers/airtel.md).

I/O only; bodies are shaped by transformers.py.

- One OAuth2 client-credentials token per application (`POST /auth/oauth2/token`), kept in the shared
  token cache (providers/tokens.py); Airtel's live three minutes. A 401 on a call drops the cached token
  and fetches a new one once.
- `transaction.id` is our payment id. Before a push is sent the first time a Redis marker records it;
  a retried create (the first one timed out) asks the enquiry first and sends nothing if Airtel knows
  the id. Without the marker (Redis flushed) it is sent again and Airtel refuses the duplicate id.
- Callbacks are hints: the path token is checked here (and the `hash`, when a callback key is set), and
  the gateway then asks the enquiry (capabilities.query_before_acting) and applies that answer.
  Neither the callback nor the enquiry names the amount, so a hash-checked callback is still not
  applied by itself: only the enquiry's word moves a payment.
- Refunds name Airtel's airtel_money_id (the payment's receipt) and nothing of ours: whole payments
  only, and a refund whose answer was lost is never re-sent (capabilities.idempotent_refunds False).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.providers import base as b
from gateway.providers.accounts import mode_name
from gateway.providers.airtel import payout_transformers as pt
from gateway.providers.airtel import transformers as tf
from gateway.providers.airtel.payouts import AirtelPayouts
from gateway.providers.airtel.settings import AirtelAccount, AirtelAccounts, AirtelSettings
from gateway.providers.http import Answer, HttpProvider, ProviderClient
from gateway.providers.payouts import PayoutRef, PayoutRequest, PayoutResult
from gateway.providers.tokens import TokenCache

log = structlog.get_logger("gateway.providers.airtel")

__all__ = ["SENT_KEY_PREFIX", "AirtelProvider", "NoTransactionYet"]

SENT_KEY_PREFIX = "airtel:sent:"
SENT_MARKER_SECONDS = 30 * 86_400
PAYMENTS_PATH = "/merchant/v1/payments/"
ENQUIRY_PATH = "/standard/v1/payments/"
REFUND_PATH = "/standard/v1/payments/refund"
TOKEN_PATH = "/auth/oauth2/token"


class NoTransactionYet(b.ProviderUnavailable):
    """Airtel does not know the transaction id (yet): the push never reached it, or is not stored yet."""


class AirtelProvider(HttpProvider[AirtelAccount]):
    name = "airtel"

    def __init__(
        self,
        settings: AirtelSettings,
        redis: Redis,
        callback_base_url: str,
        timeout_seconds: float,
        *,
        accounts: AirtelAccounts | None = None,
    ):
        super().__init__(accounts or settings.accounts(), ProviderClient(self.name, timeout_seconds))
        self._settings = settings
        self._redis = redis
        token = settings.callback_token.get_secret_value() if settings.callback_token else None
        self._callback_token = token or None
        hash_key = settings.callback_hash_key.get_secret_value() if settings.callback_hash_key else None
        self._hash_key = hash_key or None
        # Airtel's tokens live 180 s: kept 30 s short of that, not the cache's default five minutes.
        self._tokens = TokenCache(redis, lock_seconds=timeout_seconds * 2 + 5, refresh_margin_seconds=30)
        self.capabilities = b.Capabilities(
            currencies=settings.currencies(),
            flows=frozenset({b.Flow.MOBILE_PROMPT}),
            partial_refunds=False,
            # A USSD push cannot be withdrawn; it ends TF (timed out or expired) at Airtel.
            cancel=False,
            query_before_acting=True,
            idempotent_refunds=False,
            reconcile_after_seconds=settings.reconcile_after_seconds,
            action_ttl_seconds=settings.action_ttl_seconds,
            check_phone=self.phone_problem,
        )
        # The payout side (providers/payouts.py): disbursements, in payouts.py.
        self._payouts = AirtelPayouts(self)
        self.payout_capabilities = self._payouts.capabilities

    # --- configuration -----------------------------------------------------------------------------

    def _require(self, livemode: bool) -> AirtelAccount:
        account = self._accounts.get(livemode)
        if account is None:
            raise b.ProviderMisconfigured(f"airtel: no {mode_name(livemode)}-mode application is configured")
        return account

    def is_configured(self, livemode: bool) -> bool:
        return self._accounts.get(livemode) is not None

    def phone_problem(self, phone: str | None, livemode: bool) -> str | None:
        """Checked before a payment exists (a 422 invalid_phone): a payer this mode's country cannot take."""
        account = self._accounts.get(livemode)
        return tf.phone_problem(phone, account.country if account is not None else None)

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _fetch_token(self, account: AirtelAccount) -> tuple[str, int]:
        answer = await self._http.call(
            "POST",
            account.base_url + TOKEN_PATH,
            mode=account.mode,
            body={
                "client_id": account.client_id,
                "client_secret": account.client_secret,
                "grant_type": "client_credentials",
            },
            credentials_checked=False,
        )
        if answer.status in (400, 401, 403, 404):
            raise self._http.credentials_rejected(answer, account.mode, TOKEN_PATH, "client credentials")
        if answer.status != 200:
            raise b.ProviderUnavailable(f"airtel: POST {TOKEN_PATH} answered {answer.status}")
        try:
            return tf.access_token(answer.json())
        except tf.MalformedAnswer as e:
            raise b.ProviderUnavailable(f"airtel: {e}") from e

    async def _call(
        self,
        account: AirtelAccount,
        method: str,
        path: str,
        currency: str,
        *,
        body: dict[str, Any] | None = None,
        outages_checked: bool = True,
    ) -> Answer:
        """A call with the application's Bearer token and the market headers. Outages and timeouts
        raise; a token Airtel no longer takes is replaced once; any other answer comes back."""

        async def fetch() -> tuple[str, int]:
            return await self._fetch_token(account)

        for _ in (1, 2):
            token = await self._tokens.get(account.token_key, fetch)
            answer = await self._http.call(
                method,
                account.base_url + path,
                mode=account.mode,
                headers={
                    "Authorization": f"Bearer {token}",
                    "X-Country": account.country,
                    "X-Currency": currency,
                },
                body=body,
                credentials_checked=False,
                outages_checked=outages_checked,
            )
            if answer.status != 401:
                return answer
            await self._tokens.invalidate(account.token_key, token)
        raise self._http.credentials_rejected(answer, account.mode, path, "token")

    async def _first_send(self, transaction_id: str) -> bool:
        """Records that `transaction_id` is being pushed; False if it was before (this is a retry)."""
        try:
            return bool(
                await self._redis.set(SENT_KEY_PREFIX + transaction_id, "1", nx=True, ex=SENT_MARKER_SECONDS)
            )
        except RedisError as e:
            raise b.ProviderUnavailable(f"airtel: Redis is unavailable ({type(e).__name__})") from e

    # --- payments ------------------------------------------------------------------------------------

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        account = self._require(request.livemode)
        transaction_id = request.payment_id
        if request.currency not in account.currencies:
            # The mode's market does not hold this currency: nothing is sent.
            return b.PaymentResult(
                status="failed",
                provider_reference=transaction_id,
                failure_code="currency_not_supported",
                failure_message=f"Airtel Money ({account.country}) does not take {request.currency}.",
            )
        phone = request.customer.phone
        if not await self._first_send(transaction_id):
            # A retry: the first push may have reached Airtel although we never heard back.
            found = await self._enquire(account, transaction_id, request.currency, phone)
            if found is not None:
                log.info("airtel_payment_found", payment_id=transaction_id)
                return found
        r = await self._call(
            account,
            "POST",
            PAYMENTS_PATH,
            request.currency,
            body=tf.payment_body(request, account.country),
            outages_checked=False,
        )
        waiting = b.PaymentResult(
            status="requires_action",
            provider_reference=transaction_id,
            next_action=tf.prompt(phone, request.amount, request.currency),
        )
        if r.status == 429 or r.status == 503:
            raise b.ProviderUnavailable(f"airtel: POST {PAYMENTS_PATH} answered {r.status}")
        if r.status >= 500:
            # Airtel's 500s (ESB000001, ESB000004) are ambiguous: the push may exist.
            raise b.ProviderTimedOut(f"airtel: POST {PAYMENTS_PATH} answered {r.status}")
        if r.status == 404:
            raise b.ProviderMisconfigured(f"airtel: POST {PAYMENTS_PATH} answered 404 at {account.base_url}")
        data = r.json()
        success, code = tf.envelope(data)
        if tf.result_code(data) in tf.DUPLICATE_CODES:
            log.info("airtel_payment_duplicate", payment_id=transaction_id)
            found = await self._enquire(account, transaction_id, request.currency, phone)
            return found or waiting
        if code in tf.SIGNING_CODES:
            raise b.ProviderMisconfigured("airtel: the market requires message signing (x-signature)")
        if r.ok and success is not False:
            return waiting
        if code in tf.PENDING_CODES:
            return waiting
        log.warning("airtel_payment_refused", status=r.status, code=code, result=tf.result_code(data))
        refusal = tf.refused(code)
        return b.PaymentResult(
            status="failed",
            provider_reference=transaction_id,
            failure_code=refusal.failure_code,
            failure_message=refusal.failure_message,
        )

    async def _enquire(
        self, account: AirtelAccount, transaction_id: str, currency: str, phone: str | None
    ) -> b.PaymentResult | None:
        """The enquiry's answer; None when Airtel does not know the id."""
        path = ENQUIRY_PATH + transaction_id
        r = await self._call(account, "GET", path, currency)
        data = r.json()
        if r.status == 404 and not tf.transaction(data):
            return None
        if r.status not in (200, 400, 404):
            raise b.ProviderUnavailable(f"airtel: GET {ENQUIRY_PATH}… answered {r.status}")
        try:
            return tf.enquiry_result(data, transaction_id, phone)
        except tf.MalformedAnswer as e:
            log.error("airtel_enquiry_unreadable", payment_id=transaction_id, status=r.status, error=str(e))
            raise b.ProviderUnavailable(f"airtel: {e}") from e

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        account = self._require(ref.livemode)
        transaction_id = ref.provider_reference or ref.payment_id
        found = await self._enquire(account, transaction_id, ref.currency, ref.customer_phone)
        if found is not None:
            return found
        ttl = self.capabilities.action_ttl_seconds or 0
        if datetime.now(UTC) >= ref.created_at + timedelta(seconds=ttl):
            # Long past any answer: the push never reached Airtel, and nothing can come of it.
            return b.PaymentResult(
                status="failed",
                provider_reference=transaction_id,
                failure_code="request_not_received",
                failure_message="Airtel Money never received the payment request.",
            )
        raise NoTransactionYet(f"airtel does not know transaction {transaction_id} (yet)")

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        # Never called (capabilities.cancel is False): a USSD push can only lapse.
        return await self.fetch_payment(ref)

    # --- refunds -------------------------------------------------------------------------------------

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        payment = request.payment
        account = self._require(payment.livemode)
        if not payment.receipt:
            return b.refund_failed(
                "refund_not_possible", "Airtel Money named no airtel_money_id for the payment."
            )
        r = await self._call(
            account,
            "POST",
            REFUND_PATH,
            payment.currency,
            body=tf.refund_body(payment.receipt),
            outages_checked=False,
        )
        if r.status == 404 and not r.object():
            raise b.ProviderMisconfigured(f"airtel: POST {REFUND_PATH} answered 404 at {account.base_url}")
        if r.status >= 500 or r.status == 429:
            # Nothing says whether the money went back: the refund stays pending, and is not re-sent.
            log.warning("airtel_refund_unknown", refund_id=request.refund_id, status=r.status)
            return b.RefundResult(status="pending")
        result = tf.refund_result(r.json(), request.amount, payment.currency)
        if result.status == "failed":
            log.warning("airtel_refund_refused", refund_id=request.refund_id, status=r.status)
        return result

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        # Airtel documents no refund enquiry [U]: a refund with no answer waits for an operator.
        raise b.ProviderUnavailable("airtel: no refund enquiry; the refund's outcome must be checked by hand")

    # --- callbacks -----------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        b.check_callback_token(headers, self._callback_token, "Airtel")
        payload = b.json_object(body)
        if self._hash_key is not None:
            tf.check_hash(self._hash_key, payload)
        return [self.interpret_webhook(payload)]

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        found = payload.get("transaction")
        transaction_id = found.get("id") if isinstance(found, dict) else None
        if isinstance(transaction_id, str) and pt.is_payout(transaction_id):
            return pt.interpret_callback(payload)
        return tf.interpret(payload)

    # --- payouts (disbursements: payouts.py) ---------------------------------------------------------

    def payouts_configured(self, livemode: bool) -> bool:
        return self._payouts.configured(livemode)

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        return await self._payouts.create(request)

    async def fetch_payout(self, ref: PayoutRef) -> PayoutResult:
        return await self._payouts.fetch(ref)
