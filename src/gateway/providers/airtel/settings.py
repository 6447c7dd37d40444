"""Airtel Money's settings (env GATEWAY_AIRTEL__...) and the credentials its adapter is handed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, BaseModel, Field, SecretStr

from gateway.providers.accounts import Accounts, secret_text
from gateway.providers.config import PerModeSettings, currency_codes, path_token

TOKEN_KEY_PREFIX = "airtel:token:"

# Airtel Africa's markets and what each wallet holds [P: SDKs and integrations, docs/providers/airtel.md].
DEFAULT_COUNTRIES: dict[str, list[str]] = {
    "UG": ["UGX"],
    "KE": ["KES"],
    "TZ": ["TZS"],
    "ZM": ["ZMW"],
    "MW": ["MWK"],
    "RW": ["RWF"],
    "CD": ["CDF", "USD"],
    "NG": ["NGN"],
    "MG": ["MGA"],
    "CG": ["XAF"],
    "GA": ["XAF"],
    "TD": ["XAF"],
    "NE": ["XOF"],
    "SC": ["SCR"],
}


def country_code(v: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code phone numbers are known for (X-Country, subscriber.country); empty
    (an unset line of .env.example) is None."""
    if not v:
        return None
    if not re.fullmatch(r"[A-Z]{2}", v) or phonenumbers.country_code_for_region(v) == 0:
        raise ValueError("must be an upper-case ISO 3166-1 alpha-2 country code, e.g. UG")
    return v


def _countries(v: dict[str, list[str]]) -> dict[str, list[str]]:
    if not v:
        raise ValueError("at least one country is needed")
    for country, currencies in v.items():
        country_code(country)
        currency_codes(currencies)
    return v


def encrypted_pin(v: SecretStr | None) -> SecretStr | None:
    """The disbursing wallet's PIN as Airtel takes it: RSA-encrypted (PKCS#1 v1.5) with Airtel's public
    key, Base64. Only a ciphertext of an RSA key's size passes: a plain 4-digit PIN is refused, so it
    never sits in the settings by mistake. Empty (an unset line of .env.example) is None."""
    if v is None or not v.get_secret_value():
        return None
    text = v.get_secret_value().strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be the Base64 RSA ciphertext of the PIN, not the PIN itself") from None
    if len(raw) not in (128, 256, 384, 512):
        raise ValueError("must be the Base64 RSA ciphertext of the PIN (1024 to 4096-bit key), not the PIN")
    return SecretStr(text)


def https_host(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", v):
        raise ValueError("must be an https:// host, e.g. https://openapi.airtel.africa")
    return v.rstrip("/") if v is not None else None


@dataclass(frozen=True)
class AirtelAccount:
    """One mode's Airtel Money application: its OAuth client, its host and the country it collects in."""

    mode: str
    base_url: str
    country: str
    currencies: frozenset[str]
    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    # The disbursing wallet's encrypted PIN (payouts); None: this mode does not pay out.
    disbursement_pin: str | None = field(default=None, repr=False)

    @property
    def token_key(self) -> str:
        # The credentials' fingerprint, not the credentials: a rotated secret gets a token of its own.
        raw = f"{self.base_url}|{self.client_id}|{self.client_secret}".encode()
        return f"{TOKEN_KEY_PREFIX}{self.mode}:{hashlib.sha256(raw).hexdigest()[:24]}"


# What the adapter is handed: this provider's account per mode.
AirtelAccounts = Accounts[AirtelAccount]


class AirtelMode(BaseModel):
    # The application's client_id and client_secret (OAuth2 client credentials), from the developer
    # portal's application keys.
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # X-Country and subscriber.country: the one market this application collects in (UG, KE, ...).
    country: Annotated[str | None, AfterValidator(country_code)] = None
    # The API host: openapi.airtel.africa in live mode; some markets have their own (e.g. Zambia's).
    base_url: Annotated[str, AfterValidator(https_host)] = "https://openapi.airtel.africa"
    # Payouts (disbursements): the disbursing wallet's 4-digit PIN, already RSA-encrypted with Airtel's
    # public key and Base64-encoded, as Airtel's portal or `openssl pkeyutl` produce it (docs/providers/
    # airtel.md, "Payouts"). The plain PIN never reaches the gateway. Unset: no payouts in this mode.
    disbursement_pin: Annotated[SecretStr | None, AfterValidator(encrypted_pin)] = None

    def credentials(self, mode: str, countries: dict[str, list[str]]) -> AirtelAccount | None:
        secret = secret_text(self.client_secret)
        if not (self.client_id and secret and self.country and self.country in countries):
            return None
        return AirtelAccount(
            mode=mode,
            base_url=self.base_url.rstrip("/"),
            country=self.country,
            currencies=frozenset(countries[self.country]),
            client_id=self.client_id,
            client_secret=secret,
            disbursement_pin=secret_text(self.disbursement_pin) or None,
        )


class AirtelTestMode(AirtelMode):
    base_url: Annotated[str, AfterValidator(https_host)] = "https://openapiuat.airtel.africa"


class AirtelSettings(PerModeSettings):
    """Airtel Money Collections (docs/providers/airtel.md), per mode: the UAT host in test mode, the
    production host in live mode, one country per mode. Items marked [U] there are settings here."""

    test: AirtelTestMode = AirtelTestMode()
    live: AirtelMode = AirtelMode()
    # The secret path token of the callback URL {public_url}/v1/webhooks/airtel/{token}, registered as the
    # application's callback URL on Airtel's portal. Empty: no callbacks are taken; the reconciler asks.
    callback_token: Annotated[SecretStr | None, AfterValidator(path_token)] = None
    # The private key of "callback authentication" (the application's settings on the portal). Set: every
    # callback must carry a valid `hash` (HMAC-SHA256 of its transaction object), or it is a 401.
    callback_hash_key: SecretStr | None = None
    # The markets and the currencies their wallets take; a payment's currency must be one of its mode's
    # country's. The gateway offers Airtel for the union of them all.
    countries: Annotated[dict[str, list[str]], AfterValidator(_countries)] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_COUNTRIES.items()}
    )
    # The reconciler first asks about an unsettled payment this long after creation (Airtel asks for
    # at least three minutes between a payment and its enquiry)...
    reconcile_after_seconds: float = Field(180.0, ge=0)
    # ...and a USSD push still unanswered this long after creation expires (after a last enquiry).
    action_ttl_seconds: float = Field(1_800.0, gt=0)
    # Payouts: a disbursement the status query still does not know this long after it was sent was
    # never received by Airtel, and fails (provider_not_found) [U: how soon Airtel stores one].
    payout_not_found_after_seconds: float = Field(3_600.0, gt=0)

    def accounts(self) -> AirtelAccounts:
        return Accounts(
            self.test.credentials("test", self.countries), self.live.credentials("live", self.countries)
        )

    def currencies(self) -> frozenset[str]:
        return frozenset(c for currencies in self.countries.values() for c in currencies)
