"""A merchant's own Orange Money Web Payment account: what PUT /v1/provider-accounts/orange takes
(fields of OrangeMode). Orange signs nothing: each notification is checked against the notif_token of
the payment it names, so the account needs no callback token; its webhook_url is only the base of the
notif_url each payment gives Orange (nothing is registered at Orange)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from gateway.providers.account_schema import AccountModel, Credential, livemode_of
from gateway.providers.orange.settings import country_segment, sent_currency


class OrangeAccountSettings(AccountModel):
    # The WebPay API's path segment: dev (the sandbox, the default in test mode); in live mode the
    # country's code Orange gives at go-live (ci, cm, sn, ...), required.
    country: Annotated[str | None, AfterValidator(country_segment)] = Field(None, validate_default=True)
    # The currency code sent in place of the payment's (test mode: OUV when unset; live: the payment's).
    currency: Annotated[str | None, AfterValidator(sent_currency)] = None

    @field_validator("country")
    @classmethod
    def _country(cls, v: str | None, info: ValidationInfo) -> str | None:
        if livemode_of(info) and v in (None, "dev"):
            raise ValueError("is required in live mode: the country's code Orange gives at go-live, e.g. ci")
        return v


class OrangeAccountCredentials(AccountModel):
    # The Orange Developer application's client id and secret, and the WebPay merchant key.
    client_id: Credential
    client_secret: Credential
    merchant_key: Credential
