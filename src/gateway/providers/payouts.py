"""The PayoutProvider protocol: how a rail sends money out (M-Pesa B2C, MoMo Disbursement, transfers).

Read this before writing a payout adapter; the payouts domain (`gateway/payouts/`) is its only caller.

One adapter object, two protocols
---------------------------------
A rail that pays out implements `PayoutProvider` on the SAME class as its `PaymentProvider`
(providers/base.py): one adapter per rail and per account, built by the catalog exactly as today,
with the same `Accounts` (test/live) and the same HTTP client and token cache. Nothing is registered
anywhere else. `payout_side(adapter)` is the one lookup: it answers the adapter itself when it has
the payout members below (a `runtime_checkable` isinstance check), the instrumented payout side when
handed the registry's wrapper, and None for a rail that does not pay out. The directory
(`provider_accounts/directory.Providers.for_new_payout / for_payout`) chooses the adapter exactly as
for payments (the merchant's own account, else the deployment's when accounts are shared) and
returns `payout_side()` of it, so a payout is sent and later queried through one account.

`payouts_configured(livemode)` (not `is_configured`: the payment side already owns that name, and a
rail may take payments without being set up to pay out, e.g. M-Pesa without a B2C initiator) says
whether this mode's credentials for payouts exist. Test mode uses test-mode settings only: a request
with `livemode=False` must never reach a live base URL or live credentials (pick the account with
`self._accounts.get(request.livemode)` as the payment side does).

The calls
---------
* `create_payout(PayoutRequest) -> PayoutResult` is called AT MOST ONCE per payout, ever. The
  payout row is committed (status pending, `submitted_at` set) before the call; the gateway never
  calls it again, not on a retry, a crash, or a timeout. So:
  - answer `PayoutResult(status="pending", provider_reference=...)` when the provider accepted it
    and will report later; "succeeded"/"failed" when it answered with a final outcome;
  - answer `status="failed"` (with a `failure_code`) when the provider REFUSED it for certain
    (validation error, unknown account, insufficient balance): nothing was created there;
  - raise `ProviderTimedOut` / `ProviderUnavailable` (providers/base.py) when the answer is unknown
    (timeout, connection reset, 5xx without a verdict): the payout stays pending and the reconciler
    asks `fetch_payout` later. Never retry a create inside the adapter after bytes may have left;
  - raise `ProviderMisconfigured` for our configuration's fault before anything was sent.
  Send `request.idempotency_key` (our payout id, `po_…`) as the provider's idempotency key or
  reference where it takes one (Paystack `reference`, Flutterwave `reference`, MoMo `externalId` /
  `X-Reference-Id` derived from it, M-Pesa `OriginatorConversationID`): it is stable and lets
  `fetch_payout` find a payout whose create answer was lost.
* `fetch_payout(PayoutRef) -> PayoutResult`: the provider's current word (status query by its
  reference, else by our idempotency key). `pending` while it is in flight. Where the provider has
  no synchronous status query (M-Pesa B2C: the outcome only ever arrives at the ResultURL), say so
  with `payout_capabilities.status_query=False` and answer `pending`: the reconciler then only
  waits for the callback. Answer `failed` with `failure_code="provider_not_found"` only when the
  provider affirmatively says it never received this reference (so nothing can still happen).
* Webhooks and result callbacks arrive where they do today (POST /v1/webhooks/{provider}[/…]):
  the payment side's `verify_webhook` checks them, and `interpret_webhook` maps a payout's
  notification to `WebhookEvent(..., payout=PayoutUpdate(payout_id=..., provider_reference=...,
  result=PayoutResult(...)))` (leave `result`/`refund_result` None). The inbound webhook service
  finds the payout (by our id if the notification echoes it, else by provider reference, always
  within the same provider and account) and applies it through the payouts state machine. Where
  `payout_capabilities.query_before_acting` is True (a callback that proves nothing), the gateway
  calls `fetch_payout` and applies that answer instead of the callback's.

Statuses: a provider only ever says pending, succeeded or failed. `canceled` is ours (a payout
canceled before it was submitted) and never comes from a provider. A payout that succeeded and is
later reversed by the provider is out of scope of this version (log it; no status change).

Amounts are integer minor units as everywhere (`kit/money.py` converts to a provider's decimals);
the adapter checks `payout_capabilities.amount_multiple_of` itself too (M-Pesa: whole shillings).
Destinations arrive validated by shape (below); rail-specific checks (a Kenyan MSISDN for M-Pesa, a
bank code Paystack knows) go in `payout_capabilities.check_destination`, asked BEFORE the payout
exists: a refusal there is a 422 `invalid_destination` and nothing is stored or sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gateway.providers.base import ProviderUnavailable

PayoutStatus = Literal["pending", "succeeded", "failed"]
DestinationType = Literal["mobile_money", "bank_account"]

MOBILE_MONEY = "mobile_money"
BANK_ACCOUNT = "bank_account"


@dataclass(frozen=True)
class PayoutDestination:
    """Where the money goes, as the merchant gave it (validated by shape by the API).

    mobile_money: `phone` in E.164 (+254712345678), `name` optional.
    bank_account: `account_number` and `bank_code` (the rail's own bank code: Paystack/Flutterwave
    bank codes, a NUBAN bank, ...), `name` optional.
    """

    type: str  # DestinationType
    phone: str | None = None
    account_number: str | None = None
    bank_code: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class PayoutCapabilities:
    currencies: frozenset[str]
    destination_types: frozenset[str]
    # Amounts (minor units) must be a multiple of this (M-Pesa: 100, whole shillings).
    amount_multiple_of: int = 1
    # (destination, currency, livemode) -> (failure code, message) why this rail cannot pay it, or None.
    # Asked before the payout exists; a refusal is a 422 and nothing is stored or sent.
    check_destination: Callable[[PayoutDestination, str, bool], tuple[str, str] | None] | None = None
    # False where the provider has no synchronous status query (M-Pesa B2C): fetch_payout answers
    # pending and only a callback settles the payout.
    status_query: bool = True
    # A payout callback proves nothing by itself: apply fetch_payout's answer instead of it.
    query_before_acting: bool = False
    # The reconciler first asks about a pending payout this long after its submission, then with
    # its backoff (GATEWAY_RECONCILER__...).
    reconcile_after_seconds: float = 120.0
    # True where create_payout answers without leaving the process. Reserved: not read yet (the
    # sandbox's payouts take the same commit-then-call path as every rail's).
    in_process: bool = False


@dataclass(frozen=True)
class PayoutRequest:
    payout_id: str  # ours, po_…
    amount: int  # minor units
    currency: str
    destination: PayoutDestination
    livemode: bool
    created_at: datetime
    reference: str | None = None  # the merchant's, shown to the recipient where the rail allows
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """The key or reference we give the provider: our payout id, stable forever."""
        return self.payout_id


@dataclass(frozen=True)
class PayoutRef:
    """What a provider needs to find a payout again (fetch_payout)."""

    payout_id: str
    provider_reference: str | None
    amount: int
    currency: str
    destination: PayoutDestination
    livemode: bool
    created_at: datetime
    submitted_at: datetime | None = None

    @property
    def idempotency_key(self) -> str:
        return self.payout_id


@dataclass(frozen=True)
class PayoutResult:
    """A provider's word on a payout, already in our vocabulary."""

    status: str  # PayoutStatus
    provider_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # What the provider says was paid, where it tells us: a mismatch is refused by the state machine.
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class PayoutUpdate:
    """A verified notification about a payout (WebhookEvent.payout): which one, and its outcome."""

    result: PayoutResult
    payout_id: str | None = None  # ours, where the provider echoes it (our reference / key)
    provider_reference: str | None = None


