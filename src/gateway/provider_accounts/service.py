"""Merchants' provider accounts: create or replace (sealed), read, delete, and re-seal under a new key.

The credentials are sealed with the keyring's current key, bound to the row's identity (sealing.py);
what may be shown of them is each field's last four characters (`hints`). Every change is announced
on the broadcast ("provider_account", id) after its commit, so each process drops what it cached.
"""

from __future__ import annotations

import secrets as random_tokens
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from redis.exceptions import RedisError

from gateway.broadcast import Broadcast
from gateway.db.database import Database
from gateway.errors import NotFound, ProviderAccountNotSupported, ProviderUnknown, SecretsKeyMissing
from gateway.kit.ids import new_id
from gateway.kit.secretbox import Keyring, SecretBoxError
from gateway.provider_accounts import repository
from gateway.provider_accounts.models import ProviderAccount
from gateway.provider_accounts.sealing import hint, seal, unseal
from gateway.providers.account_schema import (
    AccountSchema,
    secrets_of,
    settings_dict,
    validate_account,
)
from gateway.providers.catalog import ACCOUNTS, WITHOUT_ACCOUNTS

log = structlog.get_logger("gateway.provider_accounts")

TOPIC = "provider_account"
# The key, inside the sealed credentials, of the secret path token of providers that sign nothing.
CALLBACK_TOKEN = "callback_token"
NO_KEYRING = (
    "The gateway cannot seal provider credentials: GATEWAY_SECRETS_KEYS is not set. "
    "The operator generates a key with `gateway secrets generate-key`."
)


@dataclass(frozen=True)
class Shown:
    """An account as its owner sees it: the row, and the callback token of its webhook URL (M-Pesa,
    MoMo), never the credentials."""

    account: ProviderAccount
    callback_token: str | None = field(default=None, repr=False)

    def webhook_url(self, base_url: str) -> str | None:
        """Where the provider sends this account's notifications (the merchant registers it there);
        None for an account that gets none (cash)."""
        a = self.account
        if not ACCOUNTS[a.provider].webhooks:
            return None
        url = f"{base_url.rstrip('/')}/v1/webhooks/{a.provider}/{a.id}"
        return f"{url}/{self.callback_token}" if self.callback_token else url


def schema_for(provider: str) -> AccountSchema:
    schema = ACCOUNTS.get(provider)
    if schema is not None:
        return schema
    if provider in WITHOUT_ACCOUNTS:
        raise ProviderAccountNotSupported(
            f"{provider} runs inside the gateway: it takes no account. Accounts exist for: "
            + ", ".join(sorted(ACCOUNTS)),
            param="provider",
        )
    raise ProviderUnknown(f"No provider named {provider!r}.", param="provider")


def _open_row(keyring: Keyring, account: ProviderAccount) -> dict[str, Any]:
    return unseal(
        keyring,
        account.secrets,
        account_id=account.id,
        merchant_id=account.merchant_id,
        provider=account.provider,
        livemode=account.livemode,
    )


def _open(keyring: Keyring | None, account: ProviderAccount) -> dict[str, Any]:
    if keyring is None:
        raise SecretsKeyMissing(NO_KEYRING)
    try:
        return _open_row(keyring, account)
    except SecretBoxError as e:
        log.error("provider_account_unseal_failed", account_id=account.id, key_id=account.secrets_key_id)
        raise SecretsKeyMissing(
            f"The key {account.secrets_key_id!r} that sealed this account is not in GATEWAY_SECRETS_KEYS."
        ) from e


def _shown(keyring: Keyring | None, account: ProviderAccount) -> Shown:
    if not ACCOUNTS[account.provider].callback_token:
        return Shown(account)
    token = _open(keyring, account).get(CALLBACK_TOKEN)
    return Shown(account, token if isinstance(token, str) else None)


async def _announce(broadcast: Broadcast | None, account_id: str) -> None:
    """After the commit. Redis away: every listener is disconnected too, and forgets everything when
    it reconnects, so no process keeps the old credentials; the change itself stands."""
    if broadcast is None:
        return
    try:
        await broadcast.publish(TOPIC, account_id)
    except (RedisError, OSError) as e:
        log.warning("provider_account_broadcast_failed", account_id=account_id, error=type(e).__name__)


