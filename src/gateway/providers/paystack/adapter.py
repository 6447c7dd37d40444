"""Paystack's API over one shared httpx client: initialize (redirect checkout), charge a saved card,
verify, refund, and webhooks signed with HMAC-SHA512 of the raw body (docs/providers/paystack.md).

The mode's secret key authenticates every call (`Authorization: Bearer sk_…`) and signs webhooks.
A payment is never marked succeeded from the customer's return to `callback_url`: only from a signed
`charge.success` or from GET /transaction/verify, and only when amount and currency are ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

import structlog

from gateway.providers import base as b
from gateway.providers.http import HttpProvider, ProviderClient, RequestOptions
from gateway.providers.payouts import PayoutRef, PayoutRequest, PayoutResult
from gateway.providers.paystack import notifications as nt
from gateway.providers.paystack import transformers as tf
from gateway.providers.paystack.payouts import PaystackPayouts
from gateway.providers.paystack.settings import PaystackAccounts, PaystackCredentials, PaystackSettings

log = structlog.get_logger("gateway.providers.paystack")

CHECKOUT_LOST = (
    "checkout_unavailable",
    "Paystack already holds an unpaid checkout for this payment, but its address never reached the "
    "gateway (the first attempt timed out) and Paystack cannot hand it out again. Create a new payment.",
)


class PaystackProvider(HttpProvider[PaystackCredentials]):
    name = "paystack"
    capabilities = b.Capabilities(
        currencies=tf.CURRENCIES,
        flows=frozenset({b.Flow.REDIRECT, b.Flow.DIRECT}),
        refunds=True,
        partial_refunds=True,
        # Paystack has no endpoint to cancel an initialized transaction: its checkout page stays
        # payable, so calling the payment canceled here could take money for an order given up.
        cancel=False,
        # POST /refund takes no idempotency key: a refund whose answer was lost is not resent.
        idempotent_refunds=False,
    )

    def __init__(
        self,
        settings: PaystackSettings,
        timeout_seconds: float,
        *,
        accounts: PaystackAccounts | None = None,
        options: tf.Options | None = None,
        max_connections: int = 50,
    ):
        self._options = options or tf.Options()
        http = ProviderClient(
            self.name,
            timeout_seconds,
            base_url=settings.base_url,
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
            keepalive_expiry=5,
        )
        super().__init__(accounts or settings.accounts(), http)
        # The payout side (providers/payouts.py): Transfers, in payouts.py.
        self._payouts = PaystackPayouts(self, settings)
        self.payout_capabilities = self._payouts.capabilities

    # --- configuration ---------------------------------------------------------------------------

    def bearer_token(self, account: PaystackCredentials) -> str | None:
        return account.secret_key

    def _only_mode(self) -> bool | None:
        """The one mode with a key, if only one has: the mode of webhooks that name none."""
        modes = [mode for mode in (False, True) if self.is_configured(mode)]
        return modes[0] if len(modes) == 1 else None

    # --- HTTP ------------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, livemode: bool, **options: Unpack[RequestOptions]
    ) -> tuple[int, dict[str, Any]]:
        """One API call; 2xx and 4xx answers come back as JSON objects, everything else raises."""
        answer = await self._request(method, path, livemode, **options)
        data = answer.object()
        if data is None:
            raise b.ProviderUnavailable(f"paystack: {method} {path} answered HTTP {answer.status}, not JSON")
        return answer.status, data

    def _unexpected(self, op: str, e: Exception) -> b.ProviderUnavailable:
        log.warning("paystack_unexpected_answer", op=op, error=str(e))
        return b.ProviderUnavailable(f"paystack: {op}: {e}")

    # --- payments --------------------------------------------------------------------------------

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        reference = tf.reference_for(request.payment_id, request.livemode)
        method = request.payment_method
        saved_card = method is not None and method.startswith(tf.AUTHORIZATION_PREFIX)
        if method is not None and not saved_card and method not in tf.CHANNELS:
            return b.PaymentResult(
                status="failed",
                failure_code="invalid_payment_method",
                failure_message="For Paystack, payment_method is left out, names a checkout channel ("
                + ", ".join(sorted(tf.CHANNELS))
                + ") or is a saved card's authorization code (AUTH_…).",
            )
        if not request.customer.email:
            return b.PaymentResult(
                status="failed",
                failure_code="customer_email_required",
                failure_message="Paystack needs the customer's email address (customer.email).",
            )
        if saved_card:
            path, body = "/transaction/charge_authorization", tf.charge_authorization_body(request, reference)
        else:
            path, body = "/transaction/initialize", tf.initialize_body(request, reference, method)
        status, answer = await self._call("POST", path, request.livemode, body=body)
        try:
            if tf.accepted(answer):
                if saved_card:
                    return tf.payment_result(answer["data"], reference, self._options)
                return tf.redirect_result(answer, reference, request.return_url)
            if tf.is_duplicate_reference(answer, self._options):
                # Our own earlier attempt reached Paystack (its answer was lost): ask what became of it.
                return await self._after_duplicate(reference, request.livemode, checkout=not saved_card)
        except tf.UnexpectedAnswer as e:
            raise self._unexpected(path, e) from e
        if 200 <= status < 300:
            raise self._unexpected(path, ValueError(f"status false in an HTTP {status} answer"))
        return tf.rejected_result(answer, reference, self._options)

    async def _after_duplicate(self, reference: str, livemode: bool, *, checkout: bool) -> b.PaymentResult:
        result = await self._verify(reference, livemode)
        if checkout and result.status == "requires_action":
            # Unpaid, and nobody has its checkout address: Paystack gives it out only once.
            return b.PaymentResult(
                status="failed",
                provider_reference=reference,
                failure_code=CHECKOUT_LOST[0],
                failure_message=CHECKOUT_LOST[1],
            )
        return result

    async def _verify(self, reference: str, livemode: bool) -> b.PaymentResult:
        path = f"/transaction/verify/{reference}"
        status, answer = await self._call("GET", path, livemode)
        if not tf.accepted(answer):
            # 400/404 "Transaction reference not found": our initialize never landed. Nothing to
            # report; the payment stays pending and a retry of the create sends it again.
            raise b.ProviderUnavailable(
                f"paystack: verify {reference}: HTTP {status}: {tf.message_of(answer)}"
            )
        try:
            return tf.payment_result(answer["data"], reference, self._options)
        except tf.UnexpectedAnswer as e:
            raise self._unexpected("verify", e) from e

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        reference = ref.provider_reference or tf.reference_for(ref.payment_id, ref.livemode)
        return await self._verify(reference, ref.livemode)

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        # No cancel at Paystack (capabilities.cancel is False): report where the payment stands.
        return await self.fetch_payment(ref)

    # --- refunds ---------------------------------------------------------------------------------

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        payment = request.payment
        transaction = payment.provider_reference or tf.reference_for(payment.payment_id, payment.livemode)
        body = tf.refund_body(
            transaction, request.refund_id, payment.payment_id, request.amount, payment.currency
        )
        status, answer = await self._call("POST", "/refund", payment.livemode, body=body)
        if not tf.accepted(answer):
            if 200 <= status < 300:
                raise self._unexpected("refund", ValueError(f"status false in an HTTP {status} answer"))
            return tf.refund_rejected(answer)
        try:
            return tf.refund_result(
                answer["data"], tf.refund_key(transaction, request.amount), payment.currency
            )
        except ValueError as e:
            raise self._unexpected("refund", e) from e

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        # Paystack finds a refund only by its own id, which its refund webhooks never name; the
        # gateway keys Paystack refunds by what the webhooks do name (see transformers). So there is
        # no question to ask: no news, the refund stays pending until Paystack's webhook says more.
        return b.RefundResult(status="pending", provider_reference=ref.provider_reference)

    # --- webhooks --------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        signature = b.header(headers, tf.SIGNATURE_HEADER)
        if not signature:
            raise b.WebhookVerificationError(f"missing {tf.SIGNATURE_HEADER}")
        keys = [(mode, account.secret_key) for mode, account in self._accounts.configured()]
        if not keys:
            raise b.WebhookVerificationError("no Paystack secret key is configured")
        # Every configured key is tried (constant-time each), so timing says nothing about which.
        matched = [mode for mode, key in keys if nt.signature_matches(key, body, signature)]
        if not matched:
            raise b.WebhookVerificationError("signature mismatch")
        payload = b.json_object(body)
        data = payload.get("data")
        named = nt.domain_mode(data) if isinstance(data, dict) else None
        if named is not None and len(matched) == 1 and named != matched[0]:
            # Signed with one mode's key but about the other mode's money: never act on it.
            raise b.WebhookVerificationError("the event's domain is not the mode of the key that signed it")
        return [self.interpret_webhook(payload)]

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        return nt.interpret(payload, self._only_mode(), self._options)

    # --- payouts (Transfers: payouts.py) -----------------------------------------------------------

    def payouts_configured(self, livemode: bool) -> bool:
        return self._payouts.configured(livemode)

    async def create_payout(self, request: PayoutRequest) -> PayoutResult:
        return await self._payouts.create(request)

    async def fetch_payout(self, ref: PayoutRef) -> PayoutResult:
        return await self._payouts.fetch(ref)
