"""A merchant's own Razorpay account: what PUT /v1/provider-accounts/razorpay takes (fields of
RazorpayMode). The key pair authenticates API calls; the webhook secret is the one entered when the
webhook pointing at the account's URL was added in the Razorpay Dashboard."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from gateway.providers.account_schema import AccountModel, Credential, require_prefix


class RazorpayAccountCredentials(AccountModel):
    key_id: Credential
    key_secret: Credential
    webhook_secret: Credential

    @field_validator("key_id")
    @classmethod
    def _mode(cls, v: str, info: ValidationInfo) -> str:
        return require_prefix(v, info, test=("rzp_test_",), live=("rzp_live_",))


class RazorpayAccountSettings(AccountModel):
    # The business name Razorpay's Hosted Checkout page shows.
    checkout_name: str | None = Field(None, min_length=1, max_length=100)
