"""The one HTTP call every HTTP adapter makes (Hyperswitch's ConnectorCommon, in Python).

What is the same for every provider lives here: one pooled client per adapter with the gateway's
provider timeout, JSON bodies, the mapping of transport trouble onto the gateway's provider errors
(a timeout may have reached the provider: ProviderTimedOut; anything else that says nothing:
ProviderUnavailable; rejected credentials: ProviderMisconfigured, logged loudly without the secret),
and the timing of each request. What a provider's answer means stays in its adapter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar, Unpack
from urllib.parse import urlencode

import httpx
import orjson
import structlog

from gateway.providers.accounts import Accounts, mode_name
from gateway.providers.base import (
    ProviderMisconfigured,
    ProviderTimedOut,
    ProviderUnavailable,
    WebhookEvent,
    json_object,
)

log = structlog.get_logger("gateway.providers.http")
C = TypeVar("C")

# Keys under which providers put a human-readable reason in an error body, checked in this order.
_REASON_KEYS = ("message", "errorMessage", "error_description", "error", "code", "errorCode")


def bearer(token: str | None, provider: str, mode: str, what: str) -> dict[str, str]:
    """`Authorization: Bearer <token>`; a mode without the token is the operator's to fix."""
    if token is None:
        raise ProviderMisconfigured(f"{provider}: no {mode}-mode {what} is configured")
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Answer:
    """A provider's HTTP answer that the adapter reads (2xx, and the 4xx that are its final word)."""

    status: int
    content: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The parsed body; None when it is empty or not JSON."""
        if not self.content.strip():
            return None
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError:
            return None

    def object(self) -> dict[str, Any] | None:
        body = self.json()
        return body if isinstance(body, dict) else None

    def reason(self) -> str:
        """A short reason from an error body, for logs (never a secret: providers do not echo keys)."""
        body = self.object() or {}
        for key in _REASON_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:200]
        return ""


class ProviderClient(httpx.AsyncClient):
    """One pooled client per adapter, closed in its aclose()."""

    def __init__(
        self,
        provider: str,
        timeout_seconds: float,
        *,
        base_url: str = "",
        max_connections: int = 50,
        max_keepalive_connections: int = 10,
        keepalive_expiry: float | None = 30,
    ):
        super().__init__(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_keepalive_connections,
                keepalive_expiry=keepalive_expiry,
            ),
            headers={"Accept": "application/json", "User-Agent": f"gateway-{provider}/1"},
        )
        self.provider = provider

    async def call(
        self,
        method: str,
        url: str,
        *,
        mode: str = "",
        headers: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        deadline_seconds: float | None = None,
        credentials_checked: bool = True,
        outages_checked: bool = True,
    ) -> Answer:
        """One request. Transport failures raise; so do 401/403 (unless `credentials_checked` is off,
        for a provider that answers them about a token it renews) and 5xx/429 (unless
        `outages_checked` is off, for a provider whose 5xx bodies carry verdicts). Everything else
        comes back as an Answer. `deadline_seconds` bounds the whole request, not each read. `body` is
        sent as JSON, `form` (an OAuth token request's) as application/x-www-form-urlencoded."""
        sent = dict(headers or {})
        content: bytes | None = None
        if body is not None:
            content = orjson.dumps(body)
            sent["Content-Type"] = "application/json"
        elif form is not None:
            content = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        path = httpx.URL(url).path
        started = time.perf_counter()
        status = 0
        try:
            async with asyncio.timeout(deadline_seconds):
                r = await self.request(method, url, content=content, params=params, headers=sent)
            status = r.status_code
        except (TimeoutError, httpx.TimeoutException) as e:
            raise ProviderTimedOut(f"{self.provider}: {method} {path} timed out ({type(e).__name__})") from e
        except httpx.ConnectError as e:  # no connection: the request never left
            failed = f"{self.provider}: {method} {path} failed: {type(e).__name__}"
            raise ProviderUnavailable(failed, outage=True) from e
        except httpx.HTTPError as e:
            raise ProviderUnavailable(f"{self.provider}: {method} {path} failed: {type(e).__name__}") from e
        finally:
            log.debug(
                "provider_http",
                provider=self.provider,
                method=method,
                path=path,
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        answer = Answer(r.status_code, r.content)
        if credentials_checked and answer.status in (401, 403):
            raise self.credentials_rejected(answer, mode, path)
        if outages_checked and (answer.status >= 500 or answer.status == 429):
            answered = f"{self.provider}: {method} {path} answered {answer.status}"
            raise ProviderUnavailable(answered, outage=True)
        return answer

    def credentials_rejected(
        self, answer: Answer, mode: str, path: str, what: str = "credentials"
    ) -> ProviderMisconfigured:
        """Loud, and without the secret: the operator must fix the configuration."""
        log.error(
            f"{self.provider}_credentials_rejected",
            provider=self.provider,
            mode=mode,
            status=answer.status,
            path=path,
            reason=answer.reason(),
        )
        return ProviderMisconfigured(f"{self.provider} rejected the {mode}-mode {what} ({answer.status})")


class RequestOptions(TypedDict, total=False):
    body: dict[str, Any] | None
    params: Mapping[str, str] | None
    headers: Mapping[str, str] | None


class HttpProvider(Generic[C]):
    """What an HTTP adapter does the same way as every other (Hyperswitch's ConnectorCommon): it is
    handed its accounts and a client, authenticates with its mode's Bearer token, parses a verified
    webhook body, and closes its client. A subclass names its provider and which credential is the
    token, and holds only what is particular to its provider."""

    name: str = ""
    # What the Bearer credential is called in a misconfiguration message.
    bearer_name = "secret key"

    def __init__(self, accounts: Accounts[C], http: ProviderClient):
        self._accounts = accounts
        self._http = http

    def bearer_token(self, account: C) -> str | None:
        """The mode's Bearer token; None where this provider authenticates otherwise."""
        return None

    def is_configured(self, livemode: bool) -> bool:
        account = self._accounts.get(livemode)
        return account is not None and self.bearer_token(account) is not None

    async def _request(
        self, method: str, path: str, livemode: bool, **options: Unpack[RequestOptions]
    ) -> Answer:
        """One call with the mode's Bearer token; ProviderClient.call says what raises."""
        mode = mode_name(livemode)
        account = self._accounts.get(livemode)
        token = self.bearer_token(account) if account is not None else None
        headers = {**bearer(token, self.name, mode, self.bearer_name), **(options.get("headers") or {})}
        return await self._http.call(
            method, path, mode=mode, headers=headers, body=options.get("body"), params=options.get("params")
        )

    def interpret_webhook(self, payload: dict[str, Any]) -> WebhookEvent:
        raise NotImplementedError

    def _events(self, body: bytes) -> list[WebhookEvent]:
        """The events of a body whose authenticity was checked (each provider sends one per delivery)."""
        return [self.interpret_webhook(json_object(body))]

    async def aclose(self) -> None:
        await self._http.aclose()
