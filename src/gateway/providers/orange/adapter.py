"""Orange Money Web Payment: token, web payment, transaction status, notifications.

I/O only; bodies are shaped by transformers.py (docs/providers/orange.md).

- The access token (`POST /oauth/v3/token`, Basic client_id:client_secret, form body) is kept in the
  shared token cache (providers/tokens.py); a 401 drops it and fetches a new one once.
- Our payment id (attempt key) is the `order_id`; the notif_url names it in its path
  (/v1/webhooks/orange[/{account}]/{order_id}), since Orange's notification body does not.
- The answer's pay_token (the status query needs it) and the digest of its notif_token go to the
  payment's private data (PaymentResult.private), never to a response, an event or a log. The
  payment_url the customer is sent to is Orange's page and is the one place Orange itself shows it.
- A notification proves itself only by its notif_token, checked against the payment's digest as it
  arrives (capabilities.check_notification: a mismatch is a 401 and nothing moves); even then it is
  a hint: the gateway asks the transaction status (capabilities.query_before_acting) and applies that.
- WebPay has no refund and no cancel API [U]: refunds are declared unsupported, and an unpaid web
  payment lapses at Orange (EXPIRED) or here (action_ttl_seconds).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis

from gateway.providers import base as b
from gateway.providers.accounts import mode_name
from gateway.providers.http import Answer, HttpProvider, ProviderClient
from gateway.providers.orange import transformers as tf
from gateway.providers.orange.settings import OrangeAccounts, OrangeCredentials, OrangeSettings
from gateway.providers.tokens import TokenCache

log = structlog.get_logger("gateway.providers.orange")

WEBPAYMENT, STATUS = "webpayment", "transactionstatus"
NO_REFUNDS = "Orange Money Web Payment has no refund API: return the money outside the gateway."


class NoPayTokenYet(b.ProviderUnavailable):
    """Orange's answer to the web payment never reached us: nothing can be asked about it yet."""


