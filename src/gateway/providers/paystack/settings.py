"""Paystack's settings (env GATEWAY_PAYSTACK__...) and the credentials its adapter is handed."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, SecretStr

from gateway.providers.accounts import Accounts
from gateway.providers.config import PerModeSettings, credentials_of


@dataclass(frozen=True)
class PaystackCredentials:
    # Paystack signs webhooks with the same secret key (HMAC-SHA512).
    secret_key: str = field(repr=False)


# What the adapter is handed: this provider's account per mode.
PaystackAccounts = Accounts[PaystackCredentials]


class PaystackMode(BaseModel):
    secret_key: SecretStr | None = None

    def credentials(self) -> PaystackCredentials | None:
        return credentials_of(self, PaystackCredentials)


class PaystackSettings(PerModeSettings):
    test: PaystackMode = PaystackMode()
    live: PaystackMode = PaystackMode()
    base_url: str = "https://api.paystack.co"

    def accounts(self) -> PaystackAccounts:
        return Accounts(self.test.credentials(), self.live.credentials())
