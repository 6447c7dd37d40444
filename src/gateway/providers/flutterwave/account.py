"""A merchant's own Flutterwave account: what PUT /v1/provider-accounts/flutterwave takes (fields of
FlutterwaveMode)."""

from __future__ import annotations

from pydantic import ValidationInfo, field_validator

from gateway.providers.account_schema import AccountModel, Credential, NoSettings, require_prefix


class FlutterwaveAccountCredentials(AccountModel):
    # FLWSECK_TEST-… in test mode, FLWSECK-… in live mode.
    secret_key: Credential
    # The "secret hash" set in the dashboard, sent back in the `verif-hash` header.
    secret_hash: Credential

    @field_validator("secret_key")
    @classmethod
    def _mode(cls, v: str, info: ValidationInfo) -> str:
        return require_prefix(v, info, test=("FLWSECK_TEST-",), live=("FLWSECK-",))


FlutterwaveAccountSettings = NoSettings
