"""Razorpay's API over one shared httpx client: orders paid on the Hosted Checkout, the order's payments
(captured here when only authorized), refunds, and webhooks signed with HMAC-SHA256 of the raw body
(docs/providers/razorpay.md).

Every call is authenticated with the mode's key pair (HTTP Basic). A payment is never marked succeeded
from the customer's return to `callback_url` (its razorpay_signature proves nothing the gateway acts
on): only from a signed `payment.captured` / `order.paid` or from the order's payments as
GET /v1/orders/{id}/payments lists them, and only when amount and currency are ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from gateway.providers import base as b
from gateway.providers.accounts import mode_name
from gateway.providers.http import ProviderClient
from gateway.providers.razorpay import notifications as nt
from gateway.providers.razorpay import transformers as tf
from gateway.providers.razorpay.settings import RazorpayAccounts, RazorpayCredentials, RazorpaySettings

log = structlog.get_logger("gateway.providers.razorpay")


class RazorpayProvider:
    name = "razorpay"

    def __init__(
        self,
        settings: RazorpaySettings,
        timeout_seconds: float,
        *,
        accounts: RazorpayAccounts | None = None,
        max_connections: int = 50,
    ):
        self._settings = settings
        self._accounts = accounts or settings.accounts()
        self.capabilities = b.Capabilities(
            currencies=frozenset(settings.currencies),
            flows=frozenset({b.Flow.REDIRECT}),
            refunds=True,
            partial_refunds=True,
            # Razorpay has no call to cancel an order: it stays payable on the Hosted Checkout, so
            # calling the payment canceled here could take money for an order given up.
            cancel=False,
            # X-Refund-Idempotency carries our refund id: a resent refund is the same refund.
            idempotent_refunds=True,
            reconcile_after_seconds=settings.reconcile_after_seconds,
            action_ttl_seconds=settings.action_ttl_seconds,
        )
        self._http = ProviderClient(
            self.name,
            timeout_seconds,
            base_url=settings.base_url,
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
        )

    # --- configuration ---------------------------------------------------------------------------

    def _keys(self, livemode: bool) -> tuple[str, str, RazorpayCredentials]:
        """The mode's key id and secret (and its account); a mode without them is the operator's to fix."""
        account = self._accounts.get(livemode)
        if account is None or account.key_id is None or account.key_secret is None:
            raise b.ProviderMisconfigured(f"razorpay: no {mode_name(livemode)}-mode key pair is configured")
        return account.key_id, account.key_secret, account

    def is_configured(self, livemode: bool) -> bool:
        account = self._accounts.get(livemode)
        return account is not None and account.key_id is not None and account.key_secret is not None

    # --- HTTP ------------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        livemode: bool,
        *,
        body: dict[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One API call; 2xx and 4xx answers come back as JSON objects, everything else raises
        (ProviderClient.call: 401/403 misconfigured, 5xx/429 unavailable, timeouts)."""
        key_id, key_secret, _ = self._keys(livemode)
        sent = {**tf.basic_auth(key_id, key_secret), **(headers or {})}
        answer = await self._http.call(
            method, path, mode=mode_name(livemode), headers=sent, body=body, params=params
        )
        data = answer.object()
        if data is None:
            raise b.ProviderUnavailable(f"razorpay: {method} {path} answered HTTP {answer.status}, not JSON")
        return answer.status, data

    def _unexpected(self, op: str, e: Exception) -> b.ProviderUnavailable:
        log.warning("razorpay_unexpected_answer", op=op, error=str(e))
        return b.ProviderUnavailable(f"razorpay: {op}: {e}")

    def _action(self, livemode: bool, order_id: str, request: b.PaymentRequest | None) -> dict[str, Any]:
        key_id, _, account = self._keys(livemode)
        url = self._settings.checkout_url
        return tf.checkout_action(url, key_id, order_id, account.checkout_name, request)

    # --- payments --------------------------------------------------------------------------------

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        if request.payment_method is not None:
            return b.payment_failed(
                "invalid_payment_method",
                "For Razorpay, payment_method is left out: the customer chooses on Razorpay's checkout.",
            )
        status, answer = await self._call("POST", "/v1/orders", request.livemode, body=tf.order_body(request))
        if not 200 <= status < 300:
            return tf.rejected_result(answer)
        try:
            order_id = tf.order_id_of(answer)
        except tf.UnexpectedAnswer as e:
            raise self._unexpected("create order", e) from e
        return b.PaymentResult(
            status="requires_action",
            provider_reference=order_id,
            next_action=self._action(request.livemode, order_id, request),
        )

    async def _order_by_receipt(self, receipt: str, livemode: bool) -> str:
        """The order created for `receipt` whose id never reached us (the create timed out)."""
        status, answer = await self._call("GET", "/v1/orders", livemode, params={"receipt": receipt})
        try:
            items = tf.items_of(answer) if 200 <= status < 300 else []
            orders = [tf.order_id_of(o) for o in items if o.get("receipt") == receipt]
        except tf.UnexpectedAnswer as e:
            raise self._unexpected("orders by receipt", e) from e
        if not orders:
            # The create never landed: nothing to report; the payment stays pending and a retry of the
            # create sends it again.
            raise b.ProviderUnavailable(f"razorpay: no order with receipt {receipt}")
        return orders[0]

    async def _payments_of(self, order_id: str, livemode: bool) -> list[dict[str, Any]]:
        status, answer = await self._call("GET", f"/v1/orders/{order_id}/payments", livemode)
        if not 200 <= status < 300:
            reason = tf.error_of(answer)
            raise b.ProviderUnavailable(f"razorpay: payments of {order_id}: HTTP {status}: {reason}")
        try:
            return tf.items_of(answer)
        except tf.UnexpectedAnswer as e:
            raise self._unexpected("payments of order", e) from e

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        order_id = ref.provider_reference
        found = order_id is None
        if order_id is None:
            order_id = await self._order_by_receipt(ref.payment_id, ref.livemode)
        payments = await self._payments_of(order_id, ref.livemode)
        try:
            paid = tf.pick(payments, tf.PAID)
            if paid is not None:
                return tf.paid_result(paid, order_id)
            authorized = tf.pick(payments, frozenset({"authorized"}))
            if authorized is not None:
                return await self._authorized(authorized, order_id, ref)
        except (tf.UnexpectedAnswer, KeyError, ValueError) as e:
            raise self._unexpected("payments of order", e) from e
        # No payment yet, one in progress, or only failed attempts: the order is still payable.
        return b.PaymentResult(
            status="requires_action",
            provider_reference=order_id,
            # The checkout form again, where the create's answer (and so the form) was lost.
            next_action=self._action(ref.livemode, order_id, None) if found else None,
        )

    async def _authorized(
        self, payment: Mapping[str, Any], order_id: str, ref: b.PaymentRef
    ) -> b.PaymentResult:
        """An authorized payment is captured when it is our money and the settings say so."""
        amount, currency = tf.amount_of(payment.get("amount")), payment.get("currency")
        if not self._settings.capture_authorized:
            return b.PaymentResult(status="processing", provider_reference=order_id)
        if (amount, currency) != (ref.amount, ref.currency):
            # Never capture other money than ours: the payment is left to Razorpay's auto-refund.
            log.warning("razorpay_authorized_amount_mismatch", order_id=order_id)
            return b.PaymentResult(status="requires_action", provider_reference=order_id)
        path = f"/v1/payments/{payment['id']}/capture"
        body = {"amount": amount, "currency": currency}
        status, answer = await self._call("POST", path, ref.livemode, body=body)
        if not 200 <= status < 300 or answer.get("status") not in tf.PAID:
            # Captured meanwhile (by Razorpay's auto-capture), or not capturable: the next query tells.
            reason = tf.error_of(answer)
            raise b.ProviderUnavailable(f"razorpay: capture of {payment['id']}: HTTP {status}: {reason}")
        return tf.paid_result(answer, order_id)

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        # No cancel at Razorpay (capabilities.cancel is False): report where the payment stands.
        return await self.fetch_payment(ref)

    # --- refunds ---------------------------------------------------------------------------------

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        ref = request.payment
        order_id = ref.provider_reference or await self._order_by_receipt(ref.payment_id, ref.livemode)
        paid = tf.pick(await self._payments_of(order_id, ref.livemode), tf.PAID)
        if paid is None or not isinstance(paid.get("id"), str):
            return b.refund_failed("refund_declined", "Razorpay holds no captured payment for this order.")
        status, answer = await self._call(
            "POST",
            f"/v1/payments/{paid['id']}/refund",
            ref.livemode,
            body=tf.refund_body(request.refund_id, ref.payment_id, request.amount),
            headers={tf.REFUND_IDEMPOTENCY_HEADER: request.idempotency_key},
        )
        if not 200 <= status < 300:
            return tf.refund_rejected(answer)
        try:
            return tf.refund_result(answer)
        except (tf.UnexpectedAnswer, KeyError, ValueError) as e:
            raise self._unexpected("refund", e) from e

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        if ref.provider_reference is None:
            # The refund's answer was lost: the refund service resends it under the same idempotency key.
            return b.RefundResult(status="pending")
        path = f"/v1/refunds/{ref.provider_reference}"
        status, answer = await self._call("GET", path, ref.payment.livemode)
        if not 200 <= status < 300:
            raise b.ProviderUnavailable(f"razorpay: refund {ref.provider_reference}: HTTP {status}")
        try:
            return tf.refund_result(answer)
        except (tf.UnexpectedAnswer, KeyError, ValueError) as e:
            raise self._unexpected("fetch refund", e) from e

    # --- webhooks --------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        header = b.header(headers, tf.SIGNATURE_HEADER)
        if not header:
            raise b.WebhookVerificationError(f"missing {tf.SIGNATURE_HEADER}")
        secrets = [a.webhook_secret for _, a in self._accounts.configured() if a.webhook_secret]
        if not secrets:
            raise b.WebhookVerificationError("no Razorpay webhook secret is configured")
        if not nt.signature_matches(secrets, body, header):
            raise b.WebhookVerificationError("signature mismatch")
        event = nt.interpret(b.json_object(body), b.header(headers, tf.EVENT_ID_HEADER))
        return [event]

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        return nt.interpret(payload)

    async def aclose(self) -> None:
        await self._http.aclose()
