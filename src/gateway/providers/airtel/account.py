"""A merchant's own Airtel Money application: what PUT /v1/provider-accounts/airtel takes (fields of
AirtelMode, and the optional callback key). The gateway adds a secret token to the account's callback
URL (which the merchant registers on Airtel's portal); a callback key, where given, is checked too."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr, field_validator

from gateway.providers.account_schema import AccountModel, Credential
from gateway.providers.airtel.settings import DEFAULT_COUNTRIES, country_code, encrypted_pin, https_host


class AirtelAccountSettings(AccountModel):
    # The market the application collects in (X-Country): UG, KE, TZ, ZM, MW, RW, CD, NG, ...
    country: Annotated[str, AfterValidator(country_code)]
    # The API host: the deployment's (openapiuat.airtel.africa in test mode, openapi.airtel.africa in
    # live mode) when unset; a market's own host where Airtel gives one.
    base_url: Annotated[str | None, AfterValidator(https_host)] = Field(None, max_length=200)

    @field_validator("country")
    @classmethod
    def _market(cls, v: str) -> str:
        if v not in DEFAULT_COUNTRIES:
            raise ValueError(f"must be one of Airtel Money's markets: {', '.join(sorted(DEFAULT_COUNTRIES))}")
        return v


class AirtelAccountCredentials(AccountModel):
    # The application's OAuth2 client (the portal's keys of the application, UAT in test mode).
    client_id: Credential
    client_secret: Credential
    # The private key of "callback authentication", where the application has it on.
    callback_hash_key: Credential | None = None
    # Payouts: the disbursing wallet's PIN, RSA-encrypted with Airtel's public key, Base64 (never the
    # plain PIN). Without it the account takes payments but does not pay out.
    disbursement_pin: Credential | None = None

    @field_validator("disbursement_pin")
    @classmethod
    def _pin(cls, v: str | None) -> str | None:
        checked = encrypted_pin(SecretStr(v) if v is not None else None)
        return checked.get_secret_value() if checked is not None else None
