"""Stripe's settings (env GATEWAY_STRIPE__...) and the credentials its adapter is handed."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, SecretStr

from gateway.providers.accounts import Accounts
from gateway.providers.config import PerModeSettings, credentials_of


@dataclass(frozen=True)
class StripeCredentials:
    secret_key: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)


# What the adapter is handed: this provider's account per mode.
StripeAccounts = Accounts[StripeCredentials]


class StripeMode(BaseModel):
    secret_key: SecretStr | None = None
    # The endpoint signing secret (whsec_...) of the webhook endpoint registered at Stripe.
    webhook_secret: SecretStr | None = None

    def credentials(self) -> StripeCredentials | None:
        # Keys are pasted from the dashboard: stray white space is not part of them.
        return credentials_of(self, StripeCredentials, strip=True)


class StripeSettings(PerModeSettings):
    test: StripeMode = StripeMode()
    live: StripeMode = StripeMode()
    api_base: str = "https://api.stripe.com"

    def accounts(self) -> StripeAccounts:
        return Accounts(self.test.credentials(), self.live.credentials())
