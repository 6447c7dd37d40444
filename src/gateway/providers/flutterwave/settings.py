"""Flutterwave's settings (env GATEWAY_FLUTTERWAVE__...) and the credentials its adapter is handed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from gateway.providers.accounts import Accounts
from gateway.providers.config import PerModeSettings, credentials_of, currency_codes


@dataclass(frozen=True)
class FlutterwaveCredentials:
    secret_key: str | None = field(default=None, repr=False)
    secret_hash: str | None = field(default=None, repr=False)
    # The sender M-Pesa Kenya transfers must name (`meta`: sender, sender_country, mobile_number).
    transfer_sender: str | None = None
    transfer_sender_country: str | None = None
    transfer_sender_mobile: str | None = None


# What the adapter is handed: this provider's account per mode.
FlutterwaveAccounts = Accounts[FlutterwaveCredentials]


class FlutterwaveMode(BaseModel):
    secret_key: SecretStr | None = None
    # The "secret hash" set in the dashboard, sent back in the `verif-hash` header.
    secret_hash: SecretStr | None = None
    # Payouts to M-Pesa Kenya must name their sender (docs/providers/flutterwave.md, "Payouts"): the
    # business's name, its country (ISO 3166 alpha-2, e.g. NG) and its mobile number.
    transfer_sender: str | None = None
    transfer_sender_country: str | None = None
    transfer_sender_mobile: str | None = None

    def credentials(self) -> FlutterwaveCredentials | None:
        return credentials_of(self, FlutterwaveCredentials)


class FlutterwaveSettings(PerModeSettings):
    test: FlutterwaveMode = FlutterwaveMode()
    live: FlutterwaveMode = FlutterwaveMode()
    base_url: str = "https://api.flutterwave.com"
    # Payouts (v3 Transfers): the currencies paid out to banks and mobile money wallets.
    transfer_currencies: Annotated[list[str], AfterValidator(currency_codes)] = Field(
        default_factory=lambda: [
            "NGN",
            "GHS",
            "KES",
            "UGX",
            "TZS",
            "RWF",
            "ZAR",
            "ZMW",
            "XAF",
            "XOF",
            "USD",
            "EUR",
            "GBP",
        ]
    )
    # The operator (account_bank) used when a mobile_money destination names none [C: MPS is M-Pesa].
    transfer_default_operators: dict[str, str] = Field(default_factory=lambda: {"KES": "MPS"})
    # The reconciler first asks GET /v3/transfers about a pending payout this long after it was sent...
    payout_reconcile_after_seconds: float = Field(120.0, ge=0)
    # ...and a transfer Flutterwave still does not know this long after was never received.
    payout_not_found_after_seconds: float = Field(600.0, gt=0)

    def accounts(self) -> FlutterwaveAccounts:
        return Accounts(self.test.credentials(), self.live.credentials())
