"""PayPal Orders v2 over one shared httpx client (docs/providers/paypal.md).

- An OAuth client-credentials token per REST app, kept in the shared token cache (providers/tokens.py);
  a 401 drops it and fetches a new one once.
- Create: `POST /v2/checkout/orders` (intent CAPTURE, our id as reference_id and custom_id) with
  `PayPal-Request-Id` derived from our id: a retried create, or a status query after a create whose
  answer was lost, is answered with the same order. The payer approves on PayPal (the order's
  payer-action link: the redirect).
- Approval moves no money: the gateway captures (`POST /v2/checkout/orders/{id}/capture`, its own
  PayPal-Request-Id derived from our id, so a capture is never doubled) whenever it finds the order
  APPROVED: after a CHECKOUT.ORDER.APPROVED webhook (payment events are hints, the gateway reads the
  order: capabilities.query_before_acting), on sync and in the reconciler.
- Refunds: `POST /v2/payments/captures/{capture_id}/refund` with PayPal-Request-Id = our refund id.
- Webhooks prove nothing by themselves: PayPal is asked (`POST /v1/notifications/verify-webhook-signature`)
  before anything is stored (verify_webhook_async, base.RemotelyVerified).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
import structlog
from redis.asyncio import Redis

from gateway.providers import base as b
from gateway.providers.accounts import mode_name
from gateway.providers.http import Answer, HttpProvider, ProviderClient
from gateway.providers.paypal import transformers as tf
from gateway.providers.paypal.settings import PaypalAccounts, PaypalCredentials, PaypalSettings
from gateway.providers.tokens import TokenCache

log = structlog.get_logger("gateway.providers.paypal")

# The delivery's headers verify-webhook-signature takes, and the names it takes them by.
WEBHOOK_HEADERS = {
    "paypal-auth-algo": "auth_algo",
    "paypal-cert-url": "cert_url",
    "paypal-transmission-id": "transmission_id",
    "paypal-transmission-sig": "transmission_sig",
    "paypal-transmission-time": "transmission_time",
}
VERIFY_PATH = "/v1/notifications/verify-webhook-signature"


class PaypalProvider(HttpProvider[PaypalCredentials]):
    name = "paypal"

    def __init__(
        self,
        settings: PaypalSettings,
        redis: Redis,
        timeout_seconds: float,
        *,
        accounts: PaypalAccounts | None = None,
    ):
        super().__init__(accounts or settings.accounts(), ProviderClient(self.name, timeout_seconds))
        self._settings = settings
        self._zero = frozenset(settings.zero_decimal_currencies)
        self._tokens = TokenCache(redis, lock_seconds=timeout_seconds * 2 + 5)
        self.capabilities = b.Capabilities(
            currencies=frozenset(settings.currencies),
            flows=frozenset({b.Flow.REDIRECT}),
            refunds=True,
            partial_refunds=True,
            # Orders v2 has no call to withdraw an unapproved CAPTURE order; it lapses at PayPal. A
            # cancel racing a capture could take money for a canceled payment, so none is offered.
            cancel=False,
            query_before_acting=True,
            reconcile_after_seconds=settings.reconcile_after_seconds,
            action_ttl_seconds=settings.action_ttl_seconds,
        )

    # --- configuration -----------------------------------------------------------------------------

    def is_configured(self, livemode: bool) -> bool:
        return self._accounts.get(livemode) is not None

    def _account(self, livemode: bool) -> PaypalCredentials:
        account = self._accounts.get(livemode)
        if account is None:
            raise b.ProviderMisconfigured(f"paypal: no {mode_name(livemode)}-mode client id and secret")
        return account

    # --- HTTP --------------------------------------------------------------------------------------

    async def _fetch_token(self, account: PaypalCredentials, mode: str) -> tuple[str, int]:
        path = "/v1/oauth2/token"
        answer = await self._http.call(
            "POST",
            account.base_url + path,
            mode=mode,
            headers={"Authorization": account.basic},
            form={"grant_type": "client_credentials"},
            credentials_checked=False,
        )
        if answer.status in (400, 401, 403):  # invalid_client: the operator's to fix
            raise self._http.credentials_rejected(answer, mode, path, "client id and secret")
        data = answer.object() or {}
        token, lifetime = data.get("access_token"), data.get("expires_in")
        if answer.status != 200 or not isinstance(token, str) or not isinstance(lifetime, int):
            raise b.ProviderUnavailable(f"paypal: POST {path} answered {answer.status} without a token")
        return token, lifetime

    async def _call(
        self,
        livemode: bool,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Answer:
        """One call with the app's Bearer token. Outages and timeouts raise; a token PayPal no longer
        takes is replaced once; any other answer comes back for the caller to read."""
        account, mode = self._account(livemode), mode_name(livemode)
        fetch = functools.partial(self._fetch_token, account, mode)
        for _ in (1, 2):
            token = await self._tokens.get(account.token_key, fetch)
            headers = {"Authorization": f"Bearer {token}"}
            if request_id is not None:
                headers["PayPal-Request-Id"] = request_id
            if method == "POST":
                headers["Prefer"] = "return=representation"
            answer = await self._http.call(
                method,
                account.base_url + path,
                mode=mode,
                headers=headers,
                body=body,
                credentials_checked=False,
            )
            if answer.status == 403:  # NOT_AUTHORIZED: the app lacks a permission
                raise self._http.credentials_rejected(answer, mode, path)
            if answer.status != 401:
                return answer
            await self._tokens.invalidate(account.token_key, token)
        raise self._http.credentials_rejected(answer, mode, path, "access token")

    def _object(self, answer: Answer, what: str) -> dict[str, Any]:
        data = answer.object()
        if data is None:
            raise b.ProviderUnavailable(f"paypal: {what} answered HTTP {answer.status}, not a JSON object")
        return data

    def _unexpected(self, op: str, e: Exception) -> b.ProviderUnavailable:
        log.warning("paypal_unexpected_answer", op=op, error=str(e))
        return b.ProviderUnavailable(f"paypal: {op}: {e}")

    # --- payments ----------------------------------------------------------------------------------

    def _order_body(self, request: b.PaymentRequest) -> dict[str, Any]:
        return tf.order_body(request, self._zero, self._settings.brand_name)

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        try:
            body = self._order_body(request)
        except tf.UnsupportedAmount as e:  # refused before any request
            return b.payment_failed("amount_not_supported", str(e))
        answer = await self._post_order(request.livemode, request.idempotency_key, body)
        if not answer.ok:
            issue = tf.error_issue(answer.json()) or f"HTTP {answer.status}"
            log.warning("paypal_order_refused", status=answer.status, issue=issue)
            return b.payment_failed("payment_rejected", f"PayPal refused the order ({issue}).")
        order = self._object(answer, "create order")
        return await self._settle(order, request.payment_id, request.livemode, request.return_url)

    async def _post_order(self, livemode: bool, key: str, body: dict[str, Any]) -> Answer:
        answer = await self._call(
            livemode, "POST", "/v2/checkout/orders", body=body, request_id=tf.request_id(key, "create")
        )
        if 400 <= answer.status < 500 and answer.status not in (400, 422):
            raise b.ProviderUnavailable(f"paypal: POST /v2/checkout/orders answered {answer.status}")
        return answer

    async def _settle(
        self, order: Mapping[str, Any], key: str, livemode: bool, return_url: str | None = None
    ) -> b.PaymentResult:
        """An order in our terms; an APPROVED one is captured first (the payer said yes)."""
        try:
            named = tf.custom_id(order)
            if named is not None and named != key:
                raise tf.UnexpectedAnswer(f"the order names {named!r}, not {key!r}")
            if tf.order_status(order) == "APPROVED":
                return await self._capture(order, key, livemode)
            return tf.order_result(order, return_url)
        except tf.UnexpectedAnswer as e:
            raise self._unexpected("order", e) from e

    async def _capture(self, order: Mapping[str, Any], key: str, livemode: bool) -> b.PaymentResult:
        order_id = str(order["id"])
        path = f"/v2/checkout/orders/{order_id}/capture"
        answer = await self._call(livemode, "POST", path, body={}, request_id=tf.request_id(key, "capture"))
        if answer.ok:
            log.info("paypal_order_captured", payment_id=key, order_id=order_id)
            return tf.order_result(self._object(answer, "capture"), None)
        issue = tf.error_issue(answer.json())
        if answer.status == 422 and issue == "INSTRUMENT_DECLINED":
            # The payer's funding source refused: nothing was taken, and the gateway never captures
            # this order again (the payment fails; a new attempt makes a new order).
            log.info("paypal_capture_declined", payment_id=key, order_id=order_id)
            return b.PaymentResult(
                status="failed",
                provider_reference=order_id,
                failure_code="payment_declined",
                failure_message="PayPal: the payer's funding source declined the payment.",
            )
        if answer.status == 422:
            # ORDER_ALREADY_CAPTURED (another worker's capture won), ORDER_NOT_APPROVED, ...: where
            # the order stands now is the answer.
            log.info("paypal_capture_refused", payment_id=key, order_id=order_id, issue=issue)
            fresh = await self._get_order(order_id, livemode)
            if fresh is None or tf.order_status(fresh) == "APPROVED":
                raise b.ProviderUnavailable(f"paypal: capture of {order_id} refused ({issue})")
            return tf.order_result(fresh, None)
        raise b.ProviderUnavailable(f"paypal: POST {path} answered {answer.status} ({issue})")

    async def _get_order(self, order_id: str, livemode: bool) -> dict[str, Any] | None:
        """The order; None when PayPal does not know it (404)."""
        path = f"/v2/checkout/orders/{order_id}"
        answer = await self._call(livemode, "GET", path)
        if answer.status == 404:
            return None
        if not answer.ok:
            raise b.ProviderUnavailable(f"paypal: GET {path} answered {answer.status}")
        return self._object(answer, "get order")

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        if ref.provider_reference is None:
            # The create's answer was lost: the same request (same PayPal-Request-Id) is answered
            # with the order it made, or makes it now if it never arrived.
            request = b.PaymentRequest(
                payment_id=ref.payment_id,
                amount=ref.amount,
                currency=ref.currency,
                livemode=ref.livemode,
                created_at=ref.created_at,
            )
            answer = await self._post_order(ref.livemode, ref.payment_id, self._order_body(request))
            if not answer.ok:
                raise b.ProviderUnavailable(f"paypal: replayed create answered {answer.status}")
            # A replay repeats the first answer, as it was then [P]: where the order stands now is
            # read next.
            order_id = self._object(answer, "create order").get("id")
            if not isinstance(order_id, str):
                raise b.ProviderUnavailable("paypal: replayed create answered without an order id")
            ref = dataclasses.replace(ref, provider_reference=order_id)
        assert ref.provider_reference is not None
        order = await self._get_order(ref.provider_reference, ref.livemode)
        if order is None:
            ttl = self.capabilities.action_ttl_seconds or 0
            if datetime.now(UTC) >= ref.created_at + timedelta(seconds=ttl):
                return b.payment_failed("order_expired", "PayPal no longer knows the order.")
            raise b.ProviderUnavailable(f"paypal: order {ref.provider_reference} not found")
        return await self._settle(order, ref.payment_id, ref.livemode)

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        # Never called (capabilities.cancel is False): report where the payment stands.
        return await self.fetch_payment(ref)

    # --- refunds -----------------------------------------------------------------------------------

    async def _capture_id(self, payment: b.PaymentRef) -> str:
        if payment.provider_reference is None:
            raise b.ProviderUnavailable("paypal: the payment has no order to refund")
        order = await self._get_order(payment.provider_reference, payment.livemode)
        try:
            capture = tf.capture_of(order) if order is not None else None
        except tf.UnexpectedAnswer as e:
            raise self._unexpected("refund", e) from e
        capture_id = capture.get("id") if capture is not None else None
        if not isinstance(capture_id, str):
            raise b.ProviderUnavailable(f"paypal: order {payment.provider_reference} has no capture")
        return capture_id

    async def _post_refund(self, refund_id: str, payment: b.PaymentRef, amount: int) -> b.RefundResult:
        try:
            body = tf.refund_body(refund_id, amount, payment.currency, self._zero, None)
        except tf.UnsupportedAmount as e:
            return b.refund_failed("amount_not_supported", str(e))
        capture_id = await self._capture_id(payment)
        path = f"/v2/payments/captures/{capture_id}/refund"
        answer = await self._call(
            payment.livemode, "POST", path, body=body, request_id=tf.request_id(refund_id, "refund")
        )
        if answer.ok:
            try:
                return tf.refund_result(self._object(answer, "refund"), payment.currency)
            except tf.UnexpectedAnswer as e:
                raise self._unexpected("refund", e) from e
        if answer.status in (400, 422):
            issue = tf.error_issue(answer.json()) or f"HTTP {answer.status}"
            log.warning("paypal_refund_refused", refund_id=refund_id, issue=issue)
            return b.refund_failed("refund_declined", f"PayPal refused the refund ({issue}).")
        raise b.ProviderUnavailable(f"paypal: POST {path} answered {answer.status}")

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        return await self._post_refund(request.refund_id, request.payment, request.amount)

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        if ref.provider_reference is None:
            # The refund's answer was lost: the same request (same PayPal-Request-Id) is answered
            # with the refund it made, never a second one.
            return await self._post_refund(ref.refund_id, ref.payment, ref.amount)
        path = f"/v2/payments/refunds/{ref.provider_reference}"
        answer = await self._call(ref.payment.livemode, "GET", path)
        if not answer.ok:
            raise b.ProviderUnavailable(f"paypal: GET {path} answered {answer.status}")
        try:
            return tf.refund_result(self._object(answer, "get refund"), ref.payment.currency)
        except tf.UnexpectedAnswer as e:
            raise self._unexpected("get refund", e) from e

    # --- webhooks ----------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        # Nothing here can prove a delivery: only PayPal can (verify_webhook_async). Fail closed.
        raise b.WebhookVerificationError("PayPal webhooks are verified by asking PayPal")

    async def verify_webhook_async(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        given = {field: b.header(headers, name) for name, field in WEBHOOK_HEADERS.items()}
        missing = [name for name, field in WEBHOOK_HEADERS.items() if not given[field]]
        if missing:
            raise b.WebhookVerificationError("missing " + ", ".join(missing))
        payload = b.json_object(body)
        accounts = [(live, a) for live, a in self._accounts.configured() if a.webhook_id]
        if not accounts:
            raise b.WebhookVerificationError("no PayPal webhook_id is configured")
        # The sandbox's certificates live on its own host: ask that mode's app first.
        sandbox = "sandbox" in (urlsplit(given["cert_url"] or "").hostname or "")
        accounts.sort(key=lambda pair: pair[0] == sandbox)
        for livemode, account in accounts:
            if await self._verified(livemode, account, given, body):
                return [self.interpret_webhook(payload)]
        raise b.WebhookVerificationError("PayPal did not verify the delivery")

    async def _verified(
        self, livemode: bool, account: PaypalCredentials, given: dict[str, str | None], body: bytes
    ) -> bool:
        # The event goes back byte for byte (an orjson Fragment): a re-serialised body may not verify.
        request = {**given, "webhook_id": account.webhook_id, "webhook_event": orjson.Fragment(body)}
        answer = await self._call(livemode, "POST", VERIFY_PATH, body=request)
        if answer.status in (400, 404, 422):
            # Not this app's webhook (another mode's), or headers PayPal cannot read.
            issue = tf.error_issue(answer.json())
            log.info("paypal_webhook_not_verified", mode=mode_name(livemode), issue=issue)
            return False
        status = (answer.object() or {}).get("verification_status")
        if not answer.ok or status not in ("SUCCESS", "FAILURE"):
            raise b.ProviderUnavailable(f"paypal: {VERIFY_PATH} answered {answer.status} ({status!r})")
        return bool(status == "SUCCESS")

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        return tf.interpret(payload)
