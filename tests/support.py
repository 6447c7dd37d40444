"""Helpers the tests share (the fixtures that build them live in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook

from gateway.context import AppContext
from gateway.db.database import positional
from gateway.embedded import EmbeddedServers
from gateway.main import create_app
from gateway.settings import DeliverySettings, Settings
from gateway.webhooks.outbound.worker import DeliveryWorker

# The session gateway's secrets keyring (GATEWAY_SECRETS_KEYS), made once with new_key_text("test").
SECRETS_KEYS = "test:L-wBMM1xfQ5fRX3RhUF78-k4yjKiV-KPGbKl05Ugu64"
# The session gateway's GATEWAY_ADMIN_TOKEN (tests/management/).
ADMIN_TOKEN = "admin-token-of-the-test-suite-0123456789"
# GATEWAY_JWT_KEYS of the test gateways: access tokens are signed with it (kid "test-1").
JWT_KID = "test-1"
JWT_SECRET = "gateway-test-jwt-signing-secret-0123456789"
JWT_KEYS = f"{JWT_KID}:{JWT_SECRET}"

SANDBOX_SECRET = "whsec_dGVzdC1zYW5kYm94LXNlY3JldC1mb3ItdGhlLXN1aXRl"
ACTION_DELAY = 0.4
RETRY_SCHEDULE = [0.0, 0.3, 0.3, 0.3, 0.3]

# Test-mode credentials the test gateway is configured with; provider HTTP goes to these hosts,
# where respx answers as the providers do (shapes from docs/providers/).
STRIPE_API = "https://stripe.test"
STRIPE_SECRET_KEY = "sk_test_51Gateway0000000000000000000000000"
STRIPE_WEBHOOK_SECRET = "whsec_test_stripe_endpoint_secret_0123456789"
PAYSTACK_API = "https://paystack.test"
PAYSTACK_SECRET_KEY = "sk_test_paystack0000000000000000000000000000"
FLUTTERWAVE_API = "https://flutterwave.test"
FLUTTERWAVE_SECRET_KEY = "FLWSECK_TEST-00000000000000000000000000000000-X"
FLUTTERWAVE_SECRET_HASH = "flw-test-secret-hash-0123456789"
WAVE_API = "https://wave.test"
WAVE_API_KEY = "wave_sn_test_gateway0000000000000000000000000000"
WAVE_WEBHOOK_SECRET = "wave_sn_WHS_gatewaytestsecret0123456789abcdef"

MOMO_API = "https://momo.test"
MOMO_SUBSCRIPTION_KEY = "0f6e3c1c5b3a4f0e9d2c8b7a6f5e4d3c"
MOMO_API_USER = "2d3c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"
MOMO_API_KEY = "8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
MOMO_DISBURSEMENT_SUBSCRIPTION_KEY = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
MOMO_DISBURSEMENT_API_USER = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"
MOMO_DISBURSEMENT_API_KEY = "1f2e3d4c5b6a79880716a5b4c3d2e1f0"
MOMO_CALLBACK_TOKEN = "momo-cb-4kJ9xQ2vR7tW1yZ5nB8mC3"

# M-Pesa: Daraja's public sandbox shortcode and passkey (docs/providers/mpesa.md).
MPESA_API = "https://mpesa.test"
MPESA_CONSUMER_KEY = "mpesa-test-consumer-key-0123456789"
MPESA_CONSUMER_SECRET = "mpesa-test-consumer-secret-9876543210"
MPESA_SHORTCODE = "174379"
MPESA_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
MPESA_INITIATOR = "apiop37"
MPESA_SECURITY_CREDENTIAL = "c2VjdXJpdHktY3JlZGVudGlhbC1vZi10aGUtdGVzdC1pbml0aWF0b3I="
MPESA_CALLBACK_TOKEN = "mpesa-cb-Vq7Lm2Xp9Rt4Kw8Zs3Nd6Hy1"

# Orange Money Web Payment: an Orange Developer app and a WebPay merchant key (docs/providers/orange.md).
ORANGE_API = "https://orange.test"
ORANGE_CLIENT_ID = "orange-test-client-id-0123456789ab"
ORANGE_CLIENT_SECRET = "orange-test-client-secret-9876543210"
ORANGE_MERCHANT_KEY = "e9afd305"
# Airtel Money: a UAT application collecting in Uganda (docs/providers/airtel.md).
AIRTEL_API = "https://airtel.test"
AIRTEL_CLIENT_ID = "c02e9e46-db9d-4faf-b91a-94f88bbe688c"
AIRTEL_CLIENT_SECRET = "airtel-test-client-secret-ab672211-4197"
AIRTEL_CALLBACK_TOKEN = "airtel-cb-Hs4Tq8Wm2Zp6Kv9Rb3Xn7Ld5"
AIRTEL_CALLBACK_HASH_KEY = "airtel-callback-private-key-0123456789abcdef"
# The disbursing wallet's PIN as the settings hold it (an RSA-2048 ciphertext, Base64); the payout
# rail tests encrypt a PIN of their own with a key they hold (payouts/airtel_fake.py).
AIRTEL_DISBURSEMENT_PIN = (
    "yBm31KIYNLzrI1i0WzHiC3TnPnfbOHvpkgO7QIcXJ3vWQaMLInWyNWOyA2qRo3HlbuXjVC27+ppzdzaCCplmPmVPo6E4pjrcdq"
    "TjL+xCGFIcyZLTHQUFzwTbb4piy+Egs6LPVZL5omN9SKa0qWE17c+5/AottOF640T6rSq4u2M1BLE5bLxeBN1FRUNTslajZqmt"
    "obwSKxtxfG7CJV9iXzCjfIvU746pWzbX42eRcMhuG0595wl8WUtJ240vaa3fqzNrfUUJ4HRrjVXXaMI0r+8jQii3b/pxLCNt5O"
    "jBjutiUesqd5EINocS0kayiP2ihME0Y03qPawSHwIZWpw7lw=="
)


@dataclass
class Gateway:
    base_url: str
    app: FastAPI
    # The test gateway's own delivery worker, run here (not in the app) so a test can pause it.
    _worker: DeliveryWorker | None = None
    _worker_stop: asyncio.Event | None = None
    _worker_task: asyncio.Task[None] | None = None

    def start_worker(self, settings: DeliverySettings | None = None) -> None:
        """The delivery worker, with the gateway's delivery settings unless a test brings its own."""
        self._worker = DeliveryWorker(self.ctx.db, settings or self.ctx.settings.delivery)
        self._worker_stop = asyncio.Event()
        self._worker_task = asyncio.create_task(self._worker.run(self._worker_stop))

    async def stop_worker(self) -> None:
        if self._worker_stop is not None and self._worker_task is not None and self._worker is not None:
            self._worker_stop.set()
            await self._worker_task
            await self._worker.aclose()
        self._worker = self._worker_stop = self._worker_task = None

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.ctx
        return ctx

    def calls(self, name: str) -> int:
        return self.ctx.registry.calls[name]

    async def scalar(self, sql: str, **params: Any) -> Any:
        """The first column of the first row (or None) of `sql`, with `:name` parameters."""
        text, names = positional(sql)
        return await self.ctx.db.fetchval(text, *(params[n] for n in names))

    async def execute(self, sql: str, **params: Any) -> str:
        text, names = positional(sql)
        return await self.ctx.db.execute(text, *(params[n] for n in names))


