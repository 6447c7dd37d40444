"""MTN MoMo Collection: request to pay, status, callbacks; refunds through the Disbursement product.

I/O only; bodies are shaped by transformers.py (docs/providers/momo.md).

- Access tokens are per product (`POST /collection/token/`, `POST /disbursement/token/`), kept in the
  shared token cache (providers/tokens.py). A 401 on a call drops the cached token and fetches a new
  one once.
- The X-Reference-Id of a request to pay is uuid5(our payment id). Before it is sent the first time a
  Redis marker records it; a retried create (the first one timed out) asks the status GET first and
  sends nothing if MoMo knows the reference. Without the marker (Redis flushed) it is sent again,
  MoMo answers 409 for the duplicate reference, and the status GET answers instead.
- Callbacks are unsigned: the path token is checked here, and the gateway then asks the status GET
  (capabilities.query_before_acting) and applies that answer, never the callback's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.providers import base as b
from gateway.providers.accounts import mode_name
from gateway.providers.http import Answer, HttpProvider, ProviderClient
from gateway.providers.momo import payout_transformers as pt
from gateway.providers.momo import transformers as tf
from gateway.providers.momo.payouts import MomoPayouts
from gateway.providers.momo.settings import (
    COLLECTION,
    DISBURSEMENT,
    TOKEN_KEY_PREFIX,
    MomoAccounts,
    MomoCredentials,
    MomoSettings,
    Product,
)
from gateway.providers.payouts import PayoutRef, PayoutRequest, PayoutResult
from gateway.providers.tokens import TokenCache

log = structlog.get_logger("gateway.providers.momo")

__all__ = ["SENT_KEY_PREFIX", "TOKEN_KEY_PREFIX", "MomoProvider", "NoRequestYet"]

R = TypeVar("R")
SENT_KEY_PREFIX = "momo:sent:"
# How long the "already sent" marker of a reference is kept: far beyond any retry of a create.
SENT_MARKER_SECONDS = 30 * 86_400


class NoRequestYet(b.ProviderUnavailable):
    """MoMo does not know the reference (yet): the request to pay never reached it, or is not stored yet."""


class MomoProvider(HttpProvider[MomoCredentials]):
    name = "momo"

    def __init__(
        self,
        settings: MomoSettings,
        redis: Redis,
        callback_base_url: str,
        timeout_seconds: float,
        *,
        accounts: MomoAccounts | None = None,
    ):
        super().__init__(
            accounts or settings.accounts(),
            ProviderClient(self.name, timeout_seconds),
        )
        self._settings = settings
        self._redis = redis
        token = settings.callback_token.get_secret_value() if settings.callback_token else None
        self._callback_token = token or None
        # {public_url}/v1/webhooks/momo[/{account_id}]/{token}
        self._callback_url = f"{callback_base_url.rstrip('/')}/{token}" if token else None
        self._tokens = TokenCache(redis, lock_seconds=timeout_seconds * 2 + 5)
        refunds = any(self._product(DISBURSEMENT, live) is not None for live in (False, True))
        self.capabilities = b.Capabilities(
            currencies=frozenset(settings.currencies),
            flows=frozenset({b.Flow.MOBILE_PROMPT}),
            refunds=refunds,
            partial_refunds=refunds and settings.partial_refunds,
            # A request to pay cannot be withdrawn; it ends FAILED (EXPIRED) at MoMo [U].
            cancel=False,
            query_before_acting=True,
            reconcile_after_seconds=settings.reconcile_after_seconds,
            action_ttl_seconds=settings.action_ttl_seconds,
            check_phone=self.phone_problem,
        )
        # The payout side (providers/payouts.py): Disbursement transfers, in payouts.py.
        self._payouts = MomoPayouts(self)
        self.payout_capabilities = self._payouts.capabilities

    # --- configuration -----------------------------------------------------------------------------

    def _product(self, name: str, livemode: bool) -> Product | None:
        account = self._accounts.get(livemode)
        return account.product(name) if account is not None else None

    def _require(self, name: str, livemode: bool) -> Product:
        product = self._product(name, livemode)
        if product is None:
            mode = mode_name(livemode)
            raise b.ProviderMisconfigured(f"momo: the {name} product has no {mode}-mode credentials")
        return product

    def is_configured(self, livemode: bool) -> bool:
        return self._product(COLLECTION, livemode) is not None

    def phone_problem(self, phone: str | None, livemode: bool) -> str | None:
        """Checked before a payment exists (a 422 invalid_phone): a payer MoMo cannot take."""
        account = self._accounts.get(livemode)
        return tf.phone_problem(phone, account.target_environment if account is not None else None)

    # --- tokens --------------------------------------------------------------------------------------

    async def _fetch_token(self, product: Product) -> tuple[str, int]:
        path = f"/{product.name}/token/"
        answer = await self._http.call(
            "POST",
            product.base_url + path,
            mode=product.mode,
            headers={"Authorization": product.basic, "Ocp-Apim-Subscription-Key": product.subscription_key},
            credentials_checked=False,
        )
        if answer.status in (400, 401, 403, 404):
            raise self._http.credentials_rejected(answer, product.mode, path, f"{product.name} credentials")
        if answer.status != 200:
            raise b.ProviderUnavailable(f"momo: POST {path} answered {answer.status}")
        try:
            return tf.access_token(answer.json())
        except tf.MalformedAnswer as e:
            raise b.ProviderUnavailable(f"momo: {e}") from e

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _call(
        self,
        product: Product,
        method: str,
        path: str,
        *,
        reference: str | None = None,
        body: dict[str, Any] | None = None,
        callback: bool = False,
    ) -> Answer:
        """A call with the product's Bearer token. Outages and timeouts raise; a token MoMo no longer
        takes is replaced once; any other answer comes back for the caller to read."""
        fetch = functools.partial(self._fetch_token, product)
        for _ in (1, 2):
            token = await self._tokens.get(product.token_key, fetch)
            headers = {
                "Authorization": f"Bearer {token}",
                "X-Target-Environment": product.target_environment,
                "Ocp-Apim-Subscription-Key": product.subscription_key,
            }
            if reference is not None:
                headers["X-Reference-Id"] = reference
            if callback and self._callback_url is not None:
                headers["X-Callback-Url"] = self._callback_url
            answer = await self._http.call(
                method,
                product.base_url + path,
                mode=product.mode,
                headers=headers,
                body=body,
                credentials_checked=False,
            )
            if answer.status not in (401, 403):
                return answer
            await self._tokens.invalidate(product.token_key, token)
        raise self._http.credentials_rejected(answer, product.mode, path, f"{product.name} token")

    async def _first_send(self, reference: str) -> bool:
        """Records that `reference` is being sent; False if it was sent before (this is a retry)."""
        try:
            return bool(
                await self._redis.set(SENT_KEY_PREFIX + reference, "1", nx=True, ex=SENT_MARKER_SECONDS)
            )
        except RedisError as e:
            raise b.ProviderUnavailable(f"momo: Redis is unavailable ({type(e).__name__})") from e

    async def _status(
        self, product: Product, path: str, external_id: str, parse: Callable[[dict[str, Any]], R]
    ) -> R | None:
        """A status GET's body, parsed; None for 404 (MoMo does not know the reference)."""
        r = await self._call(product, "GET", path)
        if r.status == 404:
            return None
        data = r.json()
        if r.status != 200 or not isinstance(data, dict):
            raise b.ProviderUnavailable(f"momo: GET {path} answered {r.status} without a status body")
        named = data.get("externalId")
        if named is not None and named != external_id:
            # The reference is derived from our id: anything else is not our request.
            log.error("momo_reference_mismatch", path=path, external_id=str(named)[:100], ours=external_id)
            raise b.ProviderUnavailable(f"momo: GET {path} answered for another externalId")
        try:
            return parse(data)
        except tf.MalformedAnswer as e:
            raise b.ProviderUnavailable(f"momo: {e}") from e

    # --- payments ------------------------------------------------------------------------------------

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        product = self._require(COLLECTION, request.livemode)
        reference = tf.reference_id(request.payment_id)
        if not await self._first_send(reference):
            # A retry: the first attempt may have reached MoMo although we never heard back.
            found = await self._payment_status(product, reference, request.payment_id)
            if found is not None:
                log.info("momo_request_to_pay_found", payment_id=request.payment_id, reference=reference)
                return found
        r = await self._call(
            product,
            "POST",
            "/collection/v1_0/requesttopay",
            reference=reference,
            body=tf.request_to_pay_body(request),
            callback=True,
        )
        waiting = b.PaymentResult(
            status="requires_action",
            provider_reference=reference,
            next_action=tf.prompt(request.customer.phone, request.amount, request.currency),
        )
        if r.status == 409:
            # MoMo already has this reference [U: the duplicate answer]: that is our request to pay.
            log.info("momo_request_to_pay_duplicate", payment_id=request.payment_id, reference=reference)
            return await self._confirm(product, reference, request.payment_id, waiting, always=True)
        if 200 <= r.status < 300:
            return await self._confirm(product, reference, request.payment_id, waiting)
        if r.status == 404:
            raise b.ProviderMisconfigured(
                f"momo: POST /collection/v1_0/requesttopay answered 404 at {product.base_url}"
            )
        # 400 and the like: MoMo refused the request itself; nothing was created.
        code = tf.error_code(r.json())
        failure_code, message = tf.REASONS.get(
            code or "", ("payment_rejected", "MTN MoMo refused the request.")
        )
        log.warning("momo_request_to_pay_refused", status=r.status, error=code)
        return b.PaymentResult(
            status="failed", provider_reference=reference, failure_code=failure_code, failure_message=message
        )

    async def _confirm(
        self,
        product: Product,
        reference: str,
        payment_id: str,
        waiting: b.PaymentResult,
        *,
        always: bool = False,
    ) -> b.PaymentResult:
        """Right after MoMo took the request: its status now, so an immediate refusal is a decline.
        Any trouble asking leaves the payment waiting (the reconciler and callbacks carry on)."""
        if not (always or self._settings.confirm_after_create):
            return waiting
        try:
            found = await self._payment_status(product, reference, payment_id)
        except b.ProviderFailure as e:
            log.warning("momo_confirm_failed", payment_id=payment_id, error=str(e))
            return waiting
        if found is None or found.status == "requires_action":
            # Not stored yet, or waiting: keep the phone as the customer gave it and the amount we asked.
            return waiting
        return found

    async def _payment_status(
        self, product: Product, reference: str, payment_id: str
    ) -> b.PaymentResult | None:
        path = f"/collection/v1_0/requesttopay/{reference}"
        return await self._status(product, path, payment_id, lambda data: tf.payment_result(data, reference))

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        product = self._require(COLLECTION, ref.livemode)
        reference = ref.provider_reference or tf.reference_id(ref.payment_id)
        found = await self._payment_status(product, reference, ref.payment_id)
        if found is not None:
            return found
        ttl = self.capabilities.action_ttl_seconds or 0
        if datetime.now(UTC) >= ref.created_at + timedelta(seconds=ttl):
            # Long past any answer: the request to pay never reached MoMo, and nothing can come of it.
            return b.PaymentResult(
                status="failed",
                provider_reference=reference,
                failure_code="request_not_received",
                failure_message="MTN MoMo never received the request to pay.",
            )
        raise NoRequestYet(f"momo does not know request to pay {reference} (yet)")

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        # Never called (capabilities.cancel is False): a request to pay can only lapse.
        return await self.fetch_payment(ref)

    # --- refunds (Disbursement) ----------------------------------------------------------------------

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        payment = request.payment
        product = self._require(DISBURSEMENT, payment.livemode)
        reference = tf.refund_reference_id(request.refund_id)
        if not await self._first_send(reference):
            found = await self._refund_status(product, reference, request.refund_id)
            if found is not None:
                return found
        payment_reference = payment.provider_reference or tf.reference_id(payment.payment_id)
        # No X-Callback-Url: an unsigned refund callback is no ground for acting; the status GET is.
        r = await self._call(
            product,
            "POST",
            "/disbursement/v1_0/refund",
            reference=reference,
            body=tf.refund_body(request, payment_reference),
        )
        pending = b.RefundResult(status="pending", provider_reference=reference)
        if 200 <= r.status < 300 or r.status == 409:
            try:
                found = await self._refund_status(product, reference, request.refund_id)
            except b.ProviderFailure as e:
                log.warning("momo_refund_confirm_failed", refund_id=request.refund_id, error=str(e))
                return pending
            return found or pending
        if r.status == 404:
            raise b.ProviderMisconfigured(
                f"momo: POST /disbursement/v1_0/refund answered 404 at {product.base_url}"
            )
        code = tf.error_code(r.json())
        log.warning("momo_refund_refused", status=r.status, error=code)
        message = tf.REASONS.get(code or "", ("", "MTN MoMo refused the refund."))[1]
        return b.RefundResult(
            status="failed",
            provider_reference=reference,
            failure_code=tf.REFUND_FAILURE[0],
            failure_message=message,
        )

    async def _refund_status(self, product: Product, reference: str, refund_id: str) -> b.RefundResult | None:
        path = f"/disbursement/v1_0/refund/{reference}"
        return await self._status(product, path, refund_id, lambda data: tf.refund_result(data, reference))

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        product = self._require(DISBURSEMENT, ref.payment.livemode)
        reference = ref.provider_reference or tf.refund_reference_id(ref.refund_id)
        found = await self._refund_status(product, reference, ref.refund_id)
        if found is None:
            raise NoRequestYet(f"momo does not know refund {reference} (yet)")
        return found

    # --- callbacks -----------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        b.check_callback_token(headers, self._callback_token, "MoMo")
        return self._events(body)

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        external_id = payload.get("externalId")
        if isinstance(external_id, str) and pt.is_payout(external_id):
            return pt.interpret_callback(payload)
        return tf.interpret(payload)

    # --- payouts (Disbursement transfers: payouts.py) ------------------------------------------------

    def payouts_configured(self, livemode: bool) -> bool:
        return self._payouts.configured(livemode)

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        return await self._payouts.create(request)

    async def fetch_payout(self, ref: PayoutRef) -> PayoutResult:
        return await self._payouts.fetch(ref)
