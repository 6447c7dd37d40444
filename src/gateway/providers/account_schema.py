"""What a merchant's own provider account holds: each provider's credentials and settings schemas
(providers/<rail>/account.py) are built from these, and validated together here.

A provider's credentials are its Mode model's secrets and identifiers, its settings the Mode model's
other fields, under the same names: the read side feeds both into the Mode model to build an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, ValidationInfo


class AccountModel(BaseModel):
    """Every field named, none more (a typo is a 422 naming it); inputs never echoed in errors."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    def __repr_args__(self) -> Any:
        # Names only: a credentials object that reaches a log line or a traceback shows no secret.
        return [(name, "…") for name in type(self).model_fields]


# A credential as pasted from a dashboard: stray white space is not part of it.
Credential = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]


def livemode_of(info: ValidationInfo) -> bool:
    """The mode of the key that is configuring the account (validation context `livemode`)."""
    return bool((info.context or {}).get("livemode", False))


def settings_of(info: ValidationInfo) -> Any:
    """The account's validated settings, for a credential that depends on them."""
    return (info.context or {}).get("settings")


def require_prefix(value: str, info: ValidationInfo, *, test: tuple[str, ...], live: tuple[str, ...]) -> str:
    """A key whose prefix says its mode must be of the calling key's mode (a live key in test mode is
    refused, and the other way round). The message names the prefixes, never the value."""
    livemode = livemode_of(info)
    wanted = live if livemode else test
    if not value.startswith(wanted):
        mode = "live" if livemode else "test"
        raise ValueError(f"must be a {mode}-mode key: {' or '.join(p + '…' for p in wanted)}")
    return value


@dataclass(frozen=True)
class AccountSchema:
    """One provider's account: its credentials and settings models; `callback_token` for providers
    that sign nothing (the gateway adds a secret token to their callback URL); `webhooks` False for
    one that sends none."""

    credentials: type[AccountModel]
    settings: type[AccountModel]
    callback_token: bool = False
    # False for an account the provider never notifies (cash): it has no webhook URL.
    webhooks: bool = True


class AccountInvalid(Exception):
    """The account's credentials or settings do not fit the provider's schema. `errors` are
    pydantic's (loc, msg, type), located under `credentials` or `settings`; no input in them."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def _errors(where: str, e: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": (where, *err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in e.errors(include_url=False, include_input=False, include_context=False)
    ]


def validate_account(
    schema: AccountSchema, livemode: bool, credentials: Any, settings: Any
) -> tuple[AccountModel, AccountModel]:
    """(credentials, settings) checked for this mode: settings first, since a credential may depend
    on them (M-Pesa's till number on its transaction type). Raises AccountInvalid with every error."""
    errors: list[dict[str, Any]] = []
    context: dict[str, Any] = {"livemode": livemode}
    parsed_settings: AccountModel | None = None
    try:
        parsed_settings = schema.settings.model_validate(settings, context=context)
    except ValidationError as e:
        errors += _errors("settings", e)
    parsed_credentials: AccountModel | None = None
    try:
        context["settings"] = parsed_settings
        parsed_credentials = schema.credentials.model_validate(credentials, context=context)
    except ValidationError as e:
        errors += _errors("credentials", e)
    if errors or parsed_credentials is None or parsed_settings is None:
        raise AccountInvalid(errors)
    return parsed_credentials, parsed_settings


def secrets_of(credentials: AccountModel) -> dict[str, str]:
    """The credentials as sealed: every field given (None left out), as text."""
    return {k: str(v) for k, v in credentials.model_dump(exclude_none=True).items()}


def settings_dict(settings: AccountModel) -> dict[str, Any]:
    """The settings as stored and shown: the ones given and the defaults, None left out (the Mode
    model's own default applies then)."""
    return settings.model_dump(mode="json", exclude_none=True)


class NoSettings(AccountModel):
    """A provider whose account has nothing but credentials."""
