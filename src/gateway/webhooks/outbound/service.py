"""Merchants' webhook endpoints: register, change, rotate the secret, read the delivery log, retry."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import InvalidRequest, NotFound, TooManyEndpoints, UnsafeWebhookUrl
from gateway.events.repository import MAX_ENDPOINTS
from gateway.kit.pagination import Page
from gateway.kit.ssrf import Resolver, UnsafeUrl, check_url, system_resolver
from gateway.merchants.service import Principal
from gateway.webhooks.outbound.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from gateway.webhooks.outbound.repository import DeliveryRepository, EndpointRepository
from gateway.webhooks.outbound.schemas import EndpointCreate, EndpointUpdate

log = structlog.get_logger("gateway.webhooks.outbound")

ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class EndpointService:
    def __init__(
        self, session: AsyncSession, *, allow_private_targets: bool, resolver: Resolver = system_resolver
    ):
        self.session = session
        self.endpoints = EndpointRepository(session)
        self.delivery_repo = DeliveryRepository(session)
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
        if await self.endpoints.count(principal.merchant_id, principal.livemode) >= MAX_ENDPOINTS:
            raise TooManyEndpoints(f"At most {MAX_ENDPOINTS} webhook endpoints per mode.")
        endpoint = await self.endpoints.create(
            {
                "merchant_id": principal.merchant_id,
                "livemode": principal.livemode,
                "url": body.url,
                "description": body.description,
                "enabled_events": body.enabled_events,
                "enabled": True,
                "secret": new_secret(),
            }
        )
        await self.session.commit()
        return endpoint

    async def get(
        self, principal: Principal, endpoint_id: str, *, for_update: bool = False
    ) -> WebhookEndpoint:
        endpoint = await self.endpoints.get(
            principal.merchant_id, principal.livemode, endpoint_id, for_update=for_update
        )
        if endpoint is None:
            raise NotFound(f"No such webhook endpoint: {endpoint_id!r}", param="id")
        return endpoint

    async def list_endpoints(
        self, principal: Principal, page: Page
    ) -> tuple[Sequence[WebhookEndpoint], bool]:
        return await self.endpoints.list(principal.merchant_id, principal.livemode, page)

    async def update(self, principal: Principal, endpoint_id: str, body: EndpointUpdate) -> WebhookEndpoint:
        if body.url is not None:
            await self._check_url(principal, body.url)
        endpoint = await self.get(principal, endpoint_id, for_update=True)
        changes = body.model_dump(exclude_unset=True)
        for field, value in changes.items():
            if value is not None or field == "description":
                setattr(endpoint, field, value)
        if changes.get("enabled") is True:
            endpoint.disabled_reason = None
        endpoint.updated_at = datetime.now(UTC)
        await self.session.commit()
        return endpoint

    async def delete(self, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        endpoint = await self.get(principal, endpoint_id, for_update=True)
        endpoint.deleted_at = endpoint.updated_at = datetime.now(UTC)
        endpoint.enabled = False
        await self.session.commit()
        return endpoint

    async def rotate_secret(self, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        """A new secret; the old one keeps signing beside it for 24 h, so receivers can switch over."""
        endpoint = await self.get(principal, endpoint_id, for_update=True)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = datetime.now(UTC) + ROTATION_OVERLAP
        endpoint.secret = new_secret()
        endpoint.updated_at = datetime.now(UTC)
        await self.session.commit()
        return endpoint

    async def list_deliveries(
        self, principal: Principal, endpoint_id: str, page: Page
    ) -> tuple[Sequence[tuple[WebhookDelivery, list[WebhookAttempt]]], bool]:
        await self.get(principal, endpoint_id)
        rows, has_more = await self.delivery_repo.list_for_endpoint(endpoint_id, page)
        attempts = await self.delivery_repo.attempts([d.id for d in rows])
        return [(d, attempts[d.id]) for d in rows], has_more

    async def retry(
        self, principal: Principal, delivery_id: str
    ) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
        """Queues the delivery to be sent now (again, if it had ended); repeating it changes nothing more."""
        delivery = await self.delivery_repo.get(principal.merchant_id, principal.livemode, delivery_id)
        if delivery is None:
            raise NotFound(f"No such webhook delivery: {delivery_id!r}", param="id")
        if delivery.status != "pending" or (delivery.next_attempt_at or datetime.now(UTC)) > datetime.now(
            UTC
        ):
            await self.delivery_repo.requeue(delivery.id)
            await self.session.commit()
            delivery = await self.delivery_repo.get(principal.merchant_id, principal.livemode, delivery_id)
            assert delivery is not None
        return delivery, (await self.delivery_repo.attempts([delivery.id]))[delivery.id]