class OrangeProvider(HttpProvider[OrangeCredentials]):
    name = "orange"

    def __init__(
        self,
        settings: OrangeSettings,
        redis: Redis,
        notif_base_url: str,
        timeout_seconds: float,
        *,
        accounts: OrangeAccounts | None = None,
    ):
        super().__init__(accounts or settings.accounts(), ProviderClient(self.name, timeout_seconds))
        self._settings = settings
        # {public_url}/v1/webhooks/orange[/{account_id}]: each payment's notif_url adds its order id.
        self._notif_base_url = notif_base_url.rstrip("/")
        self._tokens = TokenCache(redis, lock_seconds=timeout_seconds * 2 + 5)
        self._ttl = timedelta(seconds=settings.action_ttl_seconds)
        self.capabilities = b.Capabilities(
            currencies=frozenset(settings.currencies),
            flows=frozenset({b.Flow.REDIRECT}),
            refunds=False,
            partial_refunds=False,
            cancel=False,
            query_before_acting=True,
            check_notification=tf.notification_authentic,
            reconcile_after_seconds=settings.reconcile_after_seconds,
            action_ttl_seconds=settings.action_ttl_seconds,
        )

    # --- configuration -----------------------------------------------------------------------------

    def is_configured(self, livemode: bool) -> bool:
        account = self._accounts.get(livemode)
        return account is not None and account.complete

    def _account(self, livemode: bool) -> OrangeCredentials:
        account = self._accounts.get(livemode)
        if account is None or not account.complete:
            raise b.ProviderMisconfigured(
                f"orange: no complete {mode_name(livemode)}-mode account is configured"
            )
        return account

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _fetch_token(self, account: OrangeCredentials, mode: str) -> tuple[str, int]:
        url = self._settings.token_url
        answer = await self._http.call(
            "POST",
            url,
            mode=mode,
            headers={"Authorization": account.basic},
            form={"grant_type": "client_credentials"},
            credentials_checked=False,
        )
        if answer.status in (400, 401, 403):
            raise self._http.credentials_rejected(
                answer, mode, self._settings.token_path, "client id and secret"
            )
        if not answer.ok:
            raise b.ProviderUnavailable(f"orange: POST {self._settings.token_path} answered {answer.status}")
        try:
            return tf.access_token(answer.json())
        except tf.MalformedAnswer as e:
            raise b.ProviderUnavailable(f"orange: {e}") from e

    async def _call(self, livemode: bool, operation: str, body: dict[str, Any]) -> Answer:
        """A WebPay call with the mode's Bearer token. Outages and timeouts raise; a token Orange no
        longer takes is replaced once; any other answer comes back for the caller to read."""
        account, mode = self._account(livemode), mode_name(livemode)
        assert account.country is not None
        key = account.token_key(mode, self._settings.token_url)
        fetch = functools.partial(self._fetch_token, account, mode)
        url = self._settings.api_url(account.country, operation)
        for _ in (1, 2):
            token = await self._tokens.get(key, fetch)
            answer = await self._http.call(
                "POST",
                url,
                mode=mode,
                headers={"Authorization": f"Bearer {token}"},
                body=body,
                credentials_checked=False,
            )
            if answer.status != 401:
                return answer
            await self._tokens.invalidate(key, token)
        raise self._http.credentials_rejected(answer, mode, operation, "access token")

    def _amount(self, amount: int, currency: str) -> Any:
        return tf.amount_value(amount, currency, self._settings.amount_unit)

    # --- payments ------------------------------------------------------------------------------------

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        account = self._account(request.livemode)
        assert account.merchant_key is not None
        return_url = request.return_url or self._settings.default_return_url or None
        if return_url is None:
            return b.payment_failed(
                "return_url_required",
                "Orange Money's payment page needs a return_url (its return_url and cancel_url) to send "
                "the customer back to.",
            )
        body = tf.webpayment_body(
            request,
            merchant_key=account.merchant_key,
            currency=account.currency or request.currency,
            amount=self._amount(request.amount, request.currency),
            lang=self._settings.lang,
            return_url=return_url,
            notif_url=f"{self._notif_base_url}/{request.payment_id}",
        )
        answer = await self._call(request.livemode, WEBPAYMENT, body)
        if answer.ok:
            try:
                return tf.opened(answer.json(), return_url)
            except tf.MalformedAnswer as e:
                raise b.ProviderUnavailable(f"orange: {e}") from e
        if answer.status == 404:
            raise b.ProviderMisconfigured(
                f"orange: POST {WEBPAYMENT} answered 404 (is the country segment right?)"
            )
        # 400/403 and the like: Orange refused the web payment itself (its checks, an order_id it has
        # seen before [U]); no payment page exists, so nothing can be paid.
        message = tf.error_message(answer.json())
        log.warning("orange_webpayment_refused", status=answer.status, payment_id=request.payment_id)
        return b.payment_failed(
            tf.REJECTED, message or f"Orange Money refused the payment ({answer.status})."
        )

    def _expired(self, ref: b.PaymentRef) -> bool:
        return datetime.now(UTC) >= ref.created_at + self._ttl

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        pay_token = (ref.private or {}).get(tf.PAY_TOKEN)
        if not isinstance(pay_token, str):
            if self._expired(ref):
                # Orange's answer never reached us: its payment page (whose address only that answer
                # carried) was never shown, so nothing can have been paid.
                return b.payment_failed(
                    "provider_session_missing", "Orange Money's payment page never reached the customer."
                )
            raise NoPayTokenYet(
                f"orange: no pay_token for {ref.payment_id}: its web payment's answer never came"
            )
        body = tf.status_body(ref.payment_id, self._amount(ref.amount, ref.currency), pay_token)
        answer = await self._call(ref.livemode, STATUS, body)
        if not answer.ok:
            raise b.ProviderUnavailable(f"orange: POST {STATUS} answered {answer.status}")
        try:
            return tf.status_result(answer.json(), ref.payment_id)
        except tf.MalformedAnswer as e:
            raise b.ProviderUnavailable(f"orange: {e}") from e

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        # Never called (capabilities.cancel is False): a web payment can only lapse.
        return await self.fetch_payment(ref)

    # --- refunds (none in WebPay) --------------------------------------------------------------------

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        # Never called (capabilities.refunds is False: a refund is a 422 refund_not_supported).
        return b.refund_failed("refund_not_supported", NO_REFUNDS)

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        return b.refund_failed("refund_not_supported", NO_REFUNDS)

    # --- notifications -------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        """The order id from the notif_url's path and the notif_token from the body; whether the token
        is the payment's is checked by the gateway against what the payment keeps (check_notification)."""
        order_id = headers.get(b.CALLBACK_TOKEN_HEADER)
        if not order_id:
            raise b.WebhookVerificationError(
                "the notification URL names no order (…/v1/webhooks/orange/{order_id})"
            )
        payload, token = tf.stored_payload(b.json_object(body), order_id)
        return [replace(tf.interpret(payload), proof=token)]

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        return tf.interpret(payload)
