"""A merchant's own Flutterwave account: what PUT /v1/provider-accounts/flutterwave takes (fields of
FlutterwaveMode)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from gateway.providers.account_schema import AccountModel, Credential, require_prefix


class FlutterwaveAccountCredentials(AccountModel):
    # FLWSECK_TEST-… in test mode, FLWSECK-… in live mode.
    secret_key: Credential
    # The "secret hash" set in the dashboard, sent back in the `verif-hash` header.
    secret_hash: Credential

    @field_validator("secret_key")
    @classmethod
    def _mode(cls, v: str, info: ValidationInfo) -> str:
        return require_prefix(v, info, test=("FLWSECK_TEST-",), live=("FLWSECK-",))


class FlutterwaveAccountSettings(AccountModel):
    # Payouts to M-Pesa Kenya name their sender: the business's name, its country (ISO 3166 alpha-2)
    # and mobile number (E.164 digits). Optional: other payouts need none.
    transfer_sender: str | None = Field(None, min_length=1, max_length=100)
    transfer_sender_country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    transfer_sender_mobile: str | None = Field(None, pattern=r"^\+?[0-9]{8,15}$")
