"""A merchant's own MTN MoMo account: what PUT /v1/provider-accounts/momo takes (fields of MomoMode).
MoMo signs nothing: the gateway adds a secret token to the account's callback URL."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from gateway.providers.account_schema import AccountModel, Credential, livemode_of


def _uuid(v: str) -> str:
    try:
        return str(uuid.UUID(v))
    except ValueError:
        raise ValueError("must be the API user's UUID") from None


ApiUser = Annotated[Credential, AfterValidator(_uuid)]


class MomoAccountSettings(AccountModel):
    # The API host: the sandbox's in test mode when unset; in live mode the country's, e.g.
    # https://proxy.momoapi.mtn.co.rw (required).
    base_url: str | None = Field(None, max_length=200, validate_default=True)

    @field_validator("base_url")
    @classmethod
    def _host(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            if livemode_of(info):
                raise ValueError("is required in live mode: the API host MTN gives at go-live")
            return None
        if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", v):
            raise ValueError("must be an https:// host, e.g. https://proxy.momoapi.mtn.co.rw")
        return v.rstrip("/")


class MomoAccountCredentials(AccountModel):
    # The Collection product's subscription key, its API user (a UUID) and API key.
    subscription_key: Credential
    api_user: ApiUser
    api_key: Credential
    # X-Target-Environment: "sandbox" in test mode; the country's in live mode (e.g. mtnuganda).
    target_environment: Annotated[str, Field(pattern=r"^[a-z]{3,40}$")]
    # Refunds go through the Disbursement product: all three, or none (no refunds).
    disbursement_subscription_key: Credential | None = None
    disbursement_api_user: ApiUser | None = None
    disbursement_api_key: Credential | None = Field(None, validate_default=True)

    @field_validator("target_environment")
    @classmethod
    def _environment(cls, v: str, info: ValidationInfo) -> str:
        if livemode_of(info) == (v == "sandbox"):
            raise ValueError("must be sandbox in test mode, and the country's environment in live mode")
        return v

    @field_validator("disbursement_api_key")
    @classmethod
    def _disbursement(cls, v: str | None, info: ValidationInfo) -> str | None:
        given = [
            info.data.get("disbursement_subscription_key") is not None,
            info.data.get("disbursement_api_user") is not None,
            v is not None,
        ]
        if any(given) and not all(given):
            raise ValueError(
                "disbursement_subscription_key, disbursement_api_user and disbursement_api_key go together"
            )
        return v
