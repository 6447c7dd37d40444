"""The PaymentProvider protocol and the unified types every adapter speaks.

Adapters do I/O; their transformers map provider JSON to these dataclasses. Nothing here knows
about the database: services hand providers plain values and apply what comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import orjson

from gateway.kit.money import to_major_string
from gateway.kit.signing import constant_time_equal
from gateway.providers.details import MethodDetails

if TYPE_CHECKING:
    from gateway.providers.payouts import PayoutUpdate

CALLBACK_TOKEN_HEADER = "gateway-callback-token"


class Flow(StrEnum):
    REDIRECT = "redirect"
    CLIENT_SECRET = "client_secret"
    MOBILE_PROMPT = "mobile_prompt"
    CASH = "cash"
    DIRECT = "direct"


@dataclass(frozen=True)
class Capabilities:
    currencies: frozenset[str]
    flows: frozenset[Flow]
    refunds: bool = True
    partial_refunds: bool = True
    cancel: bool = True
    # Where a provider knows a closed set of `payment_method` values (the sandbox's test values).
    payment_methods: frozenset[str] | None = None
    # Providers whose callbacks prove nothing by themselves (M-Pesa and MoMo sign nothing; Flutterwave's
    # hash is static; Wave's shared-secret mode): a payment callback is only a hint; the gateway asks
    # the provider (fetch_payment) and applies that answer instead of the callback's.
    query_before_acting: bool = False
    # The body the provider expects in our 200 answer to its webhook.
    webhook_ack: bytes = b'{"received":true}'
    # False where the provider's refund call takes no idempotency key or reference: a refund whose
    # answer was lost is then never sent again (it stays pending, its amount held, for the reconciler
    # or an operator), because a second call could return the money twice.
    idempotent_refunds: bool = True
    # The reconciler first asks about an unsettled payment or refund this long after creation...
    reconcile_after_seconds: float = 120.0
    # ...and a payment still waiting for its customer this long after creation expires (None: never).
    action_ttl_seconds: float | None = 3_600.0
    # How long the customer's prompt (a phone's STK menu) stays open, where shorter than the TTL: the
    # hosted checkout counts down from it. None: the prompt lives as long as the payment may wait.
    prompt_seconds: float | None = None
    # Providers that collect from a phone (M-Pesa, MoMo): (customer.phone in E.164 or None, livemode) ->
    # why the provider cannot take it, or None. Asked before the payment exists: a refusal is a 422
    # `invalid_phone`, and nothing is stored or sent.
    check_phone: Callable[[str | None, bool], str | None] | None = None
    # Amounts (minor units) must be a multiple of this: 100 for a rail that takes whole shillings only.
    amount_multiple_of: int = 1
    # True where create_payment answers without leaving the process (cash, the sandbox): the answer
    # is then applied in the transaction that creates the payment, as nothing outside it can have
    # happened if that transaction never commits. Everywhere else the payment row is committed
    # before the provider is called, so a crash after the call leaves a row to resume.
    in_process: bool = False
    # In-process rails only: what create_payment will answer a request (or the ProviderFailure it
    # will raise), decided without doing anything. A new payment is then written whole, its answer
    # applied, in the one statement of its commit; create_payment is called once the payment exists,
    # so what the rail does besides answering (the sandbox's simulated customer) happens for that
    # payment only, never for a retry. Deterministic: create_payment answers the same.
    answer: Callable[[PaymentRequest], PaymentResult] | None = None
    # Providers whose notifications carry a per-payment secret they issued at the payment's creation
    # (Orange Money's notif_token): (the secret a notification carries, the private data the payment
    # it names keeps (PaymentResult.private) or None) -> whether the notification is authentic. Asked
    # as the notification arrives; a False is a 401 and nothing is stored, asked or moved.
    check_notification: Callable[[str | None, Mapping[str, Any] | None], bool] | None = None


@dataclass(frozen=True)
class Customer:
    name: str | None = None
    email: str | None = None
    phone: str | None = None  # E.164
    location: str | None = None


@dataclass(frozen=True)
class PaymentRequest:
    payment_id: str
    amount: int  # minor units
    currency: str
    livemode: bool
    created_at: datetime
    payment_method: str | None = None
    customer: Customer = field(default_factory=Customer)
    description: str | None = None
    reference: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    return_url: str | None = None

    @property
    def idempotency_key(self) -> str:
        """The key or reference we give the provider: stable across our own retries."""
        return self.payment_id


@dataclass(frozen=True)
class PaymentRef:
    """What a provider needs to find a payment again (sync, cancel, refund)."""

    payment_id: str
    provider_reference: str | None
    amount: int
    currency: str
    livemode: bool
    created_at: datetime
    payment_method: str | None = None
    # The provider's receipt for the money (M-Pesa's MpesaReceiptNumber, which a reversal names).
    receipt: str | None = None
    customer_phone: str | None = None  # E.164, as the merchant gave it
    # What the adapter asked to keep about this attempt (PaymentResult.private), e.g. Orange's pay_token.
    private: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PaymentResult:
    """A provider's word on a payment, already in our vocabulary."""

    status: str  # one of payments.state.Status values, except "pending"
    provider_reference: str | None = None
    next_action: dict[str, Any] | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # What the provider says was charged, for mismatch checks where it tells us.
    amount: int | None = None
    currency: str | None = None
    # How the customer paid, as far as the provider says (None: it says nothing, or not yet).
    payment_method_details: MethodDetails | None = None
    # What the rail must keep about this attempt and never show (Orange's pay_token and its
    # notif_token's digest): stored on the payment (provider_private), handed back in PaymentRef.private.
    private: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str
    payment: PaymentRef
    amount: int  # minor units, in the payment's currency
    reason: str | None = None

    @property
    def idempotency_key(self) -> str:
        return self.refund_id


