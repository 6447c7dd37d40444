"""Wave Checkout: sessions (`POST /v1/checkout/sessions`), their status, expiry, refunds, webhooks.

I/O only; every body in and out is shaped by transformers.py (docs/providers/wave.md). One shared
httpx client with the gateway's provider timeout, closed in aclose(). Our payment id is the session's
`client_reference` (and the `Idempotency-Key` of its create), so a create retried after a timeout
asks for the same session, and a sync finds the session by search before we know its id.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Unpack
from urllib.parse import quote

import structlog

from gateway.providers import base as b
from gateway.providers.http import HttpProvider, ProviderClient, RequestOptions
from gateway.providers.wave import transformers as tf
from gateway.providers.wave.settings import WaveAccounts, WaveCredentials, WaveSettings

log = structlog.get_logger("gateway.providers.wave")

SESSIONS = "/v1/checkout/sessions"


class NoSessionYet(b.ProviderUnavailable):
    """Wave has no session for the payment: its create never reached Wave (or has not yet)."""


class WaveProvider(HttpProvider[WaveCredentials]):
    bearer_name = "API key"

    name = "wave"

    def __init__(self, settings: WaveSettings, timeout: float, *, accounts: WaveAccounts | None = None):
        self._settings = settings
        self._ttl = timedelta(seconds=settings.action_ttl_seconds)
        http = ProviderClient(self.name, timeout, base_url=settings.base_url.rstrip("/"))
        super().__init__(accounts or settings.accounts(), http)
        self.capabilities = b.Capabilities(
            currencies=frozenset(settings.currencies),
            flows=frozenset({b.Flow.REDIRECT}),
            refunds=True,
            # The refund endpoint takes no amount: it returns the whole payment (docs/providers/wave.md).
            partial_refunds=False,
            cancel=True,
            reconcile_after_seconds=settings.reconcile_after_seconds,
            action_ttl_seconds=settings.action_ttl_seconds,
            # A shared-secret webhook is the secret itself, the same on every delivery: it proves
            # nothing about the body, so the session is asked before anything moves. A Wave-Signature
            # (HMAC of timestamp and body, 300 s window) is proof, and is applied as it stands.
            query_before_acting=settings.webhook_auth == "shared_secret",
        )

    # --- configuration -----------------------------------------------------------------------------

    def bearer_token(self, account: WaveCredentials) -> str | None:
        return account.api_key

    def _webhook_secrets(self) -> list[str]:
        return [a.webhook_secret for _, a in self._accounts.configured() if a.webhook_secret is not None]

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        livemode: bool,
        idempotency_key: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> tuple[int, Any]:
        """2xx and other 4xx answers come back (status, parsed JSON or None) for the caller to read."""
        if idempotency_key is not None and self._settings.send_idempotency_key:
            options["headers"] = {"Idempotency-Key": idempotency_key}
        answer = await self._request(method, path, livemode, **options)
        return answer.status, answer.json()

    # --- payments ------------------------------------------------------------------------------------

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        return_url = request.return_url or self._settings.default_return_url or None
        if return_url is None:
            return b.payment_failed(
                "return_url_required",
                "Wave's checkout needs a return_url (its success_url and error_url) to send the customer to.",
            )
        body = tf.session_body(
            request,
            success_url=return_url,
            error_url=return_url,
            restrict_payer_mobile=self._settings.restrict_payer_mobile,
        )
        status, answer = await self._call(
            "POST", SESSIONS, livemode=request.livemode, body=body, idempotency_key=request.idempotency_key
        )
        if status < 300 and isinstance(answer, dict):
            return self._checked(answer, request.payment_id)
        if status in (400, 422):
            # Wave refused the session itself (its validation, the wallet's limits): nothing to pay.
            code, message = tf.error_of(answer)
            return b.payment_failed(
                tf.decline_code(code, tf.REJECTED), message or "Wave refused the payment."
            )
        # 409 (an Idempotency-Key reused with another body) or an unexpected answer: ask, don't guess.
        raise b.ProviderUnavailable(f"wave: POST {SESSIONS} answered {status}")

    def _checked(self, session: Mapping[str, Any], payment_id: str) -> b.PaymentResult:
        """A session is ours only if it names our payment as client_reference; its money is checked by
        the state machine."""
        reference = tf.client_reference(session)
        if reference is not None and reference != payment_id:
            log.error(
                "wave_session_mismatch",
                payment_id=payment_id,
                client_reference=reference[:100],
                session=str(session.get("id"))[:100],
            )
            raise b.ProviderUnavailable("wave answered with a session for another client_reference")
        try:
            return tf.session_result(session)
        except tf.MalformedAnswer as e:
            raise b.ProviderUnavailable(f"wave: {e}") from e

    async def _get(self, session_id: str, livemode: bool) -> Mapping[str, Any]:
        """`GET /v1/checkout/sessions/:id`."""
        path = f"{SESSIONS}/{quote(session_id, safe='')}"
        status, answer = await self._call("GET", path, livemode=livemode)
        if status < 300 and isinstance(answer, dict):
            return answer
        code, _ = tf.error_of(answer)
        raise b.ProviderUnavailable(f"wave: GET {path} answered {status} {code}")

    async def _session(self, ref: b.PaymentRef) -> Mapping[str, Any] | None:
        """The payment's session: by its id once we know it, else by our client_reference. None: none."""
        if ref.provider_reference is not None:
            return await self._get(ref.provider_reference, ref.livemode)
        status, answer = await self._call(
            "GET", f"{SESSIONS}/search", livemode=ref.livemode, params={"client_reference": ref.payment_id}
        )
        if status < 300:
            try:
                return tf.pick_session(tf.search_results(answer), ref.payment_id)
            except tf.MalformedAnswer as e:
                raise b.ProviderUnavailable(f"wave: {e}") from e
        if status == 404:
            return None
        raise b.ProviderUnavailable(f"wave: GET {SESSIONS}/search answered {status}")

    def _expired(self, ref: b.PaymentRef) -> bool:
        return datetime.now(UTC) >= ref.created_at + self._ttl

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        session = await self._session(ref)
        if session is None:
            if self._expired(ref):
                # The create never reached Wave, and no retry came within the payment's time.
                return b.payment_failed("provider_session_missing", "Wave never created a checkout session.")
            raise NoSessionYet(f"wave has no checkout session for {ref.payment_id} yet")
        result = self._checked(session, ref.payment_id)
        if result.status == "requires_action" and self._expired(ref) and result.provider_reference:
            # Our time for the customer is up: close the session first, so nobody pays an expired payment.
            closed = await self._expire(result.provider_reference, ref)
            return closed if closed.status != "canceled" else _with_status(closed, "expired")
        return result

    async def _expire(self, session_id: str, ref: b.PaymentRef) -> b.PaymentResult:
        """`POST /v1/checkout/sessions/:id/expire`; if Wave refuses, the session's word decides."""
        path = f"{SESSIONS}/{quote(session_id, safe='')}/expire"
        status, _ = await self._call("POST", path, livemode=ref.livemode)
        if status < 300:
            return b.PaymentResult(
                status="canceled", provider_reference=session_id, amount=ref.amount, currency=ref.currency
            )
        # Not open any more (paid, or expired meanwhile): what is it now?
        result = self._checked(await self._get(session_id, ref.livemode), ref.payment_id)
        if result.status == "expired":
            return _with_status(result, "canceled")  # closed unpaid: what cancel asked for
        if result.status == "requires_action":
            raise b.ProviderUnavailable(f"wave refused to expire open session {session_id} ({status})")
        return result

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        session_id = ref.provider_reference
        if session_id is None:
            session = await self._session(ref)
            if session is None:
                # The create never reached Wave: there is nothing to close.
                return b.PaymentResult(status="canceled")
            result = self._checked(session, ref.payment_id)
            if result.status != "requires_action" or result.provider_reference is None:
                return _with_status(result, "canceled") if result.status == "expired" else result
            session_id = result.provider_reference
        return await self._expire(session_id, ref)

    # --- refunds -------------------------------------------------------------------------------------

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        payment = request.payment
        session_id = payment.provider_reference
        if session_id is None:  # never expected for a succeeded payment: look the session up
            session = await self._session(payment)
            if session is None:
                raise b.ProviderUnavailable(f"wave has no checkout session for {payment.payment_id}")
            session_id = _id(session)
        path = f"{SESSIONS}/{quote(session_id, safe='')}/refund"
        status, answer = await self._call(
            "POST", path, livemode=payment.livemode, idempotency_key=request.idempotency_key
        )
        if status < 300:
            return b.RefundResult(
                status="succeeded",
                provider_reference=session_id,
                amount=request.amount,
                currency=payment.currency,
            )
        if status in (400, 404, 409, 422):
            code, message = tf.error_of(answer)
            log.warning("wave_refund_refused", status=status, code=code, refund_id=request.refund_id)
            return b.RefundResult(
                status="failed",
                provider_reference=session_id,
                failure_code=tf.REFUND_FAILED,
                failure_message=message or f"Wave refused the refund ({code or status}).",
            )
        raise b.ProviderUnavailable(f"wave: POST {path} answered {status}")

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        """Wave has no refund object: the session says `when_refunded` once it is refunded."""
        session = await self._session(ref.payment)
        if session is None:
            raise b.ProviderUnavailable(f"wave has no checkout session for {ref.payment.payment_id}")
        reference = _id(session)
        if tf.refunded(session):
            return b.RefundResult(
                status="succeeded",
                provider_reference=reference,
                amount=ref.amount,
                currency=ref.payment.currency,
            )
        # Not refunded (yet): our refund request never reached Wave. Retrying the refund with the same
        # Idempotency-Key sends it again; until then it stays pending with its amount reserved.
        return b.RefundResult(status="pending")

    # --- webhooks ------------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        secrets = self._webhook_secrets()
        if not secrets:
            raise b.WebhookVerificationError("no Wave webhook secret is configured")
        if self._settings.webhook_auth == "shared_secret":
            if not tf.bearer_valid(b.header(headers, "authorization"), secrets):
                raise b.WebhookVerificationError("Authorization does not carry the webhook secret")
        else:
            header = b.header(headers, "wave-signature")
            if not header:
                raise b.WebhookVerificationError("missing Wave-Signature")
            if not tf.signature_valid(
                header,
                body,
                secrets,
                now=int(time.time()),
                tolerance_seconds=self._settings.webhook_tolerance_seconds,
                separator=self._settings.webhook_signature_separator,
            ):
                raise b.WebhookVerificationError("Wave-Signature does not match or is too old")
        return self._events(body)

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        return tf.interpret(payload)


def _id(session: Mapping[str, Any]) -> str:
    try:
        return tf.session_id(session)
    except tf.MalformedAnswer as e:
        raise b.ProviderUnavailable(f"wave: {e}") from e


def _with_status(result: b.PaymentResult, status: str) -> b.PaymentResult:
    return b.PaymentResult(
        status=status,
        provider_reference=result.provider_reference,
        amount=result.amount,
        currency=result.currency,
    )
