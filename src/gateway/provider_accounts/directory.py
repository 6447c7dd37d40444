"""Which adapter serves a payment: the deployment's, or the merchant's own provider account.

A payment made through a merchant's account names it (payments.provider_account_id); every later call
about it (sync, cancel, refund, the reconciler, its webhooks) goes through that account's adapter,
built once per process from the sealed credentials and dropped when any process changes the account
(the "provider_account" broadcast; all of them after a reconnect, when a message may have been lost).
Nothing here is read per request from PostgreSQL while the caches hold: the create path costs one dict
lookup for the merchant's active account.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import structlog
from redis.asyncio import Redis

from gateway.broadcast import Broadcast
from gateway.db.database import Database
from gateway.errors import (
    ProviderMisconfiguredError,
    ProviderNotConfigured,
    ProviderUnknown,
    ServiceUnavailable,
)
from gateway.kit.secretbox import SecretBoxError
from gateway.provider_accounts import repository
from gateway.provider_accounts.sealing import unseal
from gateway.providers.accounts import mode_name
from gateway.providers.base import PaymentProvider, ProviderMisconfigured
from gateway.providers.catalog import ACCOUNT_PROVIDERS, build_account_adapter
from gateway.providers.payouts import PayoutProvider, payout_side
from gateway.providers.registry import ProviderRegistry
from gateway.settings import Settings

log = structlog.get_logger("gateway.provider_accounts")

# A replaced account's old adapter may still be mid-call: its HTTP client closes this much later.
_RETIRE_AFTER_SECONDS = 60.0


class Providers:
    """The deployment's adapters (the registry) and merchants' accounts' adapters, behind one face."""

    def __init__(
        self,
        registry: ProviderRegistry,
        db: Database,
        settings: Settings,
        redis: Redis,
        broadcast: Broadcast,
    ):
        self._registry = registry
        self._db = db
        self._settings = settings
        self._redis = redis
        self._shared = settings.providers.shared_accounts
        self._ttl = settings.api_key_cache_seconds
        self._adapters: dict[str, PaymentProvider] = {}
        # (merchant, provider, livemode) -> (valid until, the active account's id or None)
        self._active: dict[tuple[str, str, bool], tuple[float, str | None]] = {}
        self._retiring: dict[asyncio.Task[None], PaymentProvider] = {}
        # Bumped by every invalidation: what was read before it is not cached after it.
        self._generation = 0
        broadcast.on("provider_account", self._forget)

    # --- the deployment's adapters ---------------------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """Provider calls per operation, every account's included."""
        return self._registry.calls

    def get(self, name: str) -> PaymentProvider | None:
        """The deployment-wide adapter of a provider."""
        return self._registry.get(name)

    def names(self) -> list[str]:
        return self._registry.names()

    # --- choosing an adapter ---------------------------------------------------------------------

    async def for_new_payment(
        self, merchant_id: str, name: str, livemode: bool
    ) -> tuple[PaymentProvider, str | None]:
        """The adapter a new payment goes through, and the merchant's account id (None: the deployment's).
        The merchant's own active account first; else the deployment's when accounts are shared."""
        provider = self._registry.get(name)
        if provider is None:
            raise ProviderUnknown(
                f"No provider named {name!r}. Available: {', '.join(self.names())}.", param="provider"
            )
        if name not in ACCOUNT_PROVIDERS:
            return provider, None
        account_id = await self.active_account(merchant_id, name, livemode)
        if account_id is not None:
            try:
                return await self._account_adapter(account_id), account_id
            except ProviderMisconfigured as e:
                raise ProviderMisconfiguredError(
                    "Your provider account's credentials cannot be opened by this gateway; nothing was "
                    "created or sent. The operator must restore its secrets key (GATEWAY_SECRETS_KEYS)."
                ) from e
        if not self._shared:
            mode = mode_name(livemode)
            raise ProviderNotConfigured(
                f"You have no {mode}-mode {name} account: add one with PUT /v1/provider-accounts/{name}.",
                param="provider",
            )
        return provider, None

    async def for_payment(self, name: str | None, account_id: str | None) -> PaymentProvider | None:
        """The adapter of an existing payment (or of a webhook's account): its account's, deleted or
        not; None for a payment with no rail yet (requires_payment_method)."""
        if name is None:
            return None
        if account_id is None:
            return self._registry.get(name)
        return await self._account_adapter(account_id)

    async def for_webhook(self, name: str, account_id: str) -> PaymentProvider | None:
        """The adapter behind /v1/webhooks/{name}/{account_id}; None when no such account is `name`'s."""
        row = await repository.get(self._db, account_id)
        if row is None or row.provider != name:
            return None
        try:
            return await self._account_adapter(account_id)
        except ProviderMisconfigured as e:
            # Nothing can be verified: the provider retries later, once the operator restores the key.
            raise ServiceUnavailable(
                "This account's secrets cannot be opened right now.", headers={"Retry-After": "60"}
            ) from e

    # --- payouts (providers/payouts.py): the same accounts, the adapter's payout side -----------

    async def for_new_payout(
        self, merchant_id: str, name: str, livemode: bool
    ) -> tuple[PayoutProvider | None, str | None]:
        """The payout side of the adapter a new payout goes through (None: this rail pays nothing
        out), and the merchant's account id (None: the deployment's); chosen as for a new payment."""
        adapter, account_id = await self.for_new_payment(merchant_id, name, livemode)
        return payout_side(adapter), account_id

    async def for_payout(self, name: str, account_id: str | None) -> PayoutProvider | None:
        """The payout side of an existing payout's adapter (its account's, deleted or not)."""
        return payout_side(await self.for_payment(name, account_id))

    async def active_account(self, merchant_id: str, name: str, livemode: bool) -> str | None:
        key = (merchant_id, name, livemode)
        now = time.monotonic()
        hit = self._active.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        row = await repository.active(self._db, merchant_id, name, livemode)
        account_id = row.id if row is not None else None
        if self._ttl > 0 and generation == self._generation:
            if len(self._active) > 10_000:
                self._active.clear()
            self._active[key] = (now + self._ttl, account_id)
        return account_id

    def configured(self, name: str, livemode: bool, account_id: str | None) -> bool:
        """Whether a merchant with `account_id` (its active account, or None) can pay through `name`."""
        if account_id is not None:
            return True
        if name in ACCOUNT_PROVIDERS and not self._shared:
            return False
        provider = self._registry.get(name)
        return provider is not None and provider.is_configured(livemode)

    async def _account_adapter(self, account_id: str) -> PaymentProvider:
        adapter = self._adapters.get(account_id)
        if adapter is not None:
            return adapter
        generation = self._generation
        row = await repository.get(self._db, account_id)
        if row is None:
            raise ProviderMisconfigured(f"provider account {account_id} does not exist")
        keyring = self._settings.keyring()
        if keyring is None:
            raise ProviderMisconfigured(
                "GATEWAY_SECRETS_KEYS is unset: merchants' credentials cannot be opened"
            )
        try:
            values: dict[str, Any] = unseal(
                keyring,
                row.secrets,
                account_id=row.id,
                merchant_id=row.merchant_id,
                provider=row.provider,
                livemode=row.livemode,
            )
        except SecretBoxError as e:
            log.error("provider_account_unreadable", account_id=account_id, error=str(e))
            raise ProviderMisconfigured(f"provider account {account_id}: {e}") from e
        built = self._registry.instrument(
            build_account_adapter(
                self._settings,
                self._redis,
                self._settings.base_url,
                provider=row.provider,
                account_id=row.id,
                livemode=row.livemode,
                values={**row.settings, **values},
            )
        )
        if generation != self._generation:  # the account changed while it was read: use once, keep none
            self._retire(built)
            return built
        # Two requests may have built it at once: keep the first, close the other.
        adapter = self._adapters.setdefault(account_id, built)
        if adapter is not built:
            await built.aclose()
        return adapter

    # --- invalidation ------------------------------------------------------------------------------

    def _forget(self, account_id: str | None) -> None:
        self._generation += 1
        self._active.clear()
        ids = list(self._adapters) if account_id is None else [account_id]
        for gone in ids:
            adapter = self._adapters.pop(gone, None)
            if adapter is not None:
                self._retire(adapter)

    def _retire(self, adapter: PaymentProvider) -> None:
        async def close_later() -> None:
            await asyncio.sleep(_RETIRE_AFTER_SECONDS)
            await adapter.aclose()

        with contextlib.suppress(RuntimeError):  # no running loop: the process is ending
            task = asyncio.get_running_loop().create_task(close_later())
            self._retiring[task] = adapter
            task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def aclose(self) -> None:
        for task, adapter in list(self._retiring.items()):
            task.cancel()
            await adapter.aclose()
        for adapter in list(self._adapters.values()):
            await adapter.aclose()
        self._adapters.clear()
        await self._registry.aclose()