@dataclass(frozen=True)
class RefundRef:
    refund_id: str
    provider_reference: str | None
    payment: PaymentRef
    amount: int
    created_at: datetime


@dataclass(frozen=True)
class RefundResult:
    status: str  # pending | succeeded | failed
    provider_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """One verified provider notification, mapped to our terms."""

    event_id: str
    event_type: str
    payload: dict[str, Any]
    payment_id: str | None = None
    provider_reference: str | None = None
    result: PaymentResult | None = None
    # A refund's notification names the refund (ours or the provider's id) and its outcome.
    refund_id: str | None = None
    refund_reference: str | None = None
    refund_result: RefundResult | None = None
    # A payout's notification (providers/payouts.py): which payout, and its outcome.
    payout: PayoutUpdate | None = None
    # The per-payment secret the notification carried (Orange's notif_token), for
    # capabilities.check_notification; never part of `payload`, which is stored.
    proof: str | None = field(default=None, repr=False)


def mobile_prompt(phone: str | None, amount: int | None, currency: str | None, ask: str) -> dict[str, Any]:
    """next_action for a push to the customer's phone that waits for their PIN; `ask` is the rail's
    sentence with `{what}` (the amount, or "the payment") and `{where}` (the phone) to fill in."""
    what = "the payment"
    if amount is not None and currency:
        what = f"{currency} {to_major_string(amount, currency)}"
    where = phone or "the customer's phone"
    return {
        "type": "mobile_money_prompt",
        "mobile_money_prompt": {"phone": phone, "message": ask.format(what=what, where=where)},
    }


def payment_failed(code: str, message: str | None) -> PaymentResult:
    """The provider's (or the adapter's) final no to a payment, with our failure code."""
    return PaymentResult(status="failed", failure_code=code, failure_message=message)


def refund_failed(code: str, message: str | None) -> RefundResult:
    return RefundResult(status="failed", failure_code=code, failure_message=message)


