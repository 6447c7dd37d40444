"""The floor: the unavoidable work of the gateway's hot paths, with no framework beyond Starlette.

Not part of the product. `make bench` runs it beside the gateway, under the same uvicorn settings, on
the same PostgreSQL and Redis, and reports every gateway figure as a ratio to this one. What it does
per request is the least any gateway keeping our guarantees must do:

- POST /v1/payments: authenticate the bearer key (cached in process), validate the body with the
  gateway's own `PaymentCreate` model (so validation costs the same on both sides), one Redis
  `SET NX EX` that claims the Idempotency-Key and stores the answer, then one PostgreSQL transaction
  inserting a payment row and an event row (the gateway's tables, real columns) through a raw asyncpg
  pool. A repeated key is answered from Redis (idempotent replay).
- POST /floor/replay: the Redis-only route replay is compared with: authenticate, fingerprint the
  body, claim the key or read what it holds in one round trip (a Lua `SET NX EX` else `GET`, as the
  gateway does), and answer the stored bytes.
- GET /v1/payments/{id}: one `SELECT` by primary key (scoped to the merchant and mode), rendered as
  the gateway renders a payment.
- GET /v1/payments?limit=…&status=…: one `SELECT` of a page (the limit + 1 newest rows of the merchant,
  mode and status, the limit written into the text as the gateway writes it), each row rendered as
  the GET renders it: what the list's target is taken against (bench/README.md, "Targets").
- GET /floor/json: a bare JSON answer (the framework's own cost).
- The asynchronous path's floor: a create with `pm_action_success` inserts the payment waiting
  (`requires_action`) and, after its commit, PUBLISHes it for the bench's stand-in provider
  (bench/provider.py), which 0.2 s later POSTs the sandbox's signed webhook to /floor/webhook: the
  Standard Webhooks signature verified on the raw bytes (the sandbox's scheme and secret), then one
  transaction: the payment's `UPDATE … WHERE status = 'requires_action'` and its event.

Configured by FLOOR_DATABASE_URL (any postgresql:// URL) and FLOOR_REDIS_URL; run it with
`uvicorn bench.floor:create_app --factory`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from pydantic import ValidationError
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.idempotency.store import CLAIM_OR_READ
from gateway.idempotency.store import fingerprint as request_fingerprint
from gateway.kit.ids import new_id
from gateway.kit.signing import verify_standard_webhook
from gateway.payments.requests import PaymentCreate
from gateway.payments.secrets import new_checkout_id, new_client_secret
from gateway.providers.sandbox.settings import SandboxSettings

IDEMPOTENCY_TTL = 86_400
# The asynchronous path (bench/provider.py): creates with this test value wait for a webhook, which
# the stand-in provider sends, signed as the sandbox signs, to WEBHOOK_PATH.
ASYNC_METHOD = "pm_action_success"
PROVIDER_CHANNEL = "floor:payments"
WEBHOOK_PATH = "/floor/webhook"
WEBHOOK_SECRET = SandboxSettings().webhook_secret.get_secret_value()
JSON = "application/json"
CHECKOUT_URL = "http://127.0.0.1:8000/checkout"  # the payments' checkout_url (the base does not matter)
PROBLEM = "application/problem+json"

# What the gateway reads to show a payment (gateway.payments.schemas.SHOWN), in its order.
_PAYMENT_COLUMNS = (
    "id, amount, amount_refunded, currency, status, provider, payment_method, payment_method_details, "
    "customer_name, customer_email, customer_phone, customer_location, description, reference, metadata, "
    "livemode, provider_reference, next_action, failure_code, failure_message, return_url, client_secret, "
    "checkout_id, locale, allow_retries, payment_link_id, cash_session, created_at, updated_at, "
    "completed_at, routing"
)
INSERT_PAYMENT = """
INSERT INTO payments (id, merchant_id, livemode, amount, currency, status, provider, payment_method,
    customer_name, customer_email, customer_phone, customer_location, description, reference, metadata,
    return_url, provider_reference, idempotency_key, request_fingerprint, created_at, updated_at,
    completed_at, client_secret, checkout_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21,
    $22, $23)
