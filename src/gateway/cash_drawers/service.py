"""Cash drawer sessions: open one per drawer with its float, close it with the count (expected and
over/short worked out under the session's lock), list and read them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from gateway.cash_drawers import repository, state
from gateway.cash_drawers.models import CashSession
from gateway.cash_drawers.repository import DrawerAlreadyOpen
from gateway.cash_drawers.schemas import CashSessionClose, CashSessionFilters, CashSessionOpen
from gateway.db.database import Database
from gateway.errors import CashSessionAlreadyOpen, CashSessionClosed, IdempotencyKeyReused, NotFound
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page
from gateway.merchants.service import Principal

PREFIX = "cds"  # "cs_" is the hosted checkout's id (payments/secrets.py)


def _reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        "This Idempotency-Key was already used with a different request; use a new key."
    )


class CashDrawerService:
    def __init__(self, db: Database):
        self.db = db

    async def open(
        self,
        principal: Principal,
        drawer: str,
        body: CashSessionOpen,
        *,
        idempotency_key: str,
        fingerprint: str,
    ) -> tuple[CashSession, bool]:
        """The new session, and whether the answer repeats an earlier request's (found in PostgreSQL)."""
        existing = await repository.find_by_key(self.db, principal.merchant_id, idempotency_key)
        if existing is not None:
            return self._retry(existing, fingerprint), True
        now = datetime.now(UTC)
        row = CashSession(
            id=new_id(PREFIX),
            merchant_id=principal.merchant_id,
            livemode=principal.livemode,
            drawer=drawer,
            status=state.OPEN,
            currency=body.currency,
            opening_float=body.opening_float,
            counted=None,
            payments_total=None,
            refunds_total=None,
            expected=None,
            difference=None,
            opened_by=principal.key_id,
            opened_by_name=body.opened_by,
            closed_by=None,
            closed_by_name=None,
            opened_at=now,
            closed_at=None,
            metadata_=body.metadata,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
            close_idempotency_key=None,
            close_request_fingerprint=None,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.db.transaction() as tx:
                session = await repository.insert(tx, row)
                if session is not None:
                    state.record_opened(tx, session, source="api")
        except DrawerAlreadyOpen:
            session = None
        if session is not None:
            return session, False
        # A request with this key got there first (a retry), or the drawer has an open session.
        raced = await repository.find_by_key(self.db, principal.merchant_id, idempotency_key)
        if raced is not None:
            return self._retry(raced, fingerprint), True
        raise await self._already_open(principal, drawer)

    async def _already_open(self, principal: Principal, drawer: str) -> CashSessionAlreadyOpen:
        current = await repository.open_of_drawer(self.db, principal.merchant_id, principal.livemode, drawer)
        return CashSessionAlreadyOpen(
            f"Drawer {drawer!r} already has an open session: close it before opening another.",
            param="drawer",
            cash_session=current.id if current is not None else None,
        )

    @staticmethod
    def _retry(session: CashSession, fingerprint: str) -> CashSession:
        if session.request_fingerprint != fingerprint:
            raise _reused()
        return session

    async def close(
        self,
        principal: Principal,
        drawer: str,
        session_id: str,
        body: CashSessionClose,
        *,
        idempotency_key: str,
        fingerprint: str,
    ) -> tuple[CashSession, bool]:
        """The closed session, and whether it was closed by an earlier request with this key."""
        session = await self.get(principal, drawer, session_id)
        if session.status == state.CLOSED:
            return self._closed_already(session, idempotency_key, fingerprint), True
        async with self.db.transaction() as tx:
            # FOR UPDATE: waits for every cash payment and refund holding the session (FOR SHARE)
            # to commit; from here on, none can name it (they would read it closed).
            locked = await repository.lock(tx, session.id)
            assert locked is not None
            if locked.status == state.CLOSED:  # another close won the row meanwhile
                closed_meanwhile = locked
            else:
                closed_meanwhile = None
                payments_total, refunds_total = await repository.totals(tx, locked.id)
                state.close(
                    tx,
                    locked,
                    counted=body.counted,
                    payments_total=payments_total,
                    refunds_total=refunds_total,
                    closed_by=principal.key_id,
                    closed_by_name=body.closed_by,
                    idempotency_key=idempotency_key,
                    fingerprint=fingerprint,
                    source="api",
                )
        if closed_meanwhile is not None:
            return self._closed_already(closed_meanwhile, idempotency_key, fingerprint), True
        return locked, False

    @staticmethod
    def _closed_already(session: CashSession, key: str, fingerprint: str) -> CashSession:
        """A closed session: the answer to a retry of the close that closed it, else 409."""
        if session.close_idempotency_key == key:
            if session.close_request_fingerprint != fingerprint:
                raise _reused()
            return session
        raise CashSessionClosed(
            f"Cash session {session.id!r} is already closed (at {session.closed_at:%Y-%m-%dT%H:%M:%SZ}).",
            param="id",
        )

    async def get(self, principal: Principal, drawer: str, session_id: str) -> CashSession:
        session = await repository.get(self.db, principal.merchant_id, principal.livemode, drawer, session_id)
        if session is None:
            raise NotFound(f"No such cash session of drawer {drawer!r}: {session_id!r}", param="id")
        return session

    async def list(
        self, principal: Principal, filters: CashSessionFilters, page: Page
    ) -> tuple[Sequence[CashSession], bool]:
        return await repository.list_sessions(
            self.db, principal.merchant_id, principal.livemode, filters, page
        )
