"""Which rails' callbacks prove an outcome and which are only hints: docs and code agree, and a hint
moves nothing but what the provider's own answer says.

Flutterwave's hints are tested in tests/providers/test_flutterwave_callbacks.py, M-Pesa's and MoMo's
in their provider files; here Wave's shared-secret mode, whose Bearer header is the secret itself.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import respx

from drivers.wave import RETURN_URL, event, session, session_id
from gateway.providers.wave.adapter import WaveProvider
from support import WAVE_API, WAVE_WEBHOOK_SECRET, Gateway, Merchant, configured_app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers"
RAILS = {
    "Stripe": "stripe",
    "Paystack": "paystack",
    "Flutterwave": "flutterwave",
    "M-Pesa": "mpesa",
    "MTN MoMo": "momo",
    "Wave": "wave",
    "Sandbox": "sandbox",
    "Cash": "cash",
    "PayPal": "paypal",
    "Orange Money": "orange",
    "Airtel Money": "airtel",
    "Razorpay": "razorpay",
}


def proof_table() -> dict[str, list[str]]:
    """docs/providers/README.md's "Callbacks: proof or hint" rows, by provider name."""
    text = (DOCS / "README.md").read_text()
    section = text.split("### Callbacks: proof or hint", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in RAILS:
            rows[RAILS[cells[0]]] = cells[1:]
    return rows


def test_the_docs_say_for_every_rail_whether_its_callbacks_are_queried_as_the_code_does(
    gateway: Gateway,
) -> None:
    rows = proof_table()
    registry = gateway.ctx.registry
    assert sorted(rows) == registry.names()
    for name in registry.names():
        provider = registry.get(name)
        assert provider is not None
        verdict, _, queried = rows[name]
        # The test gateway runs Wave with signing_secret, the mode its cell names first.
        says_yes = re.match(r"yes\b", queried) is not None
        assert says_yes == provider.capabilities.query_before_acting, (name, queried)
        assert verdict in ("proof", "hint", "proof / hint", "—"), (name, verdict)
        assert "## Callbacks: proof or hint" in (DOCS / f"{name}.md").read_text(), name


async def test_wave_queries_before_acting_only_in_shared_secret_mode(gateway: Gateway) -> None:
    wave = gateway.ctx.settings.wave
    signing = WaveProvider(wave, 2)
    shared = WaveProvider(wave.model_copy(update={"webhook_auth": "shared_secret"}), 2)
    assert (signing.capabilities.query_before_acting, shared.capabilities.query_before_acting) == (
        False,
        True,
    )
    await signing.aclose()
    await shared.aclose()


async def test_a_wave_shared_secret_webhook_is_a_hint_and_the_session_s_state_is_applied(
    gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    base = gateway.ctx.settings
    settings = base.model_copy(
        update={"wave": base.wave.model_copy(update={"webhook_auth": "shared_secret"})}
    )
    sid = session_id()

    def opened(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        return httpx.Response(
            200,
            json=session(
                sid, amount=sent["amount"], currency="XOF", client_reference=sent["client_reference"]
            ),
        )

    provider_http.post(f"{WAVE_API}/v1/checkout/sessions").mock(side_effect=opened)
    async with configured_app(settings, "wave-shared") as app:
        r = await app.post(
            "/v1/payments",
            json={"amount": 5_000, "currency": "XOF", "provider": "wave", "return_url": RETURN_URL},
            headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert (r.status_code, r.json()["status"], r.json()["provider_reference"]) == (
            201,
            "requires_action",
            sid,
        )
        pid = r.json()["id"]

        def wave_says(checkout: str, paid: str) -> dict[str, Any]:
            return session(
                sid,
                amount="5000",
                currency="XOF",
                client_reference=pid,
                checkout_status=checkout,
                payment_status=paid,
            )

        asked = provider_http.get(f"{WAVE_API}/v1/checkout/sessions/{sid}")
        headers = {"content-type": "application/json", "authorization": f"Bearer {WAVE_WEBHOOK_SECRET}"}
        claim = event("checkout.session.completed", wave_says("complete", "succeeded"))

        # Wave's session is still open: the claimed success moves nothing.
        asked.respond(200, json=wave_says("open", "processing"))
        hook = await app.post("/v1/webhooks/wave", content=claim, headers=headers)
        assert hook.status_code == 200, hook.text  # processed before the ASGI call returns
        assert asked.call_count == 1
        eid = json.loads(claim)["id"]
        assert (
            await gateway.scalar(
                "SELECT outcome FROM inbound_webhooks WHERE provider = 'wave' AND provider_event_id = :e",
                e=eid,
            )
            == "no_change"
        )
        assert await gateway.scalar("SELECT status FROM payments WHERE id = :p", p=pid) == "requires_action"
        assert (
            await gateway.scalar(
                "SELECT count(*) FROM events WHERE payment_id = :p AND source = 'webhook'", p=pid
            )
            == 0
        )

        # Now Wave's session says paid: the next event settles it, by that answer.
        asked.respond(200, json=wave_says("complete", "succeeded"))
        again = event("checkout.session.completed", wave_says("complete", "succeeded"))
        assert (await app.post("/v1/webhooks/wave", content=again, headers=headers)).status_code == 200
        assert asked.call_count == 2
        assert await gateway.scalar("SELECT status FROM payments WHERE id = :p", p=pid) == "succeeded"
        assert await gateway.scalar(
            "SELECT json_agg(type ORDER BY id) FROM events WHERE payment_id = :p AND source = 'webhook'",
            p=pid,
        ) == ["payment.succeeded"]
