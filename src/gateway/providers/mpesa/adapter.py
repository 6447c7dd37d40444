"""Safaricom M-Pesa Daraja: STK Push, STK Query, Reversal, and callbacks at a secret URL.

I/O only; bodies are shaped by transformers.py (docs/providers/mpesa.md). What this adapter keeps:

* OAuth tokens in the shared token cache (providers/tokens.py), one per app.
* Per payment, in Redis (kept.py): the accepted push (CheckoutRequestID and the prompt shown to the merchant),
  so a retried create never prompts the customer twice and a sync knows what to query, even when
  Daraja's answer came after the gateway had given up waiting (the push keeps running a little
  longer than the gateway's provider timeout, and its late answer is kept).

M-Pesa signs nothing: a callback is accepted only at {public_url}/v1/webhooks/mpesa/{token}, the
token compared in constant time, and the gateway then asks STK Query (query_before_acting) and
applies that answer. The callback's own facts (amount, receipt, paying number) are remembered in
memory between interpret_webhook and the fetch_payment the gateway runs right after it, in the same
process. The receipt (MpesaReceiptNumber, which STK Query does not return and a reversal names) then
travels in the result's payment_method_details, and the state machine stores it on the payment
(`provider_receipt`); a reversal reads it from there (PaymentRef.receipt).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from redis.asyncio import Redis

from gateway.providers import base as b
from gateway.providers.accounts import mode_name
from gateway.providers.details import MobileMoney
from gateway.providers.http import HttpProvider, ProviderClient
from gateway.providers.mpesa import b2c, callbacks, reversal
from gateway.providers.mpesa import transformers as tf
from gateway.providers.mpesa.kept import Kept
from gateway.providers.mpesa.payouts import MpesaPayouts
from gateway.providers.mpesa.settings import Account, App, MpesaAccounts, MpesaSettings
from gateway.providers.tokens import TokenCache

log = structlog.get_logger("gateway.providers.mpesa")

OAUTH_PATH = "/oauth/v1/generate"
PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
QUERY_PATH = "/mpesa/stkpushquery/v1/query"
REVERSAL_PATH = "/mpesa/reversal/v1/request"
ACK = b'{"ResultCode":0,"ResultDesc":"Accepted"}'

# How long a push's answer is waited for after the gateway gave up on it (as a share of the provider
# timeout): it stays below the gateway's lease on the payment (twice the timeout), so a retried create
# never races a push still on its way.
LATE_ANSWER_FACTOR = 1.5
# Callback facts waiting for their STK Query, and payments of recent pushes, per process.
REMEMBERED = 10_000


def _check_phone(phone: str | None, livemode: bool) -> str | None:
    return tf.phone_problem(phone)


class MpesaProvider(HttpProvider[Account], MpesaPayouts):
    name = "mpesa"

    def __init__(
        self,
        settings: MpesaSettings,
        redis: Redis,
        callback_base_url: str,
        timeout_seconds: float,
        *,
        clock: Callable[[], datetime] | None = None,
        accounts: MpesaAccounts | None = None,
    ):
        self._late = timeout_seconds * LATE_ANSWER_FACTOR
        super().__init__(accounts or settings.accounts(), ProviderClient(self.name, self._late))
        self._settings = settings
        self._redis = redis
        self._callback_base = callback_base_url.rstrip("/")
        self._timeout = timeout_seconds
        # The Timestamp and Password come from this clock (tests freeze it).
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._tokens = TokenCache(redis, lock_seconds=timeout_seconds + 5)
        self._kept = Kept(redis)
        self._inflight: dict[str, asyncio.Task[b.PaymentResult]] = {}
        self._callbacks: OrderedDict[str, callbacks.StkCallback] = OrderedDict()
        # CheckoutRequestID -> our payment id, for pushes answered here: a callback for a push whose
        # answer came too late to be stored on the payment still finds its payment (in this process).
        self._payment_of: OrderedDict[str, str] = OrderedDict()
        self._pending_errors = frozenset(settings.stk_query_pending_error_codes)
        self._pending_results = frozenset(settings.stk_query_pending_result_codes)
        refunds = any(a.initiator and a.security_credential for _, a in self._accounts.configured())
        self.capabilities = b.Capabilities(
            currencies=frozenset({tf.CURRENCY}),
            flows=frozenset({b.Flow.MOBILE_PROMPT}),
            refunds=refunds,
            partial_refunds=refunds and settings.partial_reversals,
            cancel=False,  # STK Push has no cancel: an unanswered prompt ends with 1037/1019/1032
            # The Reversal API takes no idempotency key: a reversal whose answer was lost is not re-sent.
            idempotent_refunds=False,
            query_before_acting=True,
            webhook_ack=ACK,
            reconcile_after_seconds=settings.reconcile_after_seconds,
            action_ttl_seconds=settings.action_ttl_seconds,
            # The STK menu closes on the phone after about a minute and a half (then result 1037).
            prompt_seconds=90.0,
            amount_multiple_of=tf.KES,
            check_phone=_check_phone,
        )
        self.payout_capabilities = self._payout_capabilities()

    # --- configuration -----------------------------------------------------------------------------

    def _account(self, livemode: bool) -> Account | None:
        return self._accounts.get(livemode)

    def is_configured(self, livemode: bool) -> bool:
        return self._account(livemode) is not None and self._token() is not None

    def _token(self) -> str | None:
        token = self._settings.callback_token
        return (token.get_secret_value() or None) if token is not None else None

    def _require(self, livemode: bool) -> Account:
        account = self._account(livemode)
        if account is None or self._token() is None:
            mode = mode_name(livemode)
            raise b.ProviderMisconfigured(
                f"mpesa: the {mode}-mode credentials or the callback token are missing"
            )
        return account

    @property
    def _callback_url(self) -> str:
        return f"{self._callback_base}/{self._token()}"

    def _timestamp(self) -> str:
        return tf.timestamp(self.clock(), self._settings.timestamp_utc_offset_minutes)

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _fetch_token(self, app: App) -> tuple[str, int]:
        answer = await self._http.call(
            "GET",
            app.base_url + OAUTH_PATH,
            params={"grant_type": "client_credentials"},
            headers={"Authorization": app.basic_auth},
            deadline_seconds=self._timeout,
            credentials_checked=False,
        )
        data = answer.object()
        if answer.status != 200 or data is None:
            error = tf.error_of(data or {})
            log.error("mpesa_credentials_rejected", status=answer.status, error=error and error.code)
            raise b.ProviderMisconfigured(f"mpesa rejected the consumer key and secret ({answer.status})")
        try:
            return tf.token_of(data)
        except tf.MalformedAnswer as e:
            raise b.ProviderUnavailable(f"mpesa: unexpected OAuth answer: {e}") from e

    async def _send(
        self, url: str, body: dict[str, Any], token: str, seconds: float
    ) -> tuple[int, dict[str, Any]]:
        """Daraja's error answers (5xx included) carry its verdict in the body: the caller reads them."""
        answer = await self._http.call(
            "POST",
            url,
            headers={"Authorization": f"Bearer {token}"},
            body=body,
            deadline_seconds=seconds,
            credentials_checked=False,
            outages_checked=False,
        )
        data = answer.object()
        if data is None:
            if answer.status in (401, 403):
                raise b.ProviderMisconfigured(f"mpesa: {url} answered {answer.status}")
            raise b.ProviderUnavailable(f"mpesa: {url} answered {answer.status} without a JSON object")
        return answer.status, data

    async def _post(
        self, account: Account, path: str, body: dict[str, Any], *, seconds: float
    ) -> tuple[int, dict[str, Any]]:
        """POST with the shared bearer token; an "Invalid Access Token" answer refreshes it once."""
        fetch = functools.partial(self._fetch_token, account.app)
        for attempt in (1, 2):
            token = await self._tokens.get(account.app.token_key, fetch)
            status, data = await self._send(account.app.base_url + path, body, token, seconds)
            error = tf.error_of(data)
            if error is not None and error.code == tf.TOKEN_EXPIRED and attempt == 1:
                log.info("mpesa_token_rejected", path=path)
                await self._tokens.invalidate(account.app.token_key, token)
                continue
            return status, data
        raise AssertionError("unreachable")

    def _failure(self, op: str, status: int, data: dict[str, Any]) -> b.ProviderFailure:
        """A Daraja error not about the customer: busy (502, retry later) or our configuration (502, loud)."""
        error = tf.error_of(data)
        if error is None:
            return b.ProviderUnavailable(f"mpesa: {op} answered {status} without a result")
        if error.code in tf.BUSY or (status >= 500 and error.code != tf.SERVER_ERROR):
            return b.ProviderUnavailable(f"mpesa: {op} answered {error.code} {error.message}")
        log.error("mpesa_request_rejected", op=op, status=status, code=error.code, message=error.message)
        return b.ProviderMisconfigured(f"mpesa: {op} answered {error.code} {error.message}")

    # --- payments ------------------------------------------------------------------------------------

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        account = self._require(request.livemode)
        amount = tf.amount_problem(request.amount, request.currency)
        if amount is not None:
            return b.PaymentResult(status="failed", failure_code=amount[0], failure_message=amount[1])
        phone = request.customer.phone
        problem = tf.phone_problem(phone)
        if phone is None or problem is not None:
            return b.PaymentResult(status="failed", failure_code="invalid_phone", failure_message=problem)
        saved = await self._kept.load_push(request.payment_id)
        if saved is not None:
            # A retry of a create whose push Daraja accepted after we stopped waiting: no second prompt.
            return b.PaymentResult(
                status="requires_action",
                provider_reference=saved["checkout"],
                next_action=saved["next_action"],
            )
        task = self._inflight.get(request.payment_id)
        if task is None:
            task = asyncio.create_task(self._push(account, request, phone))
            self._inflight[request.payment_id] = task
            task.add_done_callback(functools.partial(self._push_done, request.payment_id))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except TimeoutError as e:
            raise b.ProviderTimedOut(
                f"mpesa: STK Push unanswered after {self._timeout:g} s (a late answer is still kept)"
            ) from e

    def _push_done(self, payment_id: str, task: asyncio.Task[b.PaymentResult]) -> None:
        if self._inflight.get(payment_id) is task:
            del self._inflight[payment_id]
        if not task.cancelled() and task.exception() is not None:
            log.info("mpesa_push_failed", payment_id=payment_id, error=type(task.exception()).__name__)

    async def _push(self, account: Account, request: b.PaymentRequest, phone: str) -> b.PaymentResult:
        body = tf.stk_push_body(
            shortcode=account.shortcode,
            passkey=account.passkey,
            ts=self._timestamp(),
            transaction_type=account.transaction_type,
            till_number=account.till_number,
            amount=request.amount,
            phone=phone,
            callback_url=self._callback_url,
            reference=request.reference,
            description=request.description,
            payment_id=request.payment_id,
        )
        status, data = await self._post(account, PUSH_PATH, body, seconds=self._late)
        accepted = tf.push_accepted(data)
        if accepted is not None:
            _bounded_put(self._payment_of, accepted.checkout_request_id, request.payment_id)
            next_action = tf.prompt(phone, request.amount)
            await self._kept.save_push(request.payment_id, accepted, next_action)
            return b.PaymentResult(
                status="requires_action",
                provider_reference=accepted.checkout_request_id,
                next_action=next_action,
            )
        error = tf.error_of(data)
        refusal = tf.push_refusal(error) if error is not None else None
        if refusal is not None:
            return refusal
        raise self._failure("STK Push", status, data)

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        account = self._require(ref.livemode)
        saved = await self._kept.load_push(ref.payment_id)
        checkout = ref.provider_reference or (saved["checkout"] if saved else None)
        if checkout is None:
            task = self._inflight.get(ref.payment_id)
            if task is None:
                raise b.ProviderUnavailable(
                    "mpesa: the STK Push of this payment was never answered, so there is no "
                    "CheckoutRequestID to query; retry the create with the same Idempotency-Key"
                )
            try:
                pushed = await asyncio.wait_for(asyncio.shield(task), self._timeout)
            except TimeoutError as e:
                raise b.ProviderTimedOut("mpesa: the STK Push of this payment is still unanswered") from e
            if pushed.status != "requires_action" or pushed.provider_reference is None:
                return pushed
            checkout = pushed.provider_reference
            saved = {"checkout": checkout, "next_action": pushed.next_action}
        body = tf.stk_query_body(
            shortcode=account.shortcode,
            passkey=account.passkey,
            ts=self._timestamp(),
            checkout_request_id=checkout,
        )
        status, data = await self._post(account, QUERY_PATH, body, seconds=self._timeout)
        result = tf.query_result(
            data,
            checkout,
            pending_error_codes=self._pending_errors,
            pending_result_codes=self._pending_results,
            next_action=saved["next_action"] if saved else None,
        )
        if result is None:
            raise self._failure("STK Query", status, data)
        if result.status == "succeeded":
            return self._succeeded(ref, checkout)
        return result

    def _succeeded(self, ref: b.PaymentRef, checkout: str) -> b.PaymentResult:
        """STK Query says paid. The callback, if one came, tells the amount, the receipt and the number
        that paid; without it, the number is the one prompted (the customer's)."""
        callback = self._callbacks.pop(checkout, None)
        if callback is None or callback.amount is None:
            details = MobileMoney.of(operator=tf.OPERATOR, phone=ref.customer_phone)
            return b.PaymentResult(
                status="succeeded", provider_reference=checkout, payment_method_details=details
            )
        details = MobileMoney.of(
            operator=tf.OPERATOR, phone=callback.phone or ref.customer_phone, receipt=callback.receipt
        )
        # A callback naming other money than ours is refused by the state machine (amount mismatch),
        # its receipt with it.
        return b.PaymentResult(
            status="succeeded",
            provider_reference=checkout,
            amount=callback.amount,
            currency=tf.CURRENCY,
            payment_method_details=details,
        )

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        # Daraja cannot withdraw a prompt (capabilities.cancel is False); say where the payment stands.
        return await self.fetch_payment(ref)

    # --- refunds (Reversal API) ------------------------------------------------------------------------

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        account = self._require(request.payment.livemode)
        refused = reversal.refusal(account, request, partial_reversals=self._settings.partial_reversals)
        if refused is not None:
            return refused
        receipt = request.payment.receipt
        if receipt is None:
            return b.refund_failed(*reversal.RECEIPT_UNKNOWN)
        body = reversal.body(account, request, receipt=receipt, result_url=self._callback_url)
        status, data = await self._post(account, REVERSAL_PATH, body, seconds=self._timeout)
        return reversal.answer_result(status, data, request.amount)

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        # A reversal's outcome only ever arrives at the ResultURL; Daraja has no synchronous status.
        return b.RefundResult(status="pending", provider_reference=ref.provider_reference)

    # --- callbacks -----------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        b.check_callback_token(headers, self._token(), "M-Pesa")
        return self._events(body)

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        if b2c.is_b2c_result(payload.get("Result")):
            return b2c.interpret(payload)  # a payout's Result (B2C), by the OriginatorConversationID we gave
        event, callback = callbacks.interpret(payload)
        if callback is not None:
            if callback.result_code == "0":
                _bounded_put(self._callbacks, callback.checkout_request_id, callback)
            payment_id = self._payment_of.get(callback.checkout_request_id)
            if payment_id is not None:
                event = dataclasses.replace(event, payment_id=payment_id)
        return event

    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        await super().aclose()


def _bounded_put(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > REMEMBERED:
        memory.popitem(last=False)
