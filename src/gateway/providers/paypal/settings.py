"""PayPal's settings (env GATEWAY_PAYPAL__...) and the credentials its adapter is handed."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from gateway.providers.accounts import Accounts, secret_text
from gateway.providers.config import PerModeSettings, currency_codes

TOKEN_KEY_PREFIX = "paypal:token:"
SANDBOX_API = "https://api-m.sandbox.paypal.com"
LIVE_API = "https://api-m.paypal.com"

# PayPal's payment currencies (its currency-codes reference; docs/providers/paypal.md).
# BRL and MYR are for in-country accounts only; CNY, INR likewise and left out by default.
PAYPAL_CURRENCIES = [
    "AUD", "BRL", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ILS", "JPY",
    "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "TWD", "USD",
]  # fmt: skip


@dataclass(frozen=True)
class PaypalCredentials:
    """One mode's REST app (client id and secret) and the id of the webhook registered for it."""

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    # The id PayPal gave the webhook subscription: verify-webhook-signature needs it.
    webhook_id: str | None = None

    @property
    def token_key(self) -> str:
        # The credentials' fingerprint, not the credentials: a rotated secret gets a token of its own.
        raw = f"{self.base_url}|{self.client_id}|{self.client_secret}".encode()
        return f"{TOKEN_KEY_PREFIX}{hashlib.sha256(raw).hexdigest()[:32]}"

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()


# What the adapter is handed: this provider's account per mode.
PaypalAccounts = Accounts[PaypalCredentials]


class PaypalMode(BaseModel):
    # The REST app's client id and secret (developer.paypal.com, Apps & Credentials).
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # The webhook's id (Apps & Credentials -> the app -> Webhooks): without it no webhook verifies.
    webhook_id: str | None = None
    base_url: str = LIVE_API

    def credentials(self) -> PaypalCredentials | None:
        secret = secret_text(self.client_secret, strip=True)
        client_id = (self.client_id or "").strip()
        if not (client_id and secret):
            return None
        webhook_id = (self.webhook_id or "").strip() or None
        return PaypalCredentials(self.base_url.rstrip("/"), client_id, secret, webhook_id)


class PaypalTestMode(PaypalMode):
    base_url: str = SANDBOX_API


class PaypalSettings(PerModeSettings):
    """PayPal Orders v2 (docs/providers/paypal.md), per mode: the sandbox's host in test mode."""

    test: PaypalTestMode = PaypalTestMode()
    live: PaypalMode = PaypalMode()
    # What the merchant's PayPal account takes; PayPal refuses the others (CURRENCY_NOT_SUPPORTED).
    currencies: Annotated[list[str], AfterValidator(currency_codes)] = Field(
        default_factory=lambda: list(PAYPAL_CURRENCIES)
    )
    # Currencies PayPal takes in whole units only ("decimal amounts cause an error").
    zero_decimal_currencies: Annotated[list[str], AfterValidator(currency_codes)] = Field(
        default_factory=lambda: ["HUF", "JPY", "TWD"]
    )
    # The name the payer sees on PayPal's pages (experience_context.brand_name); None: the account's.
    brand_name: str | None = Field(None, max_length=127)
    # The reconciler first asks about an unsettled PayPal payment or refund this long after creation...
    reconcile_after_seconds: float = Field(120.0, ge=0)
    # ...and an order the payer has not approved this long after creation expires (after a last
    # query, which captures it if it was approved meanwhile). PayPal keeps an unapproved order 3 hours [P].
    action_ttl_seconds: float = Field(10_800.0, gt=0)

    def accounts(self) -> PaypalAccounts:
        return Accounts(self.test.credentials(), self.live.credentials())
