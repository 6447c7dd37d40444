"""A payment nobody confirmed expires: the reconciler moves it to `expired` (with its event) once it is
older than GATEWAY_RECONCILER__UNCONFIRMED_EXPIRE_AFTER_SECONDS, and it can then never be confirmed."""

from __future__ import annotations

import httpx

from checkout_api.shop import Shop, confirm, create, new_shop
from gateway.reconciler.service import Reconciler
from gateway.settings import ReconcilerSettings
from support import Gateway, assert_problem


def reconciler(gateway: Gateway, after: float = 86_400.0) -> Reconciler:
    settings = ReconcilerSettings(run_in_process=False, unconfirmed_expire_after_seconds=after)
    return Reconciler(gateway.ctx.db, gateway.ctx.registry, settings)


async def age(gateway: Gateway, payment_id: str, seconds: float) -> None:
    await gateway.execute(
        "UPDATE payments SET created_at = created_at - make_interval(secs => :s) WHERE id = :id",
        id=payment_id,
        s=seconds,
    )


async def trail(client: httpx.AsyncClient, shop: Shop, payment_id: str) -> list[tuple[str, str]]:
    r = await client.get(f"/v1/payments/{payment_id}/events", headers=shop.secret.auth)
    assert r.status_code == 200
    return [(e["type"], e["source"]) for e in reversed(r.json()["data"])]


async def test_an_abandoned_payment_expires_once_and_is_never_confirmed(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    shop = await new_shop(gateway)
    old, young = await create(client, shop), await create(client, shop)
    await age(gateway, old["id"], 86_400 + 5)
    await age(gateway, young["id"], 86_400 - 600)

    assert await reconciler(gateway).expire_unconfirmed() >= 1
    r = await client.get(f"/v1/payments/{old['id']}", headers=shop.secret.auth)
    assert (r.json()["status"], r.json()["completed_at"] is not None) == ("expired", True)
    assert await trail(client, shop, old["id"]) == [
        ("payment.created", "api"),
        ("payment.expired", "reconciler"),
    ]
    r = await client.get(f"/v1/payments/{young['id']}", headers=shop.secret.auth)
    assert r.json()["status"] == "requires_payment_method"
    assert await trail(client, shop, young["id"]) == [("payment.created", "api")]

    # A second round finds nothing more of this shop's to expire: one event, not two.
    await reconciler(gateway).expire_unconfirmed()
    assert len(await trail(client, shop, old["id"])) == 2

    calls_before = gateway.calls("sandbox.create_payment")
    r = await confirm(client, shop.publishable, old, {"provider": "sandbox", "payment_method": "pm_success"})
    body = assert_problem(r, 409, "payment_already_confirmed")
    assert body["status_now"] == "expired"
    assert gateway.calls("sandbox.create_payment") == calls_before
    assert (
        await gateway.scalar("SELECT count(*) FROM payment_attempts WHERE payment_id = :id", id=old["id"])
        == 0
    )


async def test_the_time_allowed_is_a_setting_and_confirmed_payments_never_expire_this_way(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    shop = await new_shop(gateway)
    waiting, confirmed = await create(client, shop), await create(client, shop)
    r = await confirm(
        client, shop.publishable, confirmed, {"provider": "sandbox", "payment_method": "pm_success"}
    )
    assert (r.status_code, r.json()["status"]) == (200, "succeeded")
    for p in (waiting, confirmed):
        await age(gateway, p["id"], 7_200)

    await reconciler(gateway, after=3_600).expire_unconfirmed()
    statuses = {
        p["id"]: (await client.get(f"/v1/payments/{p['id']}", headers=shop.secret.auth)).json()["status"]
        for p in (waiting, confirmed)
    }
    assert statuses == {waiting["id"]: "expired", confirmed["id"]: "succeeded"}
