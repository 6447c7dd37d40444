"""A merchant's own M-Pesa (Daraja) account: what PUT /v1/provider-accounts/mpesa takes (fields of
MpesaMode). M-Pesa signs nothing: the gateway adds a secret token to the account's callback URL."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from gateway.providers.account_schema import AccountModel, Credential, settings_of
from gateway.providers.mpesa.settings import MpesaTransactionType, Shortcode


class MpesaAccountSettings(AccountModel):
    # PayBill (CustomerPayBillOnline) or Till (CustomerBuyGoodsOnline: PartyB is the till number).
    transaction_type: MpesaTransactionType = "CustomerPayBillOnline"


class MpesaAccountCredentials(AccountModel):
    consumer_key: Credential
    consumer_secret: Credential
    shortcode: Shortcode = Field(...)
    passkey: Credential
    till_number: Shortcode = Field(None, validate_default=True)
    # The API operator allowed to reverse (refund), and its SecurityCredential: both or neither.
    initiator_name: Credential | None = None
    security_credential: Credential | None = Field(None, validate_default=True)
    # Payouts (B2C): the disbursement shortcode and its API operator: all three or none (CommandID
    # BusinessPayment).
    b2c_shortcode: Shortcode = None
    b2c_initiator_name: Credential | None = None
    b2c_security_credential: Credential | None = Field(None, validate_default=True)

    @field_validator("shortcode")
    @classmethod
    def _given(cls, v: str | None) -> str:
        if v is None:
            raise ValueError("is required")
        return v

    @field_validator("till_number")
    @classmethod
    def _till(cls, v: str | None, info: ValidationInfo) -> str | None:
        settings = settings_of(info)
        if v is None and getattr(settings, "transaction_type", None) == "CustomerBuyGoodsOnline":
            raise ValueError("is required when settings.transaction_type is CustomerBuyGoodsOnline")
        return v

    @field_validator("security_credential")
    @classmethod
    def _reversals(cls, v: str | None, info: ValidationInfo) -> str | None:
        if (v is None) != (info.data.get("initiator_name") is None):
            raise ValueError("initiator_name and security_credential go together (refunds need both)")
        return v

    @field_validator("b2c_security_credential")
    @classmethod
    def _payouts(cls, v: str | None, info: ValidationInfo) -> str | None:
        given = [v is not None, info.data.get("b2c_initiator_name") is not None]
        given.append(info.data.get("b2c_shortcode") is not None)
        if any(given) and not all(given):
            raise ValueError("b2c_shortcode, b2c_initiator_name and b2c_security_credential go together")
        return v
