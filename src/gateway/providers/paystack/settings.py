"""Paystack's settings (env GATEWAY_PAYSTACK__...) and the credentials its adapter is handed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from gateway.providers.accounts import Accounts
from gateway.providers.config import PerModeSettings, credentials_of, currency_codes


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
    # Payouts (Transfers, docs/providers/paystack.md "Payouts"). The recipient `type` of a bank
    # account per currency: nuban, ghipss, basa [C]; kepss for Kenyan banks [U].
    transfer_recipient_types: dict[str, str] = Field(
        default_factory=lambda: {"NGN": "nuban", "GHS": "ghipss", "ZAR": "basa", "KES": "kepss"}
    )
    # The currencies Paystack pays mobile money in (type mobile_money: Ghana and Kenya [C]).
    transfer_mobile_money_currencies: Annotated[list[str], AfterValidator(currency_codes)] = Field(
        default_factory=lambda: ["GHS", "KES"]
    )
    # The operator's bank_code used when a mobile_money destination names none (Kenya: M-Pesa [P]).
    transfer_default_operators: dict[str, str] = Field(default_factory=lambda: {"KES": "MPESA"})
    # The reconciler first asks GET /transfer/verify about a pending payout this long after it was sent...
    payout_reconcile_after_seconds: float = Field(120.0, ge=0)
    # ...and a transfer Paystack still does not know this long after was never received.
    payout_not_found_after_seconds: float = Field(600.0, gt=0)

    def accounts(self) -> PaystackAccounts:
        return Accounts(self.test.credentials(), self.live.credentials())
