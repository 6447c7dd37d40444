"""M-Pesa's settings (env GATEWAY_MPESA__...) and the credentials its adapter is handed."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from gateway.providers.accounts import Accounts, secret_text
from gateway.providers.config import PerModeSettings, path_token


def _digits(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(r"[0-9]{5,7}", v):
        raise ValueError("must be the 5 to 7 digits of a shortcode or till number")
    return v


Shortcode = Annotated[str | None, AfterValidator(_digits)]
MpesaTransactionType = Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]
B2CCommandID = Literal["BusinessPayment", "SalaryPayment", "PromotionPayment"]


@dataclass(frozen=True)
class App:
    """One Daraja app (consumer key and secret) at one base URL."""

    base_url: str
    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)

    @property
    def basic_auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.consumer_key}:{self.consumer_secret}".encode()).decode()

    @property
    def token_key(self) -> str:
        # Changing the key (or the host) changes the cache entry; the key itself never reaches Redis.
        return (
            "mpesa:oauth:" + hashlib.sha256(f"{self.base_url}\n{self.consumer_key}".encode()).hexdigest()[:24]
        )


@dataclass(frozen=True)
class B2C:
    """One mode's B2C (payouts) configuration: the disbursement shortcode and its API operator."""

    shortcode: str
    initiator: str
    security_credential: str = field(repr=False)


@dataclass(frozen=True)
class Account:
    """One mode's Daraja configuration."""

    mode: str
    app: App
    shortcode: str
    passkey: str = field(repr=False)
    transaction_type: str
    till_number: str | None
    initiator: str | None
    security_credential: str | None = field(repr=False)
    # Payouts (B2C): None where this mode has no B2C shortcode and operator.
    b2c: B2C | None = None


# What the adapter is handed: this provider's account per mode.
MpesaAccounts = Accounts[Account]


class MpesaMode(BaseModel):
    # The Daraja app's consumer key and secret (OAuth client credentials).
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    # BusinessShortCode: the PayBill or head-office (store) number; the sandbox's is 174379.
    shortcode: Shortcode = None
    # The Lipa na M-Pesa Online passkey (the sandbox's is public; production's is emailed at go-live).
    passkey: SecretStr | None = None
    # PayBill (CustomerPayBillOnline, PartyB = the shortcode) or Till (CustomerBuyGoodsOnline, PartyB =
    # the till number below).
    transaction_type: MpesaTransactionType = "CustomerPayBillOnline"
    till_number: Shortcode = None
    # Refunds go through the Reversal API as an API operator with the "Org Reversals Initiator" role: its
    # user name and its SecurityCredential (the password RSA-encrypted with Safaricom's certificate,
    # base64, as the Daraja portal generates it). Unset in both modes: refunds are declared unsupported.
    initiator_name: str | None = None
    security_credential: SecretStr | None = None
    base_url: str = "https://api.safaricom.co.ke"
    # Payouts (B2C, POST /mpesa/b2c/v3/paymentrequest): PartyA, the B2C (bulk disbursement)
    # shortcode, and its API operator with the B2C role: its user name and its SecurityCredential (the
    # initiator password RSA-encrypted with Safaricom's certificate, base64, as the Daraja portal
    # generates it). All three, or payouts through M-Pesa are not configured in this mode.
    b2c_shortcode: Shortcode = None
    b2c_initiator_name: str | None = None
    b2c_security_credential: SecretStr | None = None

    def b2c(self) -> B2C | None:
        credential = secret_text(self.b2c_security_credential)
        if not (self.b2c_shortcode and self.b2c_initiator_name and credential):
            return None
        return B2C(self.b2c_shortcode, self.b2c_initiator_name, credential)

    def credentials(self, mode: str) -> Account | None:
        key, secret = secret_text(self.consumer_key), secret_text(self.consumer_secret)
        passkey = secret_text(self.passkey)
        if not (key and secret and self.shortcode and passkey):
            return None
        if self.transaction_type == "CustomerBuyGoodsOnline" and not self.till_number:
            return None
        return Account(
            mode=mode,
            app=App(self.base_url.rstrip("/"), key, secret),
            shortcode=self.shortcode,
            passkey=passkey,
            transaction_type=self.transaction_type,
            till_number=self.till_number,
            initiator=self.initiator_name or None,
            security_credential=secret_text(self.security_credential),
            b2c=self.b2c(),
        )


class MpesaTestMode(MpesaMode):
    base_url: str = "https://sandbox.safaricom.co.ke"


class MpesaSettings(PerModeSettings):
    """Safaricom M-Pesa Daraja, STK Push (docs/providers/mpesa.md), per mode. Items marked [U] there are
    settings here."""

    test: MpesaTestMode = MpesaTestMode()
    live: MpesaMode = MpesaMode()
    # The secret path token of the callback URL {public_url}/v1/webhooks/mpesa/{token} (M-Pesa signs
    # nothing). Required: without it no M-Pesa payment is created.
    callback_token: Annotated[SecretStr | None, AfterValidator(path_token)] = None
    # The Timestamp (and so the Password) is local time at this offset from UTC [U]: EAT, UTC+3.
    timestamp_utc_offset_minutes: int = Field(180, ge=-720, le=840)
    # Whether the Reversal API takes part of a payment [U: undocumented]; off, refunds are whole payments.
    partial_reversals: bool = False
    # STK Query answers meaning "the customer has not answered yet" [U]: error bodies with these
    # errorCodes ("The transaction is being processed"), and these ResultCodes.
    stk_query_pending_error_codes: list[str] = Field(default_factory=lambda: ["500.001.1001"])
    stk_query_pending_result_codes: list[str] = Field(default_factory=lambda: ["4999"])
    # The B2C CommandID of every payout: BusinessPayment (registered customers only), SalaryPayment
    # (registered or not) or PromotionPayment (a congratulatory message).
    b2c_command_id: B2CCommandID = "BusinessPayment"
    # The reconciler first asks about an unsettled M-Pesa payment or refund this long after creation...
    reconcile_after_seconds: float = Field(90.0, ge=0)
    # ...and a prompt still unanswered this long after creation expires (after a last STK Query).
    action_ttl_seconds: float = Field(600.0, gt=0)

    def accounts(self) -> MpesaAccounts:
        return Accounts(self.test.credentials("test"), self.live.credentials("live"))