async def put(
    db: Database,
    keyring: Keyring | None,
    broadcast: Broadcast | None,
    *,
    merchant_id: str,
    livemode: bool,
    provider: str,
    credentials: Any,
    settings: Any,
) -> Shown:
    """Creates or replaces the merchant's account with `provider` in this mode. A replaced or revived
    (deleted) account keeps its id, and its callback token, so the webhook URL stays the same.
    Raises AccountInvalid (422) before anything is written."""
    schema = schema_for(provider)
    parsed, parsed_settings = validate_account(schema, livemode, credentials, settings)
    if keyring is None:
        raise SecretsKeyMissing(NO_KEYRING)
    given = secrets_of(parsed)
    hints = {name: hint(value) for name, value in given.items()}
    stored_settings = settings_dict(parsed_settings)
    # Twice at most: a concurrent first PUT may insert the row between our look and our insert.
    for _ in range(2):
        async with db.transaction() as tx:
            row = await repository.lock_any(tx, merchant_id, provider, livemode)
            account_id = row.id if row is not None else new_id("acct")
            token: str | None = None
            if schema.callback_token:
                kept = _open(keyring, row).get(CALLBACK_TOKEN) if row is not None else None
                token = kept if isinstance(kept, str) else random_tokens.token_urlsafe(32)
            sealed, key_id = seal(
                keyring,
                given | ({CALLBACK_TOKEN: token} if token else {}),
                account_id=account_id,
                merchant_id=merchant_id,
                provider=provider,
                livemode=livemode,
            )
            if row is not None:
                saved: ProviderAccount | None = await repository.replace(
                    tx, account_id, sealed, key_id, hints, stored_settings
                )
            else:
                now = datetime.now(UTC)
                saved = await repository.insert(
                    tx,
                    ProviderAccount(
                        account_id,
                        merchant_id,
                        provider,
                        livemode,
                        "active",
                        sealed,
                        key_id,
                        hints,
                        stored_settings,
                        now,
                        now,
                    ),
                )
        if saved is not None:
            await _announce(broadcast, saved.id)
            log.info(
                "provider_account_saved", account_id=saved.id, provider=provider, replaced=row is not None
            )
            return Shown(saved, token)
    raise RuntimeError("the provider account changed twice while being saved")


async def get(
    db: Database, keyring: Keyring | None, *, merchant_id: str, livemode: bool, provider: str
) -> Shown:
    schema_for(provider)
    account = await repository.active(db, merchant_id, provider, livemode)
    if account is None:
        raise NotFound(f"You have no {provider} account in {'live' if livemode else 'test'} mode.")
    return _shown(keyring, account)


async def list_accounts(
    db: Database, keyring: Keyring | None, *, merchant_id: str, livemode: bool | None
) -> list[Shown]:
    """The merchant's active accounts in one mode (or both: None), by provider."""
    if livemode is None:
        rows = await repository.of_merchant(db, merchant_id)
    else:
        rows = await repository.all_active(db, merchant_id, livemode)
    return [_shown(keyring, a) for a in rows]


async def delete(
    db: Database,
    keyring: Keyring | None,
    broadcast: Broadcast | None,
    *,
    merchant_id: str,
    livemode: bool,
    provider: str,
) -> Shown:
    """Takes no new payments through the account; the row and its sealed credentials stay, so the
    payments made through it still sync and refund, and a later PUT revives it under the same id."""
    schema_for(provider)
    async with db.transaction() as tx:
        row = await repository.lock_any(tx, merchant_id, provider, livemode)
        if row is None or row.status != "active":
            raise NotFound(f"You have no {provider} account in {'live' if livemode else 'test'} mode.")
        token = _shown(keyring, row).callback_token  # before the write: a 409 here changes nothing
        deleted = await repository.mark_deleted(tx, row.id)
    assert deleted is not None
    await _announce(broadcast, deleted.id)
    log.info("provider_account_deleted", account_id=deleted.id, provider=provider)
    return Shown(deleted, token)


async def account_ids(db: Database, *, merchant_id: str, livemode: bool) -> dict[str, str]:
    """provider -> the merchant's own active account in this mode (one statement)."""
    return await repository.active_ids(db, merchant_id, livemode)


@dataclass
class Rotation:
    resealed: int = 0
    # Rows the keyring could not open (their key was removed too early): left as they are.
    failed: list[str] = field(default_factory=list)


async def rotate(
    db: Database, keyring: Keyring, *, batch: int = 100, broadcast: Broadcast | None = None
) -> Rotation:
    """Re-seals every row not sealed by the keyring's current key, `batch` rows per transaction.
    Rows another rotation (or a PUT) holds are skipped (SKIP LOCKED) and seen by a later run, so it is
    safe while serving and resumable: a run stopped half way leaves rows sealed by one key or the other,
    both in the keyring, and the next run does the rest. Nothing left: a no-op."""
    result = Rotation()
    while True:
        changed: list[str] = []
        async with db.transaction() as tx:
            rows = await repository.to_reseal(tx, keyring.current, result.failed, batch)
            for row in rows:
                try:
                    plain = _open_row(keyring, row)
                except SecretBoxError:
                    log.error("provider_account_unseal_failed", account_id=row.id, key_id=row.secrets_key_id)
                    result.failed.append(row.id)
                    continue
                sealed, key_id = seal(
                    keyring,
                    plain,
                    account_id=row.id,
                    merchant_id=row.merchant_id,
                    provider=row.provider,
                    livemode=row.livemode,
                )
                await repository.reseal(tx, row.id, sealed, key_id)
                changed.append(row.id)
        result.resealed += len(changed)
        for account_id in changed:
            await _announce(broadcast, account_id)
        if not rows:
            return result
