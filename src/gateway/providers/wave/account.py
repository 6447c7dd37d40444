"""A merchant's own Wave account: what PUT /v1/provider-accounts/wave takes (fields of WaveMode).
Wave documents no test-mode key prefix, so the key's mode is not checked."""

from __future__ import annotations

from gateway.providers.account_schema import AccountModel, Credential, NoSettings


class WaveAccountCredentials(AccountModel):
    # The business wallet's API key (Checkout API enabled).
    api_key: Credential
    # The secret of the webhook registered in the Business Portal for this account's webhook URL.
    webhook_secret: Credential


WaveAccountSettings = NoSettings
