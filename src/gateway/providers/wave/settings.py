"""Wave's settings (env GATEWAY_WAVE__...) and the credentials its adapter is handed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from gateway.providers.accounts import Accounts
from gateway.providers.config import PerModeSettings, credentials_of, currency_codes


@dataclass(frozen=True)
class WaveCredentials:
    api_key: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)


# What the adapter is handed: this provider's account per mode.
WaveAccounts = Accounts[WaveCredentials]


class WaveMode(BaseModel):
    # The business wallet's API key (Business Portal, with the Checkout API enabled). Live keys look
    # like wave_sn_prod_...; test-mode keys (wave_sn_test_...) are reported, not documented.
    api_key: SecretStr | None = None
    # The secret of the webhook registered in the Business Portal (wave_sn_WHS_...), pointing at
    # {public_url}/v1/webhooks/wave. Any configured one is accepted.
    webhook_secret: SecretStr | None = None

    def credentials(self) -> WaveCredentials | None:
        return credentials_of(self, WaveCredentials)


class WaveSettings(PerModeSettings):
    """Wave Checkout (docs/providers/wave.md). Items marked [U] there are settings here."""

    test: WaveMode = WaveMode()
    live: WaveMode = WaveMode()
    # The security strategy chosen when the webhook was registered: "signing_secret" (Wave-Signature
    # HMAC-SHA256, recommended) or "shared_secret" (the secret itself as `Authorization: Bearer`).
    webhook_auth: Literal["signing_secret", "shared_secret"] = "signing_secret"
    # What stands between the timestamp and the raw body in the signed string [U]: "" (t + body, as
    # Wave's samples do) or "." (t + "." + body).
    webhook_signature_separator: Literal["", "."] = ""
    # Signed webhooks whose timestamp is further than this from now are refused (replays); 0: no check.
    webhook_tolerance_seconds: int = Field(300, ge=0)
    base_url: str = "https://api.wave.com"
    # What the wallet collects in (XOF in Senegal and Cote d'Ivoire; other countries' currencies [U]).
    currencies: Annotated[list[str], AfterValidator(currency_codes)] = Field(default_factory=lambda: ["XOF"])
    # success_url and error_url for payments created without a return_url (empty: such payments fail
    # with return_url_required, since Wave needs both).
    default_return_url: str = ""
    # Send our payment id (refund id) as `Idempotency-Key` on creates and refunds [U: optional for checkout].
    send_idempotency_key: bool = True
    # Let only the customer's own Wave account (customer.phone, E.164) pay the session.
    restrict_payer_mobile: bool = False
    # The reconciler first asks about an unsettled Wave payment or refund this long after creation...
    reconcile_after_seconds: float = Field(120.0, ge=0)
    # ...and a session still unpaid this long after creation is expired at Wave and here (Wave's own
    # session lifetime is about 30 minutes [U]; keep this above it).
    action_ttl_seconds: float = Field(2_400.0, gt=0)

    def accounts(self) -> WaveAccounts:
        return Accounts(self.test.credentials(), self.live.credentials())
