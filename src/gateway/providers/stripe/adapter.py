"""Stripe through its official SDK, async: one StripeClient (and its own HTTPXClient) per mode.

The SDK never retries (max_network_retries=0): the gateway's own semantics decide what happens after a
failure (the payment stays pending; the merchant retries with the same Idempotency-Key, which is also
Stripe's, so Stripe replays its first answer; or sync and the reconciler ask Stripe where it stands).
Mapping of Stripe's JSON lives in transformers.py; this module only talks to Stripe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Mapping
from typing import Any, NamedTuple, TypeVar

import httpx
import orjson
import stripe
import structlog

from gateway.providers import base as b
from gateway.providers.stripe import amounts
from gateway.providers.stripe import notifications as nt
from gateway.providers.stripe import transformers as tf
from gateway.providers.stripe.settings import StripeAccounts, StripeSettings

log = structlog.get_logger("gateway.providers.stripe")

# Stripe's own default (stripe.Webhook.DEFAULT_TOLERANCE), written out: a signature older than this
# is refused, which bounds how long a captured delivery can be replayed.
WEBHOOK_TOLERANCE_SECONDS = 300
T = TypeVar("T")


class _Mode(NamedTuple):
    client: stripe.StripeClient
    http: stripe.HTTPXClient


def _error_body(e: stripe.StripeError) -> dict[str, Any]:
    body = e.json_body if isinstance(e.json_body, dict) else {}
    error = body.get("error")
    return error if isinstance(error, dict) else {}


def _failure(e: stripe.StripeError, op: str) -> b.ProviderFailure:
    """What a Stripe error means for the gateway when Stripe gave no verdict on the money."""
    if isinstance(e, stripe.APIConnectionError):
        # The SDK wraps httpx's exception; only a timeout may have reached Stripe and be running there.
        if isinstance(e.__cause__, httpx.TimeoutException):
            return b.ProviderTimedOut(f"stripe {op}: no answer in time ({type(e.__cause__).__name__})")
        cause = type(e.__cause__).__name__ if e.__cause__ else "connection error"
        if isinstance(e.__cause__, httpx.ConnectError):  # the request never left
            return b.ProviderUnavailable(f"stripe {op}: could not connect to Stripe ({cause})", outage=True)
        return b.ProviderUnavailable(f"stripe {op}: could not reach Stripe ({cause})")
    if isinstance(e, stripe.AuthenticationError | stripe.PermissionError):
        # Loud, and without the key: Stripe's own message masks it, and we do not repeat it anyway.
        log.error("stripe_credentials_rejected", op=op, http_status=e.http_status, request_id=e.request_id)
        return b.ProviderMisconfigured(f"stripe {op}: Stripe rejected the secret key (HTTP {e.http_status})")
    if isinstance(e, stripe.IdempotencyError):
        log.error("stripe_idempotency_error", op=op, request_id=e.request_id)
    if e.http_status is not None and (e.http_status >= 500 or e.http_status == 429):
        return b.ProviderUnavailable(f"stripe {op}: {type(e).__name__} (HTTP {e.http_status})", outage=True)
    return b.ProviderUnavailable(f"stripe {op}: {type(e).__name__} (HTTP {e.http_status})")


def _dict(obj: stripe.StripeObject) -> dict[str, Any]:
    return obj.to_dict()


class StripeProvider:
    name = "stripe"

    def __init__(self, settings: StripeSettings, timeout: float, *, accounts: StripeAccounts | None = None):
        self._accounts = accounts or settings.accounts()
        self._modes: dict[bool, _Mode] = {}
        for livemode, account in self._accounts.configured():
            api_key = account.secret_key
            if api_key is None:
                continue
            if not api_key.startswith(("sk_live_", "rk_live_") if livemode else ("sk_test_", "rk_test_")):
                log.warning("stripe_key_mode_mismatch", configured_for="live" if livemode else "test")
            http = stripe.HTTPXClient(timeout=timeout)
            client = stripe.StripeClient(
                api_key,
                http_client=http,
                base_addresses={"api": settings.api_base},
                max_network_retries=0,
            )
            self._modes[livemode] = _Mode(client, http)
        self.capabilities = b.Capabilities(
            currencies=amounts.STRIPE_CURRENCIES,
            flows=frozenset({b.Flow.DIRECT, b.Flow.REDIRECT, b.Flow.CLIENT_SECRET}),
            refunds=True,
            partial_refunds=True,
            cancel=True,
            # A PaymentIntent never expires at Stripe: a customer can finish 3-D Secure or an Elements
            # payment hours later. Expiring ours on our clock would leave money taken for an expired
            # payment, so abandoned Stripe payments end by cancel (which cancels the PaymentIntent).
            action_ttl_seconds=None,
        )

    def is_configured(self, livemode: bool) -> bool:
        return livemode in self._modes

    def _client(self, livemode: bool) -> stripe.StripeClient:
        mode = self._modes.get(livemode)
        if mode is None:
            raise b.ProviderMisconfigured(f"stripe: no {'live' if livemode else 'test'}-mode secret key")
        return mode.client

    async def _call(self, op: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except stripe.StripeError as e:
            raise _failure(e, op) from e

    def _payment(self, pi: Mapping[str, Any], op: str) -> b.PaymentResult:
        try:
            return tf.payment_result(pi)
        except tf.MalformedObject as e:
            raise b.ProviderUnavailable(f"stripe {op}: {e}") from e

    def _refund(self, refund: Mapping[str, Any], op: str) -> b.RefundResult:
        try:
            return tf.refund_result(refund)
        except tf.MalformedObject as e:
            raise b.ProviderUnavailable(f"stripe {op}: {e}") from e

    # Payments

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        client = self._client(request.livemode)
        refused = _refuse_payment_method(request.payment_method)
        if refused is not None:
            return refused
        try:
            # Our payment id is Stripe's Idempotency-Key: a retried create gets Stripe's first answer.
            pi = await client.v1.payment_intents.create_async(
                tf.payment_intent_params(request),  # type: ignore[arg-type]  # a plain dict, as the SDK takes it
                options={"idempotency_key": request.idempotency_key},
            )
        except amounts.UnsupportedAmount as e:  # refused before any request
            return b.PaymentResult(
                status="failed", failure_code="amount_not_supported", failure_message=str(e)
            )
        except stripe.CardError as e:
            # A decline: Stripe made the PaymentIntent (it is inside the error) and refused the card.
            error = _error_body(e)
            code, message = tf.decline(error)
            # The error names the declined card in its PaymentMethod (the charge is not expanded there).
            card = tf.card_of((error.get("payment_method") or {}).get("card"))
            declined = dataclasses.replace(b.payment_failed(code, message), payment_method_details=card)
            return _with_intent(declined, error)
        except stripe.IdempotencyError as e:
            # Our key was first used with other parameters (a create from an older version of this
            # adapter): that first request ran, so the PaymentIntent exists; answer with where it stands.
            found = await self._find(client, request.payment_id)
            if found is None:
                raise _failure(e, "create_payment") from e
            return self._payment(found, "create_payment")
        except stripe.InvalidRequestError as e:
            # Stripe refused this payment as asked (amount too small, unknown pm_, currency not enabled
            # on the account...): the same request would be refused again, so the payment has failed.
            error = _error_body(e)
            code, message = tf.request_error(error)
            log.warning(
                "stripe_request_refused", op="create_payment", stripe_code=e.code, param=error.get("param")
            )
            return _with_intent(b.payment_failed(code, message), error)
        except stripe.StripeError as e:
            raise _failure(e, "create_payment") from e
        return self._payment(_dict(pi), "create_payment")

    async def _find(self, client: stripe.StripeClient, payment_id: str) -> Mapping[str, Any] | None:
        """The PaymentIntent made for our payment, found by the payment id in its metadata.

        Why search and not a second POST of the create with the same Idempotency-Key (which Stripe
        would answer with the id): sync and the reconciler must never move money. When the first
        create never reached Stripe, that POST would make and confirm the charge now, perhaps long
        after the merchant gave up on this payment and charged the customer with another one; and the
        sync call does not hold the create's exact parameters (return_url, description), so Stripe
        would refuse the replay anyway. Search is read-only; its cost is that Stripe indexes new
        objects within about a minute (more during incidents), so a sync right after a timeout may
        not find the PaymentIntent yet: that is a b.ProviderUnavailable, the payment stays pending, and
        the merchant either syncs again later or retries the create with the same Idempotency-Key,
        which Stripe does replay exactly (same parameters, built from the stored payment alone).
        """
        result = await self._call(
            "search_payment_intents",
            client.v1.payment_intents.search_async(
                {"query": tf.search_query(payment_id), "limit": 10, "expand": ["data.latest_charge"]}
            ),
        )
        found = [_dict(pi) for pi in result.data]
        if len(found) > 1:
            log.error("stripe_duplicate_payment_intents", payment_id=payment_id, count=len(found))
        return tf.pick_payment_intent(found)

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        client = self._client(ref.livemode)
        if ref.provider_reference is None:
            found = await self._find(client, ref.payment_id)
            if found is None:
                raise b.ProviderUnavailable(
                    "stripe fetch_payment: Stripe's search has no PaymentIntent for this payment (yet)"
                )
            return self._payment(found, "fetch_payment")
        pi = await self._call(
            "fetch_payment",
            client.v1.payment_intents.retrieve_async(ref.provider_reference, {"expand": tf.EXPAND_CHARGE}),
        )
        return self._payment(_dict(pi), "fetch_payment")

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        client = self._client(ref.livemode)
        reference = ref.provider_reference
        if reference is None:
            found = await self._find(client, ref.payment_id)
            if found is None:
                raise b.ProviderUnavailable(
                    "stripe cancel_payment: Stripe's search has no PaymentIntent for this payment (yet)"
                )
            reference = str(found["id"])
        try:
            pi = await client.v1.payment_intents.cancel_async(
                reference, options={"idempotency_key": f"{ref.payment_id}-cancel"}
            )
        except stripe.InvalidRequestError as e:
            if e.code != "payment_intent_unexpected_state":
                raise _failure(e, "cancel_payment") from e
            # Too late: it succeeded, is processing or was canceled already. Say where it stands.
            return await self.fetch_payment(dataclasses.replace(ref, provider_reference=reference))
        except stripe.StripeError as e:
            raise _failure(e, "cancel_payment") from e
        return self._payment(_dict(pi), "cancel_payment")

    # Refunds

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        client = self._client(request.payment.livemode)
        payment_intent = request.payment.provider_reference
        if payment_intent is None:
            raise b.ProviderUnavailable("stripe refund_payment: the payment has no PaymentIntent id")
        try:
            refund = await client.v1.refunds.create_async(
                tf.refund_params(request, payment_intent),  # type: ignore[arg-type]  # a plain dict
                options={"idempotency_key": request.idempotency_key},
            )
        except amounts.UnsupportedAmount as e:  # refused before any request
            return b.RefundResult(
                status="failed", failure_code="amount_not_supported", failure_message=str(e)
            )
        except stripe.IdempotencyError as e:
            found = await self._find_refund(client, payment_intent, request.refund_id)
            if found is None:
                raise _failure(e, "refund_payment") from e
            return self._refund(found, "refund_payment")
        except stripe.InvalidRequestError as e:
            # Already refunded at Stripe, more than is left, a disputed charge...: refused for good.
            log.warning("stripe_request_refused", op="refund_payment", stripe_code=e.code)
            message = str(_error_body(e).get("message") or "Stripe refused the refund.")
            return b.RefundResult(status="failed", failure_code="refund_rejected", failure_message=message)
        except stripe.StripeError as e:
            raise _failure(e, "refund_payment") from e
        return self._refund(_dict(refund), "refund_payment")

    async def _find_refund(
        self, client: stripe.StripeClient, payment_intent: str, refund_id: str
    ) -> Mapping[str, Any] | None:
        # Listing a PaymentIntent's refunds is strongly consistent (unlike search), and short.
        listing = await self._call(
            "list_refunds",
            client.v1.refunds.list_async({"payment_intent": payment_intent, "limit": 100}),
        )
        return tf.find_refund([_dict(r) for r in listing.data], refund_id)

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        client = self._client(ref.payment.livemode)
        if ref.provider_reference is not None:
            refund = await self._call(
                "fetch_refund", client.v1.refunds.retrieve_async(ref.provider_reference)
            )
            return self._refund(_dict(refund), "fetch_refund")
        payment_intent = ref.payment.provider_reference
        found = None
        if payment_intent is not None:
            found = await self._find_refund(client, payment_intent, ref.refund_id)
        if found is None:
            # Not at Stripe (now): the create never arrived or is still running. Nothing is concluded
            # from absence; a retry with the same Idempotency-Key sends it (Stripe replays if it ran).
            raise b.ProviderUnavailable("stripe fetch_refund: Stripe has no refund for this one (yet)")
        return self._refund(found, "fetch_refund")

    # Webhooks

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        signature = b.header(headers, "stripe-signature")
        if not signature:
            raise b.WebhookVerificationError("missing Stripe-Signature header")
        secrets = [
            (livemode, a.webhook_secret) for livemode, a in self._accounts.configured() if a.webhook_secret
        ]
        if not secrets:
            raise b.WebhookVerificationError("no Stripe webhook signing secret is configured")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise b.WebhookPayloadError("body is not UTF-8") from e
        wrong_mode = False
        for livemode, secret in secrets:
            try:
                # Signature over "{t}.{raw body}", any v1 matching, t not older than the tolerance.
                stripe.Webhook.construct_event(text, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
            except stripe.SignatureVerificationError:
                continue
            except ValueError as e:
                raise b.WebhookPayloadError("body is not JSON") from e
            # Stored exactly as Stripe sent it (the SDK's Event object is a re-parse of the same bytes).
            payload = orjson.loads(body)
            if not isinstance(payload, dict):
                raise b.WebhookPayloadError("body is not a JSON object")
            if payload.get("livemode") is not livemode:
                # Signed with one mode's secret, claiming the other mode: never trust that.
                wrong_mode = True
                continue
            return [self.interpret_webhook(payload)]
        if wrong_mode:
            raise b.WebhookVerificationError("the event's livemode does not match its signing secret's mode")
        raise b.WebhookVerificationError("Stripe-Signature does not verify (signature or timestamp)")

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        return nt.interpret(payload)

    async def aclose(self) -> None:
        for mode in self._modes.values():
            await mode.http.close_async()  # type: ignore[no-untyped-call]


def _refuse_payment_method(payment_method: str | None) -> b.PaymentResult | None:
    """Stripe takes PaymentMethod ids (`pm_...`) made by Stripe.js or Stripe's mobile SDKs, never card
    details: a server that sends raw card numbers to Stripe is in PCI scope. Refused here before any
    request, and the value is never echoed (not in the answer, not in a log)."""
    problem = tf.payment_method_problem(payment_method)
    if problem is None:
        return None
    code, message = problem
    log.warning("stripe_payment_method_refused", failure_code=code)
    return b.payment_failed(code, message)


def _with_intent(result: b.PaymentResult, error: Mapping[str, Any]) -> b.PaymentResult:
    """The PaymentIntent a refusal names (Stripe includes it in card errors), as our reference."""
    pi = error.get("payment_intent")
    if isinstance(pi, Mapping) and pi.get("id"):
        return dataclasses.replace(result, provider_reference=str(pi["id"]))
    return result
