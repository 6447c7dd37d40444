"""Flutterwave's settings (env GATEWAY_FLUTTERWAVE__...) and the credentials its adapter is handed."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, SecretStr

from gateway.providers.accounts import Accounts
from gateway.providers.config import PerModeSettings, credentials_of


@dataclass(frozen=True)
class FlutterwaveCredentials:
    secret_key: str | None = field(default=None, repr=False)
    secret_hash: str | None = field(default=None, repr=False)


# What the adapter is handed: this provider's account per mode.
FlutterwaveAccounts = Accounts[FlutterwaveCredentials]


class FlutterwaveMode(BaseModel):
    secret_key: SecretStr | None = None
    # The "secret hash" set in the dashboard, sent back in the `verif-hash` header.
    secret_hash: SecretStr | None = None

    def credentials(self) -> FlutterwaveCredentials | None:
        return credentials_of(self, FlutterwaveCredentials)


class FlutterwaveSettings(PerModeSettings):
    test: FlutterwaveMode = FlutterwaveMode()
    live: FlutterwaveMode = FlutterwaveMode()
    base_url: str = "https://api.flutterwave.com"

    def accounts(self) -> FlutterwaveAccounts:
        return Accounts(self.test.credentials(), self.live.credentials())
