"""A merchant's own Stripe account: what PUT /v1/provider-accounts/stripe takes (fields of StripeMode)."""

from __future__ import annotations

from pydantic import ValidationInfo, field_validator

from gateway.providers.account_schema import AccountModel, Credential, NoSettings, require_prefix


class StripeAccountCredentials(AccountModel):
    # A secret key or a restricted key of the calling key's mode.
    secret_key: Credential
    # The endpoint signing secret of the webhook endpoint registered at Stripe for this account.
    webhook_secret: Credential

    @field_validator("secret_key")
    @classmethod
    def _mode(cls, v: str, info: ValidationInfo) -> str:
        return require_prefix(v, info, test=("sk_test_", "rk_test_"), live=("sk_live_", "rk_live_"))

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, v: str) -> str:
        if not v.startswith("whsec_"):
            raise ValueError("must be an endpoint signing secret: whsec_…")
        return v


StripeAccountSettings = NoSettings
