"""Merchants' webhook endpoints: register, change, rotate the secret, read the delivery log, retry."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from gateway.db.database import Database
from gateway.errors import InvalidRequest, NotFound, TooManyEndpoints, UnsafeWebhookUrl
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page
from gateway.kit.ssrf import Resolver, UnsafeUrl, check_url, system_resolver
from gateway.merchants.service import Principal
from gateway.webhooks.outbound import repository
from gateway.webhooks.outbound.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from gateway.webhooks.outbound.outbox import MAX_ENDPOINTS
from gateway.webhooks.outbound.schemas import EndpointCreate, EndpointUpdate

log = structlog.get_logger("gateway.webhooks.outbound")

ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class EndpointService:
    def __init__(self, db: Database, *, allow_private_targets: bool, resolver: Resolver = system_resolver):
        self.db = db
        self.allow_private = allow_private_targets
        self.resolver = resolver

    async def _check_url(self, principal: Principal, url: str) -> None:
        if principal.livemode and not url.startswith("https://"):
            raise InvalidRequest(
                "Live-mode endpoints must use https.",
                errors=[
                    {"loc": ["body", "url"], "msg": "https required in live mode", "type": "https_required"}
                ],
            )
        if self.allow_private:
            return
        try:
            await check_url(url, self.resolver)
        except UnsafeUrl as e:
            raise UnsafeWebhookUrl(f"The endpoint URL is not allowed: {e}.", param="url") from e

    async def create(self, principal: Principal, body: EndpointCreate) -> WebhookEndpoint:
        await self._check_url(principal, body.url)
        now = datetime.now(UTC)
        endpoint = WebhookEndpoint(
            id=new_id("we"),
            merchant_id=principal.merchant_id,
            livemode=principal.livemode,
            url=body.url,
            description=body.description,
            enabled_events=body.enabled_events,
            enabled=True,
            disabled_reason=None,
            secret=new_secret(),
            previous_secret=None,
            previous_secret_expires_at=None,
            created_at=now,
            updated_at=now,
            deleted_at=None,
        )
        async with self.db.transaction() as tx:
            # Counted under a lock on the merchant's row: two creates cannot both take the last place.
            await tx.execute("SELECT 1 FROM merchants WHERE id = $1 FOR UPDATE", principal.merchant_id)
            if (
                await repository.count_endpoints(tx, principal.merchant_id, principal.livemode)
                >= MAX_ENDPOINTS
            ):
                raise TooManyEndpoints(f"At most {MAX_ENDPOINTS} webhook endpoints per mode.")
            await repository.create_endpoint(tx, endpoint)
        return endpoint

    async def get(self, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        endpoint = await repository.get_endpoint(
            self.db, principal.merchant_id, principal.livemode, endpoint_id
        )
        if endpoint is None:
            raise NotFound(f"No such webhook endpoint: {endpoint_id!r}", param="id")
        return endpoint

    async def list_endpoints(self, principal: Principal, page: Page) -> tuple[list[WebhookEndpoint], bool]:
        return await repository.list_endpoints(self.db, principal.merchant_id, principal.livemode, page)

    async def _change(
        self, principal: Principal, endpoint_id: str, changes: Callable[[WebhookEndpoint], dict[str, Any]]
    ) -> WebhookEndpoint:
        """Applies `changes(endpoint)` to the endpoint under its row lock."""
        async with self.db.transaction() as tx:
            endpoint = await repository.get_endpoint(
                tx, principal.merchant_id, principal.livemode, endpoint_id, for_update=True
            )
            if endpoint is None:
                raise NotFound(f"No such webhook endpoint: {endpoint_id!r}", param="id")
            repository.save_endpoint(tx, endpoint, changes(endpoint) | {"updated_at": datetime.now(UTC)})
        return endpoint

    async def update(self, principal: Principal, endpoint_id: str, body: EndpointUpdate) -> WebhookEndpoint:
        if body.url is not None:
            await self._check_url(principal, body.url)
        given = body.model_dump(exclude_unset=True)
        changes = {k: v for k, v in given.items() if v is not None or k == "description"}
        if given.get("enabled") is True:
            changes["disabled_reason"] = None
        return await self._change(principal, endpoint_id, lambda _: changes)

    async def delete(self, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        return await self._change(
            principal, endpoint_id, lambda _: {"deleted_at": datetime.now(UTC), "enabled": False}
        )

    async def rotate_secret(self, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        """A new secret; the old one keeps signing beside it for 24 h, so receivers can switch over."""
        return await self._change(
            principal,
            endpoint_id,
            lambda e: {
                "previous_secret": e.secret,
                "previous_secret_expires_at": datetime.now(UTC) + ROTATION_OVERLAP,
                "secret": new_secret(),
            },
        )

    async def list_deliveries(
        self, principal: Principal, endpoint_id: str, page: Page
    ) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], bool]:
        await self.get(principal, endpoint_id)
        rows, has_more = await repository.list_deliveries(self.db, endpoint_id, page)
        attempts = await repository.attempts(self.db, [d.id for d in rows])
        return [(d, attempts[d.id]) for d in rows], has_more

    async def retry(
        self, principal: Principal, delivery_id: str
    ) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
        """Queues the delivery to be sent now (again, if it had ended); repeating it changes nothing more."""
        delivery = await repository.get_delivery(
            self.db, principal.merchant_id, principal.livemode, delivery_id
        )
        if delivery is None:
            raise NotFound(f"No such webhook delivery: {delivery_id!r}", param="id")
        now = datetime.now(UTC)
        if delivery.status != "pending" or (delivery.next_attempt_at or now) > now:
            await repository.requeue(self.db, delivery.id)
            delivery = await repository.get_delivery(
                self.db, principal.merchant_id, principal.livemode, delivery_id
            )
            assert delivery is not None
        return delivery, (await repository.attempts(self.db, [delivery.id]))[delivery.id]