def payout_failed(code: str, message: str | None) -> PayoutResult:
    return PayoutResult(status="failed", failure_code=code, failure_message=message)


def not_found(
    ref: PayoutRef, wait_seconds: float, never_received: str, not_yet: ProviderUnavailable
) -> PayoutResult:
    """What a payout is that the provider's status query does not know: perhaps not stored there yet,
    so `not_yet` is raised (the reconciler asks again later) until `wait_seconds` have passed since it
    was sent (created, where it was never marked sent); after that it never arrived and nothing can
    come of it: failed, `provider_not_found` (fetch_payout's rule above)."""
    since = ref.submitted_at or ref.created_at
    if datetime.now(UTC) >= since + timedelta(seconds=wait_seconds):
        return payout_failed("provider_not_found", never_received)
    raise not_yet


@runtime_checkable
class PayoutProvider(Protocol):
    name: str
    payout_capabilities: PayoutCapabilities

    def payouts_configured(self, livemode: bool) -> bool: ...

    async def create_payout(self, request: PayoutRequest) -> PayoutResult: ...

    async def fetch_payout(self, ref: PayoutRef) -> PayoutResult: ...


def payout_side(adapter: Any) -> PayoutProvider | None:
    """The payout side of an adapter (or of the registry's instrumented wrapper of one), or None
    for a rail that does not pay out."""
    if adapter is None:
        return None
    side = getattr(adapter, "payout_side", None)
    if callable(side):  # the registry's wrapper: its instrumented payout side
        found: PayoutProvider | None = side()
        return found
    return adapter if isinstance(adapter, PayoutProvider) else None
