"""What the provider accounts API takes and shows (the CLI prints the same object)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.provider_accounts.models import ProviderAccount

_CREDENTIALS = (
    "The provider's own fields, all secret: Stripe `secret_key`, `webhook_secret`; Paystack `secret_key`; "
    "Flutterwave `secret_key`, `secret_hash`; M-Pesa `consumer_key`, `consumer_secret`, `shortcode`, "
    "`passkey`, optional `till_number`, `initiator_name`, `security_credential`; MoMo `subscription_key`, "
    "`api_user`, `api_key`, `target_environment`, optional `disbursement_subscription_key`, "
    "`disbursement_api_user`, `disbursement_api_key`; Wave `api_key`, `webhook_secret`; cash none (`{}`). "
    "A key that says its mode (`sk_test_…`) must be of your key's mode."
)
_SETTINGS = (
    "The provider's settings that are not secret: M-Pesa `transaction_type` (`CustomerPayBillOnline`, "
    "`CustomerBuyGoodsOnline`: then `till_number` is required); MoMo `base_url` (required in live mode); "
    "cash `instructions` (shown on the checkout to a customer who chooses cash; up to 300 characters). "
    "The other providers take none."
)


class ProviderAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: dict[str, Any] = Field(default_factory=dict, description=_CREDENTIALS)
    settings: dict[str, Any] = Field(default_factory=dict, description=_SETTINGS)


class ProviderAccountOut(BaseModel):
    object: Literal["provider_account"] = "provider_account"
    id: str = Field(description="`acct_…`; a replaced or revived account keeps it")
    provider: str
    mode: Literal["test", "live"]
    status: Literal["active", "deleted"]
    credentials: dict[str, str] = Field(description="Each credential field's last four characters: `…abcd`")
    settings: dict[str, Any]
    webhook_url: str | None = Field(
        description="Register this URL at the provider: its notifications for this account go there. "
        "For M-Pesa and MoMo, which sign nothing, it ends in a secret token: keep it private. "
        "Null for cash, which sends none."
    )
    created: datetime
    updated: datetime


class ProviderAccountList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ProviderAccountOut]
    has_more: bool = False


def account_out(account: ProviderAccount, webhook_url: str | None) -> ProviderAccountOut:
    return ProviderAccountOut(
        id=account.id,
        provider=account.provider,
        mode="live" if account.livemode else "test",
        status="deleted" if account.status == "deleted" else "active",
        credentials=dict(account.hints),
        settings=dict(account.settings),
        webhook_url=webhook_url,
        created=account.created_at,
        updated=account.updated_at,
    )
