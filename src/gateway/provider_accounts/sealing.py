"""Provider credentials sealed for one row: the ciphertext is bound to the account's identity."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.kit.secretbox import Keyring, key_id_of


def row_identity(account_id: str, merchant_id: str, provider: str, livemode: bool) -> bytes:
    """The associated data: a ciphertext copied onto another account's row does not open there."""
    return f"{account_id}|{merchant_id}|{provider}|{'live' if livemode else 'test'}".encode()


def seal(
    keyring: Keyring,
    credentials: dict[str, str],
    *,
    account_id: str,
    merchant_id: str,
    provider: str,
    livemode: bool,
) -> tuple[str, str]:
    """(ciphertext, the id of the key that sealed it)."""
    token = keyring.seal(
        orjson.dumps(credentials, option=orjson.OPT_SORT_KEYS),
        row_identity(account_id, merchant_id, provider, livemode),
    )
    return token, key_id_of(token)


def unseal(
    keyring: Keyring, token: str, *, account_id: str, merchant_id: str, provider: str, livemode: bool
) -> dict[str, Any]:
    """The credentials; SecretBoxError when the keyring lacks the key or the row is not theirs."""
    data: dict[str, Any] = orjson.loads(
        keyring.open(token, row_identity(account_id, merchant_id, provider, livemode))
    )
    return data


def hint(value: str) -> str:
    """What may be shown of a secret: its last four characters."""
    return "…" + value[-4:] if len(value) > 8 else "…"
