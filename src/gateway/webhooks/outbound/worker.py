"""The delivery loop: claim due deliveries, POST them signed, record every attempt, schedule retries.

Any number of workers, in any number of processes and machines, share one queue in PostgreSQL:
a claim is a short lease taken with FOR UPDATE SKIP LOCKED, so no delivery is sent by two at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import structlog

from gateway import metrics
from gateway.db.database import Database
from gateway.events.schemas import event_out
from gateway.kit.signing import standard_webhook_signature
from gateway.kit.ssrf import UnsafeUrl, check_url
from gateway.settings import DeliverySettings
from gateway.webhooks.outbound import repository
from gateway.webhooks.outbound.repository import Job

log = structlog.get_logger("gateway.webhooks.delivery")

MAX_RETRY_AFTER = 86_400.0
RESPONSE_BODY_LIMIT = 2_000


def _retry_after(response: httpx.Response | None) -> float:
    if response is None or "retry-after" not in response.headers:
        return 0.0
    value = response.headers["retry-after"].strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        settings: DeliverySettings,
        http: httpx.AsyncClient | None = None,
    ):
        self.db = db
        self.settings = settings
        self.http = http or httpx.AsyncClient(timeout=settings.timeout_seconds, follow_redirects=False)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._in_flight: set[str] = set()

    async def run_once(self) -> int:
        """Claims one batch and sends it; returns how many were sent."""
        lease = timedelta(seconds=self.settings.timeout_seconds + 30)
        ids = await repository.claim_due(self.db, self.settings.batch_size, datetime.now(UTC) + lease)
        if not ids:
            return 0
        jobs = await repository.jobs(self.db, ids)
        self._in_flight.update(ids)
        try:
            await asyncio.gather(*(self._deliver(job) for job in jobs))
        finally:
            self._in_flight.difference_update(ids)
        return len(jobs)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("delivery_worker_started", worker=self.name)
        try:
            while not stop.is_set():
                try:
                    sent = await self.run_once()
                except Exception:
                    log.exception("delivery_round_failed")
                    sent = 0
                if sent == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.poll_interval_seconds)
        finally:
            await self.release()
            log.info("delivery_worker_stopped", worker=self.name)

    async def release(self) -> None:
        """Gives back claims that are still in flight (shutdown), so another worker sends them now."""
        if not self._in_flight:
            return
        await repository.release(self.db, sorted(self._in_flight))

    async def aclose(self) -> None:
        await self.http.aclose()

    def _headers(self, job: Job, body: bytes) -> dict[str, str]:
        ts = int(time.time())
        msg_id = job.event.id  # the same across retries, so receivers can drop duplicates
        signatures = [standard_webhook_signature(job.endpoint.secret, msg_id, ts, body)]
        previous, expires = job.endpoint.previous_secret, job.endpoint.previous_secret_expires_at
        if previous and expires and expires > datetime.now(UTC):
            signatures.append(standard_webhook_signature(previous, msg_id, ts, body))
        return {
            "content-type": "application/json",
            "user-agent": "gateway-webhooks/1",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": " ".join(signatures),
        }

    async def _deliver(self, job: Job) -> None:
        delivery, endpoint = job.delivery, job.endpoint
        structlog.contextvars.bind_contextvars(delivery_id=delivery.id, endpoint_id=endpoint.id)
        status_code: int | None = None
        response: httpx.Response | None = None
        error: str | None = None
        body_text: str | None = None
        started = time.perf_counter()
        if not endpoint.enabled or endpoint.deleted_at is not None:
            error = "endpoint disabled"
        else:
            body = event_out(job.event).model_dump_json().encode()
            try:
                if not self.settings.allow_private_targets:
                    await check_url(endpoint.url)  # again now: DNS may have changed since creation
                response = await self.http.post(endpoint.url, content=body, headers=self._headers(job, body))
                status_code = response.status_code
                body_text = response.text[:RESPONSE_BODY_LIMIT]
            except UnsafeUrl as e:
                error = f"refused: {e}"
            except httpx.TimeoutException:
                error = "timeout"
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"[:500]
        duration_ms = int((time.perf_counter() - started) * 1000)

        attempt_no = delivery.attempts + 1
        schedule = self.settings.retry_schedule
        next_at: datetime | None = None
        disable = False
        if status_code is not None and 200 <= status_code < 300:
            status = "succeeded"
        elif status_code == 410:
            status, disable = "failed", True
        elif error == "endpoint disabled" or attempt_no >= len(schedule):
            status = "failed"
        else:
            status = "pending"
            delay = max(schedule[attempt_no], _retry_after(response))
            next_at = datetime.now(UTC) + timedelta(seconds=delay)
        async with self.db.transaction() as tx:
            await repository.record_attempt(
                tx,
                delivery.id,
                status_code=status_code,
                duration_ms=duration_ms,
                response_body=body_text,
                error=error,
                worker=self.name,
            )
            await repository.finish_attempt(
                tx, delivery.id, status=status, status_code=status_code, next_attempt_at=next_at
            )
            if disable:
                await repository.disable_endpoint(tx, endpoint.id, "gone")
        metrics.delivery_attempt("retrying" if status == "pending" else status)
        log.info(
            "webhook_delivery_attempt",
            status=status,
            status_code=status_code,
            error=error,
            attempt=attempt_no,
            ms=duration_ms,
        )