"""
INSERT_EVENT = """
INSERT INTO events (id, merchant_id, livemode, type, payment_id, previous_status, status, source, data,
    created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
# The webhook's state change: only a payment still waiting, and only for the money it was made for.
COMPLETE_PAYMENT = f"""
UPDATE payments SET status = $2, updated_at = $3, completed_at = $3
WHERE id = $1 AND status = 'requires_action' AND amount = $4
RETURNING merchant_id, {_PAYMENT_COLUMNS}
"""
SELECT_PAYMENT = (
    f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
)
_LIST = (
    f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE merchant_id = $1 AND livemode = $2 AND status = $3 "
    "ORDER BY id DESC LIMIT {}"
)
SELECT_KEY = "SELECT merchant_id, livemode FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"


def _problem(status: int, code: str, detail: str) -> Response:
    body = orjson.dumps({"type": "about:blank", "status": status, "code": code, "detail": detail})
    return Response(body, status_code=status, media_type=PROBLEM)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def _jsonb_encode(value: Any) -> str:
    return _dumps(value).decode()


async def _reset(conn: Any) -> None:
    # As the gateway's pool: no UNLISTEN/RESET ALL round trip on every release (nothing here sets them).
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=orjson.loads, schema="pg_catalog")


def _payment_json(row: Any, *, secret: bool) -> dict[str, Any]:
    """A payment as the gateway's API shows it (same fields, same order; stored JSON as it comes,
    where the gateway puts its keys in the API's order). `secret`: the client secret, which answers
    to a secret key show and events do not."""
    return {
        "id": row["id"],
        "object": "payment",
        "amount": row["amount"],
        "amount_refunded": row["amount_refunded"],
        "currency": row["currency"],
        "status": row["status"],
        "provider": row["provider"],
        "payment_method": row["payment_method"],
        "payment_method_details": row["payment_method_details"],
        "customer": {
            "name": row["customer_name"],
            "email": row["customer_email"],
            "phone": row["customer_phone"],
            "location": row["customer_location"],
        },
        "description": row["description"],
        "reference": row["reference"],
        "metadata": row["metadata"],
        "livemode": row["livemode"],
        "provider_reference": row["provider_reference"],
        "next_action": row["next_action"],
        "failure_code": row["failure_code"],
        "failure_message": row["failure_message"],
        "return_url": row["return_url"],
        "client_secret": row["client_secret"] if secret else None,
        "checkout_url": f"{CHECKOUT_URL}/{row['checkout_id']}",
        "locale": row["locale"],
        "allow_retries": row["allow_retries"],
        "payment_link": row["payment_link_id"],
        "cash_session": row["cash_session"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "completed_at": row["completed_at"],
        "routing": row["routing"],
    }


def _answer(raw: bytes | str, fingerprint: str) -> Response:
    stored = orjson.loads(raw)
    if stored["fp"] != fingerprint:
        return _problem(422, "idempotency_key_reused", "This key was used with another request.")
    response = Response(stored["body"].encode(), status_code=stored["status"], media_type=stored["mt"])
    response.headers["Idempotent-Replayed"] = "true"
    return response


class Floor:
    def __init__(self, pool: Any, redis: Redis) -> None:
        self.pool = pool
        self.redis = redis
        self._keys: dict[str, tuple[str, bool]] = {}

    async def principal(self, request: Request) -> tuple[str, bool] | None:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        key_hash = hashlib.sha256(token.encode()).hexdigest()
        hit = self._keys.get(key_hash)
        if hit is None:
            row = await self.pool.fetchrow(SELECT_KEY, key_hash)
            if row is None:
                return None
            hit = self._keys[key_hash] = (row["merchant_id"], row["livemode"])
        return hit

    @staticmethod
    def _redis_key(merchant_id: str, livemode: bool, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"floor:idem:{merchant_id}:{'live' if livemode else 'test'}:{digest}"

    async def _replay(self, rkey: str, fingerprint: str) -> Response:
        raw = await self.redis.get(rkey)
        if raw is None:
            return _problem(409, "idempotency_key_in_use", "The key was released; retry.")
        return _answer(raw, fingerprint)

    async def create_payment(self, request: Request) -> Response:
        principal = await self.principal(request)
        if principal is None:
            return _problem(401, "invalid_api_key", "Send a valid secret key.")
        merchant_id, livemode = principal
        key = request.headers.get("idempotency-key")
        if not key or len(key) > 255:
            return _problem(400, "idempotency_key_missing", "Send an Idempotency-Key header.")
        raw = await request.body()
        try:
            body = PaymentCreate.model_validate_json(raw)
        except ValidationError as e:
            return _problem(422, "validation_error", str(e.error_count()) + " invalid fields")
        fingerprint = request_fingerprint("POST", request.url.path, raw)

        now = datetime.now(UTC)
        payment_id = new_id("pay")
        customer = body.customer
        # The asynchronous path's create: the payment waits for the provider's webhook (below).
        waiting = body.payment_method == ASYNC_METHOD
        status = "requires_action" if waiting else "succeeded"
        row: dict[str, Any] = {
            "id": payment_id,
            "amount": body.amount,
            "amount_refunded": 0,
            "currency": body.currency,
            "status": status,
            "provider": body.provider,
            "payment_method": body.payment_method,
            "customer_name": customer.name if customer else None,
            "customer_email": customer.email if customer else None,
            "customer_phone": customer.phone if customer else None,
            "customer_location": customer.location if customer else None,
            "description": body.description,
            "reference": body.reference,
            "metadata": body.metadata,
            "livemode": livemode,
            "provider_reference": "sbx_" + payment_id.split("_", 1)[1],
            "payment_method_details": None,
            "next_action": None,
            "failure_code": None,
            "failure_message": None,
            "return_url": body.return_url,
            "client_secret": new_client_secret(payment_id),
            "checkout_id": new_checkout_id(),
            "locale": None,
            "allow_retries": True,
            "payment_link_id": None,
            "cash_session": None,
            "routing": None,
            "created_at": now,
            "updated_at": now,
            "completed_at": None if waiting else now,
        }
        payment = _payment_json(row, secret=False)  # the event's, and the live message's
        answer = _dumps(payment | {"client_secret": row["client_secret"]})
        # One round trip claims the key and stores the answer; a failed insert releases it below.
        record = orjson.dumps(
            {"fp": fingerprint, "done": True, "status": 201, "body": answer.decode(), "mt": JSON}
        )
        rkey = self._redis_key(merchant_id, livemode, key)
        if not await self.redis.set(rkey, record, nx=True, ex=IDEMPOTENCY_TTL):
            return await self._replay(rkey, fingerprint)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    INSERT_PAYMENT,
                    payment_id,
                    merchant_id,
                    livemode,
                    body.amount,
                    body.currency,
                    status,
                    body.provider,
                    body.payment_method,
                    row["customer_name"],
                    row["customer_email"],
                    row["customer_phone"],
                    row["customer_location"],
                    body.description,
                    body.reference,
                    body.metadata,
                    body.return_url,
                    row["provider_reference"],
                    key,
                    fingerprint,
                    now,
                    None if waiting else now,
                    row["client_secret"],
                    row["checkout_id"],
                )
                await conn.execute(
                    INSERT_EVENT,
                    new_id("evt"),
                    merchant_id,
                    livemode,
                    f"payment.{status}",
                    payment_id,
                    None,
                    status,
                    "api",
                    payment,
                    now,
                )
        except BaseException:
            await self.redis.delete(rkey)
            raise
        if waiting:
            # How the bench's stand-in provider (bench/provider.py) hears of the payment, as it hears
            # of the gateway's from its live events: one PUBLISH, after the commit.
            message = {"type": "payment.requires_action", "data": {"object": payment}}
            await self.redis.publish(PROVIDER_CHANNEL, _dumps(message))
        return Response(answer, status_code=201, media_type=JSON)

    async def webhook(self, request: Request) -> Response:
        """The asynchronous path's floor: a provider's signed webhook (the sandbox's scheme and
        secret) verified on the raw bytes, then one state change and its event in one transaction.
        No inbox row: a repeat finds the payment no longer waiting and changes nothing."""
        raw = await request.body()
        h = request.headers
        msg_id, ts, sig = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
        if not (msg_id and ts and sig) or not verify_standard_webhook(
            WEBHOOK_SECRET, msg_id, ts, raw, sig, now=int(time.time())
        ):
            return _problem(401, "webhook_signature_invalid", "The signature could not be verified.")
        data = orjson.loads(raw)["data"]
        status = data["status"]
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(COMPLETE_PAYMENT, data["payment_id"], status, now, data["amount"])
            if row is not None:
                await conn.execute(
                    INSERT_EVENT,
                    new_id("evt"),
                    row["merchant_id"],
                    row["livemode"],
                    f"payment.{status}",
                    row["id"],
                    "requires_action",
                    status,
                    "webhook",
                    _payment_json(row, secret=False),
                    now,
                )
        return Response(b'{"received":true}', media_type=JSON)

    async def replay(self, request: Request) -> Response:
        principal = await self.principal(request)
        if principal is None:
            return _problem(401, "invalid_api_key", "Send a valid secret key.")
        key = request.headers.get("idempotency-key")
        if not key or len(key) > 255:
            return _problem(400, "idempotency_key_missing", "Send an Idempotency-Key header.")
        # Fingerprinted as the create it replays, so a key made by POST /v1/payments matches.
        fingerprint = request_fingerprint("POST", "/v1/payments", await request.body())
        rkey = self._redis_key(*principal, key)
        lock = orjson.dumps({"fp": fingerprint, "done": False})
        # The least a replay needs: one round trip that claims the key or reads what it holds.
        raw = await self.redis.eval(CLAIM_OR_READ, 1, rkey, lock, 60)
        if raw is None:
            await self.redis.delete(rkey)  # nothing stored under this key: this route does no work
            return _problem(404, "nothing_to_replay", "No stored answer under this key.")
        return _answer(raw, fingerprint)

    async def get_payment(self, request: Request) -> Response:
        principal = await self.principal(request)
        if principal is None:
            return _problem(401, "invalid_api_key", "Send a valid secret key.")
        payment_id = request.path_params["payment_id"]
        if len(payment_id) > 40:
            return _problem(404, "resource_missing", "No such payment.")
        row = await self.pool.fetchrow(SELECT_PAYMENT, payment_id, *principal)
        if row is None:
            return _problem(404, "resource_missing", "No such payment.")
        return Response(_dumps(_payment_json(row, secret=True)), media_type=JSON)

    async def list_payments(self, request: Request) -> Response:
        principal = await self.principal(request)
        if principal is None:
            return _problem(401, "invalid_api_key", "Send a valid secret key.")
        query = request.query_params
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            limit = 0
        status = query.get("status")
        if not 1 <= limit <= 100 or status is None:
            return _problem(422, "validation_error", "Send a limit (1-100) and a status.")
        rows = await self.pool.fetch(_LIST.format(limit + 1), *principal, status)
        page = {
            "object": "list",
            "data": [_payment_json(r, secret=True) for r in rows[:limit]],
            "has_more": len(rows) > limit,
        }
        return Response(_dumps(page), media_type=JSON)


async def bare_json(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type=JSON)


def _asyncpg_dsn(url: str) -> str:
    # The harness passes the SQLAlchemy URL it gives the gateway; asyncpg wants plain postgresql://.
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def create_app() -> Starlette:
    database_url = _asyncpg_dsn(os.environ["FLOOR_DATABASE_URL"])
    redis_url = os.environ["FLOOR_REDIS_URL"]
    # The gateway's pool is 10 + 10 overflow per worker (settings.database); the floor gets the same.
    pool_min = int(os.environ.get("FLOOR_POOL_MIN", "10"))
    pool_max = int(os.environ.get("FLOOR_POOL_MAX", "20"))
    floor: Floor | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal floor
        pool = await asyncpg.create_pool(
            database_url,
            min_size=pool_min,
            max_size=pool_max,
            init=_init_connection,
            reset=_reset,
            server_settings={"application_name": "floor"},
        )
        redis = Redis.from_url(redis_url)
        floor = Floor(pool, redis)
        try:
            yield
        finally:
            await redis.aclose()
            await pool.close()

    async def create_payment(request: Request) -> Response:
        assert floor is not None
        return await floor.create_payment(request)

    async def replay(request: Request) -> Response:
        assert floor is not None
        return await floor.replay(request)

    async def get_payment(request: Request) -> Response:
        assert floor is not None
        return await floor.get_payment(request)

    async def webhook(request: Request) -> Response:
        assert floor is not None
        return await floor.webhook(request)

    async def list_payments(request: Request) -> Response:
        assert floor is not None
        return await floor.list_payments(request)

    return Starlette(
        routes=[
            Route("/v1/payments", create_payment, methods=["POST"]),
            Route("/v1/payments", list_payments, methods=["GET"]),
            Route("/v1/payments/{payment_id}", get_payment, methods=["GET"]),
            Route("/floor/replay", replay, methods=["POST"]),
            Route("/floor/json", bare_json, methods=["GET"]),
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
