"""A merchant's own Paystack account: what PUT /v1/provider-accounts/paystack takes (fields of
PaystackMode). Paystack signs its webhooks with the same secret key."""

from __future__ import annotations

from pydantic import ValidationInfo, field_validator

from gateway.providers.account_schema import AccountModel, Credential, NoSettings, require_prefix


class PaystackAccountCredentials(AccountModel):
    secret_key: Credential

    @field_validator("secret_key")
    @classmethod
    def _mode(cls, v: str, info: ValidationInfo) -> str:
        return require_prefix(v, info, test=("sk_test_",), live=("sk_live_",))


PaystackAccountSettings = NoSettings