class ProviderFailure(Exception):
    """The provider could not give an answer; nothing is known about the payment's fate."""


class ProviderUnavailable(ProviderFailure):
    """No answer about the payment. `outage`: the provider is known not to have taken the request (no
    connection was made, or it answered 5xx or 429 before acting on it); routing
    (payments/routed.py) may send the payment to another provider after such a failure, and after no
    other (a broken connection mid-request or an unreadable 2xx may hide a charge)."""

    def __init__(self, *args: object, outage: bool = False):
        super().__init__(*args)
        self.outage = outage


def is_outage(e: BaseException) -> bool:
    return isinstance(e, ProviderUnavailable) and e.outage


class ProviderTimedOut(ProviderFailure):
    pass


class ProviderMisconfigured(ProviderFailure):
    pass


class WebhookVerificationError(Exception):
    pass


class WebhookPayloadError(Exception):
    pass


def check_callback_token(headers: Mapping[str, str], expected: str | None, provider: str) -> None:
    """For providers that sign nothing (M-Pesa, MoMo): the secret token in the callback URL's path,
    compared in constant time."""
    if expected is None:
        raise WebhookVerificationError(f"no {provider} callback token is configured")
    given = headers.get(CALLBACK_TOKEN_HEADER)
    if given is None or not constant_time_equal(given, expected):
        raise WebhookVerificationError("the callback URL's token is missing or wrong")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by its lower-case name: a plain dict (tests, the sweeper) is not case-insensitive."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def json_object(body: bytes) -> dict[str, Any]:
    """A webhook body as a JSON object (after its signature was checked on the raw bytes)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise WebhookPayloadError("body is not JSON") from e
    if not isinstance(payload, dict):
        raise WebhookPayloadError("body is not a JSON object")
    return payload


@runtime_checkable
class PaymentProvider(Protocol):
    name: str
    capabilities: Capabilities

    def is_configured(self, livemode: bool) -> bool: ...

    async def create_payment(self, request: PaymentRequest) -> PaymentResult: ...

    async def fetch_payment(self, ref: PaymentRef) -> PaymentResult: ...

    async def cancel_payment(self, ref: PaymentRef) -> PaymentResult: ...

    async def refund_payment(self, request: RefundRequest) -> RefundResult: ...

    async def fetch_refund(self, ref: RefundRef) -> RefundResult: ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        """Check authenticity on the raw bytes, then parse; raises WebhookVerificationError/PayloadError.

        For callbacks whose URL carries a secret (POST|PUT /v1/webhooks/{provider}/{token}), the token
        arrives as the CALLBACK_TOKEN_HEADER pseudo-header; the router drops any such header a caller sent.
        """
        ...

    def interpret_webhook(self, payload: dict[str, Any]) -> WebhookEvent:
        """Map a stored (already verified) payload to our terms again, e.g. when the sweeper retries."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class RemotelyVerified(Protocol):
    """A provider whose webhooks are proven only by asking it (PayPal's verify-webhook-signature).
    The inbound service awaits this instead of verify_webhook, on the raw bytes, before anything is
    stored: WebhookVerificationError/PayloadError as verify_webhook raises them; ProviderFailure when
    the provider could not be asked (the delivery is refused with 503 and the provider sends it again)."""

    async def verify_webhook_async(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]: ...


def remote_verifier(adapter: object) -> RemotelyVerified | None:
    """`adapter` if it is RemotelyVerified, asked once per class: isinstance() with a runtime
    protocol walks the protocol's attributes on every call (~1% of a webhook's CPU)."""
    cls = type(adapter)
    remote = _REMOTE_CLASSES.get(cls)
    if remote is None:
        remote = _REMOTE_CLASSES[cls] = issubclass(cls, RemotelyVerified)
    return cast(RemotelyVerified, adapter) if remote else None


_REMOTE_CLASSES: dict[type, bool] = {}
