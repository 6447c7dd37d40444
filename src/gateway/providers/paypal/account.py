"""A merchant's own PayPal account: what PUT /v1/provider-accounts/paypal takes (fields of PaypalMode).
PayPal's webhooks are verified by asking PayPal, which needs the webhook's id."""

from __future__ import annotations

from gateway.providers.account_schema import AccountModel, Credential, NoSettings


class PaypalAccountCredentials(AccountModel):
    # The REST app's client id and secret, of the mode the account is for (sandbox app in test mode).
    client_id: Credential
    client_secret: Credential
    # The id of the webhook registered on that app for {public_url}/v1/webhooks/paypal/{account_id}.
    webhook_id: Credential


PaypalAccountSettings = NoSettings
