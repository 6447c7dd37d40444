"""Orange Money Web Payment's settings (env GATEWAY_ORANGE__...) and the credentials its adapter is
handed. Every [U] item of docs/providers/orange.md an operator may need to change is a setting here."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, field_validator

from gateway.providers.accounts import Accounts, secret_text
from gateway.providers.config import PerModeSettings, currency_codes

TOKEN_KEY_PREFIX = "orange:token:"


def country_segment(v: str | None) -> str | None:
    # The path segment of the WebPay API: `dev` for the sandbox, the country's code in production.
    if v is not None and not re.fullmatch(r"[a-z]{2,3}", v):
        raise ValueError(
            "must be 2 or 3 lower-case letters: dev (sandbox) or the country's code, e.g. ci, cm, sn"
        )
    return v


def sent_currency(v: str | None) -> str | None:
    # Not an ISO code necessarily: the dev sandbox takes only its test currency OUV.
    if v is not None and not re.fullmatch(r"[A-Z]{3}", v):
        raise ValueError("must be three upper-case letters, e.g. OUV")
    return v


@dataclass(frozen=True)
class OrangeCredentials:
    """One mode's Orange Developer application, its merchant key and where its WebPay API lives."""

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    merchant_key: str | None = field(default=None, repr=False)
    country: str | None = None
    currency: str | None = None

    @property
    def complete(self) -> bool:
        return bool(self.client_id and self.client_secret and self.merchant_key and self.country)

    @property
    def basic(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def token_key(self, mode: str, token_url: str) -> str:
        # A fingerprint of the credentials, never the credentials: a rotated secret gets its own token.
        raw = f"{token_url}|{self.client_id}|{self.client_secret}".encode()
        return f"{TOKEN_KEY_PREFIX}{mode}:{hashlib.sha256(raw).hexdigest()[:24]}"


# What the adapter is handed: this provider's account per mode.
OrangeAccounts = Accounts[OrangeCredentials]


class OrangeMode(BaseModel):
    # The Orange Developer application's client id and secret (its "Authorization header" is
    # base64(client_id:client_secret)), used only to get an access token.
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # The merchant key Orange gives once the WebPay offer is subscribed (sent in every web payment body).
    merchant_key: SecretStr | None = None
    # The WebPay API's path segment: `dev` for the sandbox; in production the country's code
    # (ci, cm, sn, ml, bf, gn, ...) [U: as Orange names it at go-live].
    country: Annotated[str | None, AfterValidator(country_segment)] = None
    # The currency code sent to Orange in place of the payment's own: the dev sandbox takes only OUV.
    # Empty: the payment's currency (production).
    currency: Annotated[str | None, AfterValidator(sent_currency)] = None

    @field_validator("currency", "country", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if v == "" else v

    def credentials(self) -> OrangeCredentials | None:
        values = (self.client_id, secret_text(self.client_secret), secret_text(self.merchant_key))
        if not any(values):
            return None
        return OrangeCredentials(*values, country=self.country, currency=self.currency)


class OrangeTestMode(OrangeMode):
    country: Annotated[str | None, AfterValidator(country_segment)] = "dev"
    currency: Annotated[str | None, AfterValidator(sent_currency)] = "OUV"


class OrangeSettings(PerModeSettings):
    """Orange Money Web Payment (docs/providers/orange.md), per mode: the sandbox is country `dev`
    and currency OUV; production is the country's segment and the payment's own currency."""

    test: OrangeTestMode = OrangeTestMode()
    live: OrangeMode = OrangeMode()
    base_url: str = "https://api.orange.com"
    # The OAuth token endpoint under base_url [U: v3 in current guides, v2 and v1 in older ones].
    token_path: str = "/oauth/v3/token"
    # The WebPay API under base_url; {country} is the mode's country segment.
    api_path: Annotated[str, Field(pattern=r"^/.*\{country\}.*$")] = "/orange-money-webpay/{country}/v1"
    # The payment page's language (`lang`): fr or en [U: other values].
    lang: str = Field("fr", pattern=r"^[a-z]{2}$")
    # What the wallets collect in: XOF (CI, SN, ML, BF, NE, GW), XAF (CM, CF), GNF (GN); add others
    # (MGA, CDF, SLE, LRD, BWP) where Orange's WebPay serves that country [U].
    currencies: Annotated[list[str], AfterValidator(currency_codes)] = Field(
        default_factory=lambda: ["XOF", "XAF", "GNF"]
    )
    # How `amount` is written [U]: "major" (1000 XOF is 1000; 10.50 of a two-decimal currency is 10.5)
    # or "minor" (always the integer of minor units). The same for XOF, XAF and GNF, which have no decimals.
    amount_unit: Literal["major", "minor"] = "major"
    # Where the customer goes back to (return_url and cancel_url) for payments created without a
    # return_url (empty: such payments fail with return_url_required, since Orange needs both).
    default_return_url: str = ""
    # The reconciler first asks about an unsettled Orange payment this long after creation...
    reconcile_after_seconds: float = Field(120.0, ge=0)
    # ...and a web payment still unpaid this long after creation expires here (Orange's own payment
    # session lifetime is not documented [U]; keep this above it).
    action_ttl_seconds: float = Field(1_800.0, gt=0)

    def accounts(self) -> OrangeAccounts:
        return Accounts(self.test.credentials(), self.live.credentials())

    @property
    def token_url(self) -> str:
        return self.base_url.rstrip("/") + self.token_path

    def api_url(self, country: str, operation: str) -> str:
        return self.base_url.rstrip("/") + self.api_path.format(country=country) + "/" + operation
