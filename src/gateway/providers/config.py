"""What every provider's settings model shares: the per-mode nesting, the old flat names, validators."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, model_validator

from gateway.kit.money import is_currency
from gateway.providers.accounts import secret_text

C = TypeVar("C")

MODES = ("test", "live")


def nest_modes(data: Any) -> Any:
    """Maps the old flat names (`test_secret_key`, env GATEWAY_STRIPE__TEST_SECRET_KEY) onto the
    nested ones (`test.secret_key`, env GATEWAY_STRIPE__TEST__SECRET_KEY), so every existing
    configuration keeps working. Where both are given, the nested name wins."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for mode in MODES:
        prefix = mode + "_"
        flat = {k.removeprefix(prefix): out.pop(k) for k in list(out) if k.startswith(prefix)}
        if not flat:
            continue
        nested = out.get(mode)
        if isinstance(nested, BaseModel):
            nested = nested.model_dump(exclude_unset=True)
        out[mode] = {**flat, **(nested if isinstance(nested, dict) else {})}
    return out


def credentials_of(mode: BaseModel, make: Callable[..., C], *, strip: bool = False) -> C | None:
    """A mode's settings as the frozen credentials its adapter is handed (the fields share their
    names): secrets as plain text, unset and empty alike None; None when the mode sets nothing."""
    values = {name: secret_text(v, strip=strip) if isinstance(v, SecretStr) else v for name, v in mode}
    return make(**values) if any(v is not None for v in values.values()) else None


def currency_codes(v: list[str]) -> list[str]:
    if not v:
        raise ValueError("at least one currency is needed")
    unknown = [c for c in v if not is_currency(c)]
    if unknown:
        raise ValueError(f"not upper-case ISO 4217 codes: {', '.join(unknown)}")
    return v


def path_token(v: SecretStr | None) -> SecretStr | None:
    # A secret in a callback URL's path: URL-safe, and long enough not to be guessed.
    token = v.get_secret_value() if v is not None else ""
    if token and not re.fullmatch(r"[A-Za-z0-9_-]{24,200}", token):
        raise ValueError("must be 24 to 200 characters of A-Z, a-z, 0-9, '_' and '-'")
    if token.startswith("acct_"):  # /v1/webhooks/{provider}/acct_… names a merchant's account
        raise ValueError("must not start with 'acct_'")
    return v


class PerModeSettings(BaseModel):
    """A provider's settings: `test` and `live` members (one provider account each) plus what both
    modes share. The old flat names are still read (nest_modes)."""

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, data: Any) -> Any:
        return nest_modes(data)
