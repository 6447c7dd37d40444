"""Routing with fallback: a payment made with `"provider": "auto"` (or without a provider, by a
merchant with routing rules) goes to the first provider its merchant's rules choose
(gateway.routing_rules), and on to the next one when a provider could not take it.

Only an outage (`providers.base.is_outage`) moves a payment on: no connection was made, or the
provider answered 5xx or 429 before acting on it. A decline is the payment's answer; a timeout, a
broken connection or an unreadable answer may hide a charge at the provider, so the payment stays
pending there for the reconciler, and no other provider is asked.

Each provider is an attempt (payment_attempts; attempt n > 1 reaches its provider under
`rails.attempt_key`). The move to the next one is committed (attempt n closed as failed
`provider_unavailable`, attempt n + 1 recorded, the payment's rail changed, `payment.rerouted`
appended) before the next provider hears of the payment: a crash before that commit leaves the payment
on the provider that failed, whose own key a retry resumes; a crash after it leaves it on the next
one, which a retry resumes under that attempt's key. A resumed attempt never falls back: the
earlier request's call may have reached the provider, whatever it answers now. So no two providers
are ever sent a payment that one of them may have taken, and an answer about an earlier attempt is
stale (webhooks/inbound)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from gateway.db.database import Database
from gateway.errors import GatewayError, NoRoute
from gateway.merchants.service import Principal
from gateway.payments import repository, state
from gateway.payments.answers import Rendered, provider_error, render_payment
from gateway.payments.drafts import attempt_row, new_row, next_attempt_row
from gateway.payments.models import Payment
from gateway.payments.rails import check_rail, rail_request
from gateway.payments.requests import PaymentCreate
from gateway.payments.starts import apply_answer, start_in_tx
from gateway.provider_accounts.directory import Providers
from gateway.providers.base import PaymentProvider, ProviderFailure, is_outage
from gateway.routing_rules.service import AUTO, route, rules_of

log = structlog.get_logger("gateway.payments.routed")

UNAVAILABLE = "provider_unavailable"
CURRENT = "current"


@dataclass(frozen=True)
class Leg:
    """A provider of a route, as a new payment is started through it (the merchant's account or None)."""

    provider: PaymentProvider
    account_id: str | None


@dataclass(frozen=True)
class Plan:
    route: list[str]
    first: Leg


def resumable(payment: Payment) -> bool:
    """Whether a retry of the create that made `payment` may call its current provider again (under
    the same key): it is pending, on the attempt its create started (the bare create's, or the
    routing's latest; a confirm's attempt is the confirm's to resume)."""
    if payment.status != state.S.PENDING:
        return False
    if payment.attempt == 0:
        return True
    routing = payment.routing
    return (
        routing is not None
        and bool(routing["attempts"])
        and routing["attempts"][-1]["number"] == payment.attempt
    )


class Routing:
    def __init__(self, db: Database, registry: Providers, lease: timedelta):
        self.db = db
        self.registry = registry
        self.lease = lease

    async def leg(
        self,
        principal: Principal,
        name: str,
        *,
        amount: int,
        currency: str,
        phone: str | None,
        payment_method: str | None,
    ) -> Leg | GatewayError:
        """The provider `name` as this payment would start through it, or why it cannot take it
        (the checks a create naming it makes: its account, mode, currency, phone, amount, method)."""
        try:
            provider, account_id = await self.registry.for_new_payment(
                principal.merchant_id, name, principal.livemode
            )
            check_rail(
                provider,
                amount=amount,
                currency=currency,
                phone=phone,
                payment_method=payment_method,
                livemode=principal.livemode,
            )
        except GatewayError as e:
            return e
        return Leg(provider, account_id)

    async def plan(self, principal: Principal, body: PaymentCreate) -> Plan | None:
        """The route of a new payment: the providers its merchant's rules choose that can take it.
        None for a payment without a provider from a merchant without rules (it waits for a
        confirm, as before routing); no_route (nothing stored, nothing sent) when nothing fits."""
        rules = await rules_of(self.db, principal.merchant_id, principal.livemode)
        if not rules and body.provider != AUTO:
            return None
        phone = body.customer.phone if body.customer else None
        chosen = route(
            rules,
            amount=body.amount,
            currency=body.currency,
            phone=phone,
            method_type=body.payment_method_type,
        )
        usable: list[str] = []
        first: Leg | None = None
        refused: list[dict[str, str]] = []
        for name in chosen:
            leg = await self.leg(
                principal,
                name,
                amount=body.amount,
                currency=body.currency,
                phone=phone,
                payment_method=body.payment_method,
            )
            if isinstance(leg, Leg):
                usable.append(name)
                first = first or leg
            else:
                refused.append({"provider": name, "code": leg.code, "detail": leg.detail})
        if first is None:
            raise NoRoute(
                "No routing rule holds for this payment."
                if not chosen
                else "The providers your routing rules chose cannot take this payment.",
                param="provider",
                refused=refused,
            )
        return Plan(usable, first)

    async def create(
        self,
        principal: Principal,
        body: PaymentCreate,
        plan: Plan,
        *,
        idempotency_key: str,
        fingerprint: str,
        request_id: str | None,
        resume: Callable[[], Awaitable[Payment]],
    ) -> Rendered:
        """A routed create: the payment (attempt 1, on the route's first provider) and its event in
        one commit, then each provider along the route until one answers or none is left."""
        first = plan.first
        row = new_row(
            principal, body, idempotency_key, fingerprint, first.provider, self.lease, first.account_id
        )
        row.provider = first.provider.name
        row.attempt = 1
        row.routing = {"route": plan.route, "attempts": [_attempt(1, first.provider.name)]}
        failure: ProviderFailure | None = None
        async with self.db.transaction() as tx:
            payment = await repository.insert(tx, row)
            if payment is not None:
                state.record_created(tx, payment, source="api")
                await repository.insert_attempt(tx, attempt_row(payment, 1, payment.created_at))
                if first.provider.capabilities.in_process:
                    failure = await start_in_tx(tx, first.provider, payment)
        called, resumed = True, False
        leg = first
        if payment is None:  # a retry of this key: its payment, resumed on its current provider
            payment = await resume()
            if not resumable(payment) or payment.routing is None:
                return render_payment(payment, request_id, created=True, replayed=True, client_secret=True)
            try:
                current = await self.registry.for_payment(payment.provider, payment.provider_account_id)
            except ProviderFailure as e:  # its account's credentials cannot be opened
                raise provider_error(e, payment, then="Nothing was sent to the provider.") from e
            assert current is not None
            leg = Leg(current, payment.provider_account_id)
            called, resumed = False, True
        elif not first.provider.capabilities.in_process:
            called = False
        payment = await self._drive(principal, payment, leg, failure, called=called, resumed=resumed)
        return render_payment(payment, request_id, created=True, client_secret=True)

    async def _drive(
        self,
        principal: Principal,
        payment: Payment,
        leg: Leg,
        failure: ProviderFailure | None,
        *,
        called: bool,
        resumed: bool = False,
    ) -> Payment:
        """Starts the payment's current attempt (unless `called`: an in-process rail answered in the
        transaction that started it, `failure` its error) and follows the route on each outage.

        `resumed`: the attempt was started by an earlier request that never recorded how its call
        ended (a timeout, a crash mid-call): the provider may hold that call's charge whatever it
        answers now, so an outage now ends here (pending, for a retry or the reconciler) and moves
        nothing to the next provider."""
        while True:
            if not called:
                if leg.provider.capabilities.in_process:
                    async with self.db.transaction() as tx:
                        locked = await repository.lock(tx, payment.id)
                        assert locked is not None
                        payment = locked
                        if payment.status != state.S.PENDING:
                            return payment
                        failure = await start_in_tx(tx, leg.provider, payment)
                else:
                    try:
                        result = await leg.provider.create_payment(rail_request(payment))
                    except ProviderFailure as e:
                        failure = e
                    else:
                        return await apply_answer(self.db, payment.id, result)
            if failure is None:
                return payment
            nxt = await self._next(principal, payment) if is_outage(failure) and not resumed else None
            if nxt is None:
                if not leg.provider.capabilities.in_process:
                    async with self.db.transaction() as tx:
                        await repository.release_provider_lease(tx, payment.id)
                raise provider_error(failure, payment) from failure
            moved = await self._reroute(payment, failure, nxt)
            if moved is None:  # another request moved the payment meanwhile: its state is the answer
                found = await repository.get(self.db, payment.merchant_id, payment.livemode, payment.id)
                assert found is not None
                return found
            payment, failure, called = moved
            leg, resumed = nxt, False

    async def _next(self, principal: Principal, payment: Payment) -> Leg | None:
        """The next provider of the payment's route not yet tried that can take it now."""
        routing = payment.routing
        assert routing is not None
        tried = {a["provider"] for a in routing["attempts"]}
        for name in routing["route"]:
            if name in tried:
                continue
            leg = await self.leg(
                principal,
                name,
                amount=payment.amount,
                currency=payment.currency,
                phone=payment.customer_phone,
                payment_method=payment.payment_method,
            )
            if isinstance(leg, Leg):
                return leg
            log.info("route_skipped", payment_id=payment.id, provider=name, code=leg.code)
        return None

    async def _reroute(
        self, payment: Payment, failure: ProviderFailure, nxt: Leg
    ) -> tuple[Payment, ProviderFailure | None, bool] | None:
        """Commits the move to `nxt` (see the module's docstring); an in-process `nxt` answers inside
        the same transaction. None if the payment is no longer on the attempt that failed."""
        async with self.db.transaction() as tx:
            locked = await repository.lock(tx, payment.id)
            assert locked is not None
            if (
                locked.status != state.S.PENDING
                or locked.attempt != payment.attempt
                or locked.provider != payment.provider
            ):
                return None
            failed_provider = locked.provider
            assert failed_provider is not None
            assert locked.routing is not None
            await repository.close_attempt(
                tx,
                locked.id,
                locked.attempt,
                status=state.S.FAILED,
                failure_code=UNAVAILABLE,
                failure_message=f"{failed_provider} could not take the payment: on to {nxt.provider.name}.",
            )
            now = datetime.now(UTC)
            number = locked.attempt + 1
            attempts = [
                {**a, "outcome": UNAVAILABLE} if a["number"] == locked.attempt else a
                for a in locked.routing["attempts"]
            ]
            routing = {
                "route": locked.routing["route"],
                "attempts": [*attempts, _attempt(number, nxt.provider.name)],
            }
            await repository.insert_attempt(
                tx,
                next_attempt_row(
                    locked.id, number, nxt.provider.name, locked.payment_method, nxt.account_id, now
                ),
            )
            changed: dict[str, Any] = {
                "provider": nxt.provider.name,
                "provider_account_id": nxt.account_id,
                "provider_reference": None,
                "provider_receipt": None,
                "payment_method_details": None,
                "attempt": number,
                "attempted_at": now,
                "provider_lease_until": now + self.lease,
                "next_reconcile_at": now
                + timedelta(seconds=nxt.provider.capabilities.reconcile_after_seconds),
                "reconcile_attempts": 0,
                "routing": routing,
            }
            state.reroute(
                tx,
                locked,
                changed,
                source="api",
                rerouted={
                    "from_provider": failed_provider,
                    "to_provider": nxt.provider.name,
                    "attempt": number,
                    "reason": UNAVAILABLE,
                },
            )
            log.warning(
                "payment_provider_unavailable",
                payment_id=locked.id,
                provider=failed_provider,
                error=str(failure),
            )
            next_failure = None
            if nxt.provider.capabilities.in_process:
                next_failure = await start_in_tx(tx, nxt.provider, locked)
        return locked, next_failure, nxt.provider.capabilities.in_process


def _attempt(number: int, provider: str) -> dict[str, Any]:
    return {"number": number, "provider": provider, "outcome": CURRENT}
