"""The commit's statement. A payment inserted with it (Tx.insert): the whole transaction is one
statement, its row goes in as the transaction left it, and a key already taken fails it whole with
Conflict. A row read without a lock and guarded (Tx.read, Tx.guard): the commit writes only if nobody
changed the row since the read, else it fails whole with Changed and writes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import httpx
import pytest

from gateway.db.database import Changed, Conflict
from gateway.kit.ids import new_id
from gateway.payments import repository, state
from gateway.payments.models import PAYMENTS, Payment
from gateway.payments.secrets import new_checkout_id, new_client_secret
from support import Gateway, Merchant

BODY = {"amount": 2500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"}


async def _made(client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant) -> Payment:
    made = await client.post("/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": "first"})
    assert made.status_code == 201
    payment = await repository.get(gateway.ctx.db, merchant.id, False, made.json()["id"])
    assert payment is not None
    return payment


def _another(payment: Payment, key: str) -> Payment:
    pay_id = new_id("pay")
    return dataclasses.replace(
        payment,
        id=pay_id,
        idempotency_key=key,
        status="pending",
        provider_reference=None,
        payment_method_details=None,
        completed_at=None,
        checkout_id=new_checkout_id(),
        client_secret=new_client_secret(pay_id),
    )


async def _counts(gateway: Gateway, merchant: Merchant) -> tuple[int, int]:
    payments = await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id)
    events = await gateway.scalar("SELECT count(*) FROM events WHERE merchant_id = :m", m=merchant.id)
    return payments, events


async def test_the_row_goes_in_as_the_transaction_left_it_in_one_statement(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    row = _another(await _made(client, gateway, merchant), str(uuid.uuid4()))
    before = await _counts(gateway, merchant)
    async with gateway.ctx.db.transaction() as tx:
        repository.insert_at_commit(tx, row)
        state.record_created(tx, row, source="api")
        tx.update(PAYMENTS, row.id, {"status": "succeeded", "provider_reference": "sbx_x"})
        assert row.status == "succeeded"  # the update is on the row the insert will write
        assert tx.transaction is None  # nothing sent yet: no BEGIN, the commit is one statement
    stored = await repository.get(gateway.ctx.db, merchant.id, False, row.id)
    assert stored is not None
    assert (stored.status, stored.provider_reference) == ("succeeded", "sbx_x")
    assert await _counts(gateway, merchant) == (before[0] + 1, before[1] + 1)


async def test_a_key_already_taken_fails_the_commit_whole(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    row = _another(await _made(client, gateway, merchant), "first")
    before = await _counts(gateway, merchant)

    async def insert() -> None:
        async with gateway.ctx.db.transaction() as tx:
            repository.insert_at_commit(tx, row)
            state.record_created(tx, row, source="api")

    with pytest.raises(Conflict) as raised:
        await insert()
    assert raised.value.constraint == repository.KEY_TAKEN
    assert await _counts(gateway, merchant) == before  # neither the payment nor its event


async def test_a_statement_run_in_the_transaction_begins_it(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """A read makes the transaction begin (BEGIN then the read): what it locks is held to the commit,
    and a failure after it rolls everything back."""
    payment = await _made(client, gateway, merchant)
    row = _another(payment, str(uuid.uuid4()))
    before = await _counts(gateway, merchant)

    async def fail_after_a_read() -> None:
        async with gateway.ctx.db.transaction() as tx:
            assert await repository.lock(tx, payment.id) is not None
            assert tx.transaction is not None
            repository.insert_at_commit(tx, row)
            state.record_created(tx, row, source="api")
            raise RuntimeError("after the read, before the commit")

    with pytest.raises(RuntimeError):
        await fail_after_a_read()
    assert await _counts(gateway, merchant) == before


WAITING = {**BODY, "payment_method": "pm_action_never"}


async def _waiting(client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant) -> Payment:
    made = await client.post(
        "/v1/payments", json=WAITING, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert made.status_code == 201
    payment = await repository.get(gateway.ctx.db, merchant.id, False, made.json()["id"])
    assert payment is not None
    assert payment.provider_reference is not None
    return payment


async def _read(gateway: Gateway, payment: Payment) -> tuple[Payment, int]:
    async with gateway.ctx.db.transaction() as tx:
        found = await repository.read_by_provider_reference(
            tx, "sandbox", "", payment.provider_reference or ""
        )
    assert found is not None
    return found


async def _commit_guarded(
    gateway: Gateway, read: Payment, version: int, row: Payment, *, with_update: bool, ran: list[str]
) -> None:
    """A new payment and its event inserted by a transaction guarded by `read`'s version, which also
    moves `read` if `with_update`; `ran` hears of the commit."""
    async with gateway.ctx.db.transaction() as tx:
        tx.guard(PAYMENTS, read.id, version)
        if with_update:
            assert state.move(tx, read, "succeeded", source="webhook")
        repository.insert_at_commit(tx, row)
        state.record_created(tx, row, source="api")
        tx.after_commit(lambda: ran.append("committed"))


async def test_an_unchanged_row_commits_without_a_transaction_of_its_own(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    payment = await _waiting(client, gateway, merchant)
    before = await _counts(gateway, merchant)
    ran: list[str] = []
    async with gateway.ctx.db.transaction() as tx:
        found = await repository.read_by_provider_reference(
            tx, "sandbox", "", payment.provider_reference or ""
        )
        assert found is not None
        read, version = found
        assert read.id == payment.id
        tx.guard(PAYMENTS, read.id, version)
        assert state.move(tx, read, "succeeded", source="webhook")
        tx.after_commit(lambda: ran.append("committed"))
        assert ran == []
    assert ran == ["committed"]
    assert tx.transaction is None  # the read and the commit's statement, each in autocommit
    stored = await repository.get(gateway.ctx.db, merchant.id, False, payment.id)
    assert stored is not None
    assert stored.status == "succeeded"
    assert await _counts(gateway, merchant) == (before[0], before[1] + 1)
    assert (await _read(gateway, payment))[1] != version  # every update is a new row version


@pytest.mark.parametrize("with_update", [True, False])
async def test_a_row_changed_after_the_read_fails_the_commit_whole(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, with_update: bool
) -> None:
    """Guarded with an update of the row, or guarded only (a decision to leave it as it is): either
    way the other writes of the transaction (here a new payment and its event) are not written."""
    payment = await _waiting(client, gateway, merchant)
    row = _another(payment, str(uuid.uuid4()))
    read, version = await _read(gateway, payment)
    await gateway.execute("UPDATE payments SET description = 'changed meanwhile' WHERE id = :p", p=payment.id)
    before = await _counts(gateway, merchant)

    ran: list[str] = []
    with pytest.raises(Changed):
        await _commit_guarded(gateway, read, version, row, with_update=with_update, ran=ran)
    assert ran == []  # what it would have logged is not said
    assert await _counts(gateway, merchant) == before
    stored = await repository.get(gateway.ctx.db, merchant.id, False, payment.id)
    assert stored is not None
    assert (stored.status, stored.description) == ("requires_action", "changed meanwhile")


@pytest.mark.parametrize("with_update", [True, False])
async def test_a_row_being_changed_during_the_commit_makes_it_wait_then_fail_whole(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, with_update: bool
) -> None:
    """Another transaction has changed the row and not committed yet: the guarded commit waits for it
    (its UPDATE, or its check's FOR SHARE), then finds another version and writes nothing."""
    payment = await _waiting(client, gateway, merchant)
    row = _another(payment, str(uuid.uuid4()))
    read, version = await _read(gateway, payment)
    before = await _counts(gateway, merchant)

    async with gateway.ctx.db.connection() as other:
        changing = other.transaction()
        await changing.start()
        await other.execute("UPDATE payments SET description = 'changing' WHERE id = $1", payment.id)
        committing = asyncio.create_task(
            _commit_guarded(gateway, read, version, row, with_update=with_update, ran=[])
        )
        await asyncio.sleep(0.3)
        assert not committing.done()  # waiting on the row the other transaction holds
        await changing.commit()
    with pytest.raises(Changed):
        await committing
    assert await _counts(gateway, merchant) == before
    stored = await repository.get(gateway.ctx.db, merchant.id, False, payment.id)
    assert stored is not None
    assert (stored.status, stored.description) == ("requires_action", "changing")


async def test_a_guard_only_commits_when_the_row_is_unchanged(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    payment = await _waiting(client, gateway, merchant)
    row = _another(payment, str(uuid.uuid4()))
    read, version = await _read(gateway, payment)
    before = await _counts(gateway, merchant)
    ran: list[str] = []
    await _commit_guarded(gateway, read, version, row, with_update=False, ran=ran)
    assert ran == ["committed"]
    assert await _counts(gateway, merchant) == (before[0] + 1, before[1] + 1)
