"""Flutterwave v3: hosted checkout (`POST /v3/payments`), saved-card charges, verify, refunds, webhooks.

I/O only; every body in and out is shaped by transformers.py. One shared httpx client, with the
gateway's provider timeout and connection limits, closed in aclose(). Our payment id is the
`tx_ref`, so a create retried after a timeout re-sends the same reference and a sync can find the
payment by it before Flutterwave's transaction id is known (docs/providers/flutterwave.md).
Webhooks prove nothing by themselves (a static `verif-hash`, or an HMAC keyed with that same hash):
a charge event makes the gateway verify the transaction, and a refund event is stored and left to
the reconciler's `GET /v3/refunds/{id}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Unpack

import structlog

from gateway.providers import base as b
from gateway.providers.flutterwave import payout_transformers as pt
from gateway.providers.flutterwave import transformers as tf
from gateway.providers.flutterwave.payouts import FlutterwavePayouts
from gateway.providers.flutterwave.settings import (
    FlutterwaveAccounts,
    FlutterwaveCredentials,
    FlutterwaveSettings,
)
from gateway.providers.http import HttpProvider, ProviderClient, RequestOptions
from gateway.providers.payouts import PayoutRef, PayoutRequest, PayoutResult

# Where the webhook's signature is checked; re-exported for the tests and drivers that sign.
webhook_signature = tf.webhook_signature

log = structlog.get_logger("gateway.providers.flutterwave")

# How long the hosted link stays payable (`session_duration`, minutes, at most 1440), and the grace
# after it for a last-second payment's webhook or verify to arrive before the payment expires.
SESSION_DURATION_MINUTES = 60
EXPIRY_GRACE_SECONDS = 600
# The merchant's country, which /v3/tokenized-charges requires [U: the account's country].
MERCHANT_COUNTRY = "NG"


class NoTransactionYet(b.ProviderUnavailable):
    """Flutterwave has no transaction for the tx_ref: the customer has not paid (or even opened the link)."""


class FlutterwaveProvider(HttpProvider[FlutterwaveCredentials]):
    name = "flutterwave"

    def __init__(
        self,
        settings: FlutterwaveSettings,
        timeout_seconds: float,
        *,
        accounts: FlutterwaveAccounts | None = None,
        currencies: frozenset[str] = tf.CURRENCIES,
        session_duration_minutes: int = SESSION_DURATION_MINUTES,
        merchant_country: str = MERCHANT_COUNTRY,
        default_redirect_url: str | None = None,
    ):
        if not 1 <= session_duration_minutes <= 1440:
            raise ValueError("session_duration_minutes must be 1 to 1440 (Flutterwave's maximum)")
        self._session_minutes = session_duration_minutes
        self._country = merchant_country
        self._default_redirect_url = default_redirect_url
        self._payable_for = timedelta(minutes=session_duration_minutes, seconds=EXPIRY_GRACE_SECONDS)
        # Paths carry /v3; a base URL written as docs/providers/flutterwave.md does (".../v3") works too.
        http = ProviderClient(
            self.name, timeout_seconds, base_url=settings.base_url.rstrip("/").removesuffix("/v3")
        )
        super().__init__(accounts or settings.accounts(), http)
        self.capabilities = b.Capabilities(
            currencies=currencies,
            flows=frozenset({b.Flow.REDIRECT, b.Flow.DIRECT}),
            refunds=True,
            partial_refunds=True,
            # v3 has no way to close a hosted link [U]; it lapses after session_duration instead.
            cancel=False,
            action_ttl_seconds=self._payable_for.total_seconds(),
            # The refund endpoint takes no idempotency key: a refund whose answer was lost is not resent.
            idempotent_refunds=False,
            # Neither webhook header proves an outcome (docs/providers/flutterwave.md, "Callbacks: proof
            # or hint"): a charge event only says "look", and the verify answer is what is applied.
            query_before_acting=True,
        )
        # The payout side (providers/payouts.py): v3 Transfers, in payouts.py.
        self._payouts = FlutterwavePayouts(self, settings)
        self.payout_capabilities = self._payouts.capabilities

    # --- configuration -----------------------------------------------------------------------------

    def bearer_token(self, account: FlutterwaveCredentials) -> str | None:
        return account.secret_key

    def _secret_hashes(self) -> list[str]:
        return [a.secret_hash for _, a in self._accounts.configured() if a.secret_hash is not None]

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, livemode: bool, **options: Unpack[RequestOptions]
    ) -> tuple[int, tf.Envelope]:
        """One request; outages, timeouts and credential problems become ProviderFailures. 2xx and
        4xx answers come back for the caller to read (a 4xx is often Flutterwave's final word)."""
        answer = await self._request(method, path, livemode, **options)
        try:
            return answer.status, tf.envelope(answer.json())
        except tf.MalformedAnswer as e:
            raise b.ProviderUnavailable(
                f"flutterwave: {method} {path} answered {answer.status} without a JSON envelope"
            ) from e

    # --- payments ------------------------------------------------------------------------------------

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        if not request.customer.email:
            return b.payment_failed(
                "customer_email_required", "Flutterwave needs the customer's email address."
            )
        method = request.payment_method
        if method is not None and method.startswith(tf.TOKEN_PREFIX):
            return await self._charge_token(request, method)
        redirect_url = request.return_url or self._default_redirect_url
        if redirect_url is None:
            return b.payment_failed(
                "return_url_required", "Flutterwave's checkout needs a return_url to send the customer to."
            )
        body = tf.hosted_payment_body(
            request,
            redirect_url=redirect_url,
            session_duration_minutes=self._session_minutes,
            payment_options=method,
        )
        status, answer = await self._call("POST", "/v3/payments", livemode=request.livemode, body=body)
        if status < 300 and answer.ok:
            try:
                return tf.hosted_link_result(answer.data, request.return_url)
            except tf.MalformedAnswer as e:
                raise b.ProviderUnavailable(f"flutterwave: {e}") from e
        if 400 <= status < 500 or not answer.ok:
            # Flutterwave refused the request itself (its validation); no link exists to pay through.
            return b.payment_failed("payment_rejected", answer.message or "Flutterwave refused the payment.")
        raise b.ProviderUnavailable(f"flutterwave: POST /v3/payments answered {status}")

    async def _charge_token(self, request: b.PaymentRequest, token: str) -> b.PaymentResult:
        redirect_url = request.return_url or self._default_redirect_url
        body = tf.tokenized_charge_body(request, token, country=self._country, redirect_url=redirect_url)
        status, answer = await self._call(
            "POST", "/v3/tokenized-charges", livemode=request.livemode, body=body
        )
        data = answer.data
        if isinstance(data, dict) and isinstance(data.get("status"), str) and data["status"] in tf.STATUSES:
            return self._checked(data, request.payment_id, request.return_url)
        if 400 <= status < 500 or not answer.ok:
            reason = answer.message or "Flutterwave declined the charge."
            return b.payment_failed(tf.decline_code(reason), reason)
        raise b.ProviderUnavailable(f"flutterwave: tokenized charge answered {status} without a transaction")

    def _checked(
        self, data: Mapping[str, Any], payment_id: str, return_url: str | None = None
    ) -> b.PaymentResult:
        """A transaction is ours only if it names our tx_ref; its amount is checked by the state machine."""
        if data.get("tx_ref") != payment_id:
            log.error(
                "flutterwave_transaction_mismatch",
                payment_id=payment_id,
                tx_ref=str(data.get("tx_ref"))[:100],
                transaction_id=tf.transaction_id(data),
            )
            raise b.ProviderUnavailable("flutterwave answered with a transaction for another tx_ref")
        try:
            return tf.transaction_result(data, return_url)
        except tf.MalformedAnswer as e:
            raise b.ProviderUnavailable(f"flutterwave: {e}") from e

    async def _verify(self, ref: b.PaymentRef) -> dict[str, Any] | None:
        """The transaction: by Flutterwave's id once we know it, else by our tx_ref. None: none yet."""
        reference = ref.provider_reference
        if reference is not None and reference.isdigit():
            status, answer = await self._call(
                "GET", f"/v3/transactions/{reference}/verify", livemode=ref.livemode
            )
        else:
            status, answer = await self._call(
                "GET",
                "/v3/transactions/verify_by_reference",
                livemode=ref.livemode,
                params={"tx_ref": ref.payment_id},
            )
        if status < 300 and answer.ok and isinstance(answer.data, dict):
            return answer.data
        if 400 <= status < 500 and answer.data is None:
            # `{"status": "error", "message": "No transaction was found for this id", "data": null}`
            return None
        raise b.ProviderUnavailable(f"flutterwave: verify answered {status}: {answer.message[:200]}")

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        data = await self._verify(ref)
        if data is not None:
            return self._checked(data, ref.payment_id)
        if datetime.now(UTC) >= ref.created_at + self._payable_for:
            # The link lapsed and nobody paid through it: nothing can arrive any more.
            return b.PaymentResult(status="expired")
        raise NoTransactionYet(
            f"flutterwave has no transaction for tx_ref {ref.payment_id} yet: the customer has not paid"
        )

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        # Never called (capabilities.cancel is False): a hosted link cannot be closed, only lapse.
        return await self.fetch_payment(ref)

    # --- refunds -------------------------------------------------------------------------------------

    async def _transaction_id(self, ref: b.PaymentRef) -> str:
        data = await self._verify(ref)
        if data is None:
            raise b.ProviderUnavailable(f"flutterwave has no transaction for tx_ref {ref.payment_id}")
        result = self._checked(data, ref.payment_id)
        if result.status != "succeeded" or result.provider_reference is None:
            raise b.ProviderUnavailable("flutterwave's transaction for this payment is not successful")
        return result.provider_reference

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        payment = request.payment
        reference = payment.provider_reference
        if reference is not None and reference.isdigit():
            tx_id = reference
        else:  # the success came without Flutterwave's id (never expected): look it up by tx_ref
            tx_id = await self._transaction_id(payment)
        status, answer = await self._call(
            "POST",
            f"/v3/transactions/{tx_id}/refund",
            livemode=payment.livemode,
            body=tf.refund_body(request.amount, payment.currency),
        )
        if status < 300 and answer.ok and isinstance(answer.data, dict):
            try:
                return tf.refund_result(answer.data, payment.currency)
            except tf.MalformedAnswer as e:
                raise b.ProviderUnavailable(f"flutterwave: {e}") from e
        if 400 <= status < 500:
            return b.RefundResult(
                status="failed",
                failure_code=tf.REFUND_FAILURE_CODE,
                failure_message=answer.message or "Flutterwave refused the refund.",
            )
        raise b.ProviderUnavailable(f"flutterwave: refund answered {status}")

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        reference = ref.provider_reference
        if reference is None or not reference.isdigit():
            # The refund's answer was lost: v3 offers no lookup by our id [U], so an operator must look.
            raise b.ProviderUnavailable(f"flutterwave: refund {ref.refund_id} has no Flutterwave id to ask")
        status, answer = await self._call("GET", f"/v3/refunds/{reference}", livemode=ref.payment.livemode)
        if status < 300 and answer.ok and isinstance(answer.data, dict):
            try:
                return tf.refund_result(answer.data, ref.payment.currency)
            except tf.MalformedAnswer as e:
                raise b.ProviderUnavailable(f"flutterwave: {e}") from e
        raise b.ProviderUnavailable(f"flutterwave: GET /v3/refunds/{reference} answered {status}")

    # --- webhooks ------------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        hashes = self._secret_hashes()
        if not hashes:
            raise b.WebhookVerificationError("no Flutterwave secret hash is configured")
        if not tf.webhook_authentic(headers, body, hashes):
            raise b.WebhookVerificationError("verif-hash or flutterwave-signature does not match")
        return self._events(body)

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        if pt.is_transfer_event(payload):
            return pt.interpret_transfer(payload)
        return tf.interpret(payload)

    # --- payouts (v3 Transfers: payouts.py) ----------------------------------------------------------

    def payouts_configured(self, livemode: bool) -> bool:
        return self._payouts.configured(livemode)

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        return await self._payouts.create(request)

    async def fetch_payout(self, ref: PayoutRef) -> PayoutResult:
        return await self._payouts.fetch(ref)