@dataclass
class Merchant:
    id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@contextlib.asynccontextmanager
async def configured_app(settings: Settings, name: str = "gateway-b") -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway app on the same servers, built by create_app with `settings` (the session
    gateway's, changed as a test needs), driven in process through httpx.ASGITransport."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}") as c,
    ):
        yield c


async def others_wait(gateway: Gateway, payment_id: str) -> None:
    """Every other test's unsettled payment, refund and payout waits a day for its next question, so
    the reconciler asks about `payment_id` (and its refunds) alone."""
    for table, mine in (("payments", "id = :p"), ("refunds", "payment_id = :p"), ("payouts", "false")):
        await gateway.execute(
            f"UPDATE {table} SET next_reconcile_at = now() + interval '1 day' "
            f"WHERE next_reconcile_at < now() + interval '1 day' AND NOT ({mine})",
            p=payment_id,
        )


def with_sandbox(
    gateway: Gateway, **changes: Any
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """A second gateway app whose sandbox differs as a test needs: `action_delay_seconds` (how long
    its simulated customer takes), `send_webhooks=False` (the test delivers them when it chooses), ...
    Its webhooks still go to the session gateway's address, like any provider's would."""
    base = gateway.ctx.settings
    return configured_app(base.model_copy(update={"sandbox": base.sandbox.model_copy(update=changes)}))


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Polls an async predicate (for work the gateway does after replying)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def signed(body: bytes, secret: str = SANDBOX_SECRET, when: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers made by the `standardwebhooks` package (a peer, not our signer)."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    ts = when or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(ts.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, ts, body.decode()),
    }


PROBLEM_JSON = "application/problem+json"


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The shared shape of every error answer; returns the parsed problem."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = r.json()
    assert problem["code"] == code, problem
    assert problem["status"] == status
    assert problem["type"].endswith("/" + code)
    assert problem["title"]
    assert problem["detail"]
    assert r.headers.get("x-request-id")
    assert problem["request_id"] == r.headers["x-request-id"]
    return problem


def servers_env(servers: EmbeddedServers) -> dict[str, str]:
    """The environment of a `gateway` process the tests start: the session's servers, reached as
    the session's gateway reaches them (through PgBouncer under `--pgbouncer`)."""
    return {
        "GATEWAY_DATABASE_URL": servers.database_url,
        "GATEWAY_DATABASE__PGBOUNCER": "true" if servers.pgbouncer is not None else "false",
        "GATEWAY_REDIS_URL": servers.redis.url,
    }
