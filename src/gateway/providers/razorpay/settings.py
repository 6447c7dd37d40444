"""Razorpay's settings (env GATEWAY_RAZORPAY__...) and the credentials its adapter is handed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from gateway.kit.money import exponent
from gateway.providers.accounts import Accounts
from gateway.providers.config import PerModeSettings, credentials_of, currency_codes


@dataclass(frozen=True)
class RazorpayCredentials:
    # The key id is public (it goes into the Hosted Checkout form); the secret authenticates API calls.
    key_id: str | None = None
    key_secret: str | None = field(default=None, repr=False)
    # The secret of the webhook registered in the Dashboard (set per webhook, not the API secret).
    webhook_secret: str | None = field(default=None, repr=False)
    # The business name the Hosted Checkout page shows (its `name` field).
    checkout_name: str | None = None


# What the adapter is handed: this provider's account per mode.
RazorpayAccounts = Accounts[RazorpayCredentials]


class RazorpayMode(BaseModel):
    # rzp_test_… in test mode, rzp_live_… in live mode (Dashboard, Account & Settings, API keys).
    key_id: str | None = None
    key_secret: SecretStr | None = None
    # The secret entered when the webhook {public_url}/v1/webhooks/razorpay was added in the Dashboard.
    webhook_secret: SecretStr | None = None
    # What the Hosted Checkout page shows as the business (empty: "Checkout").
    checkout_name: str | None = None

    def credentials(self) -> RazorpayCredentials | None:
        # Keys are pasted from the dashboard: stray white space is not part of them.
        return credentials_of(self, RazorpayCredentials, strip=True)


def _two_decimals(v: list[str]) -> list[str]:
    # Razorpay takes amounts in the currency's smallest sub-unit; the gateway sends its minor units as
    # they are, which is only known to agree for currencies of two decimals (INR: paise).
    odd = [c for c in v if exponent(c) != 2]
    if odd:
        raise ValueError(f"only currencies with two decimals are supported: not {', '.join(odd)}")
    return v


class RazorpaySettings(PerModeSettings):
    """Razorpay Orders + Hosted Checkout (docs/providers/razorpay.md). Items marked [U]/[P] there are
    settings here."""

    test: RazorpayMode = RazorpayMode()
    live: RazorpayMode = RazorpayMode()
    base_url: str = "https://api.razorpay.com"
    # Where the customer's browser posts the Hosted Checkout form (key_id, order_id, callback_url, …).
    checkout_url: str = "https://api.razorpay.com/v1/checkout/embedded"
    # INR everywhere; international currencies only where Razorpay enabled them for the account.
    currencies: Annotated[list[str], AfterValidator(currency_codes), AfterValidator(_two_decimals)] = Field(
        default_factory=lambda: ["INR"]
    )
    # A payment found `authorized` (not captured: the account's capture setting is manual) is captured
    # by the gateway's status query when its amount and currency are ours; False: it stays processing
    # for the merchant to capture in the Dashboard (Razorpay refunds uncaptured payments after a while).
    capture_authorized: bool = True
    # The reconciler first asks about an unsettled Razorpay payment or refund this long after creation...
    reconcile_after_seconds: float = Field(120.0, ge=0)
    # ...and an order still unpaid this long after creation expires here (Razorpay orders do not expire
    # and cannot be canceled: see docs/providers/razorpay.md, "Cancel and expiry").
    action_ttl_seconds: float = Field(3_600.0, gt=0)

    def accounts(self) -> RazorpayAccounts:
        return Accounts(self.test.credentials(), self.live.credentials())
