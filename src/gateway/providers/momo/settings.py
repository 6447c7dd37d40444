"""MTN MoMo's settings (env GATEWAY_MOMO__...) and the credentials its adapter is handed."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from gateway.providers.accounts import Accounts, secret_text
from gateway.providers.config import PerModeSettings, currency_codes, path_token

COLLECTION, DISBURSEMENT = "collection", "disbursement"
TOKEN_KEY_PREFIX = "momo:token:"


@dataclass(frozen=True)
class Product:
    """One MoMo product's credentials in one mode."""

    name: str
    mode: str
    base_url: str
    target_environment: str
    subscription_key: str = field(repr=False)
    api_user: str
    api_key: str = field(repr=False)

    @property
    def token_key(self) -> str:
        # The credentials' fingerprint, not the credentials: a rotated key gets a token of its own.
        raw = f"{self.base_url}|{self.api_user}|{self.api_key}|{self.subscription_key}".encode()
        return f"{TOKEN_KEY_PREFIX}{self.name}:{self.mode}:{hashlib.sha256(raw).hexdigest()[:24]}"

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.api_user}:{self.api_key}".encode()).decode()


@dataclass(frozen=True)
class MomoCredentials:
    """One mode's MoMo account: its target environment and the products it holds credentials for."""

    target_environment: str | None
    collection: Product | None
    disbursement: Product | None

    def product(self, name: str) -> Product | None:
        return self.collection if name == COLLECTION else self.disbursement


# What the adapter is handed: this provider's account per mode.
MomoAccounts = Accounts[MomoCredentials]


class MomoMode(BaseModel):
    # The primary key of the Collections product subscription (Ocp-Apim-Subscription-Key).
    subscription_key: SecretStr | None = None
    # The API user (a UUID) and its API key: sandbox ones are provisioned through /v1_0/apiuser,
    # production ones come from the partner portal.
    api_user: str | None = None
    api_key: SecretStr | None = None
    # X-Target-Environment: "sandbox", or e.g. mtnuganda, mtnghana, mtnrwanda, mtnivorycoast, mtncongo.
    target_environment: str | None = None
    # The API host: the sandbox in test mode; in live mode the country's (e.g. https://proxy.momoapi.mtn.co.rw).
    base_url: str | None = None
    # Refunds go through the Disbursement product (its own subscription key, API user and key).
    # Unset in both modes: refunds are declared unsupported (422 refund_not_supported).
    disbursement_subscription_key: SecretStr | None = None
    disbursement_api_user: str | None = None
    disbursement_api_key: SecretStr | None = None

    def _product(
        self, name: str, mode: str, key: SecretStr | None, user: str | None, secret: SecretStr | None
    ) -> Product | None:
        subscription, api_key = secret_text(key), secret_text(secret)
        base_url, environment = self.base_url, self.target_environment
        if not (base_url and environment and subscription and user and api_key):
            return None
        return Product(name, mode, base_url.rstrip("/"), environment, subscription, user, api_key)

    def credentials(self, mode: str) -> MomoCredentials:
        return MomoCredentials(
            self.target_environment,
            self._product(COLLECTION, mode, self.subscription_key, self.api_user, self.api_key),
            self._product(
                DISBURSEMENT,
                mode,
                self.disbursement_subscription_key,
                self.disbursement_api_user,
                self.disbursement_api_key,
            ),
        )


class MomoTestMode(MomoMode):
    target_environment: str | None = "sandbox"
    base_url: str | None = "https://sandbox.momodeveloper.mtn.com"


class MomoSettings(PerModeSettings):
    """MTN MoMo Collection (docs/providers/momo.md), per mode. Sandbox: the test host, target environment
    `sandbox`, EUR only; production: the country host and target environment MTN gives at go-live."""

    test: MomoTestMode = MomoTestMode()
    live: MomoMode = MomoMode()
    # The secret path token of the callback URL {public_url}/v1/webhooks/momo/{token} sent as X-Callback-Url
    # (its host must be the API user's providerCallbackHost). Empty: no callbacks; the reconciler asks.
    callback_token: Annotated[SecretStr | None, AfterValidator(path_token)] = None
    # Whether a refund may return part of a payment [U].
    partial_refunds: bool = True
    # What the wallets collect in: EUR in the sandbox, the country's currency in production.
    currencies: Annotated[list[str], AfterValidator(currency_codes)] = Field(
        default_factory=lambda: ["EUR", "UGX", "GHS", "RWF", "XAF", "XOF", "ZMW", "GNF", "LRD", "SZL"]
    )
    # Ask for the status right after MoMo accepts a request to pay, so a payer MoMo refuses at once
    # (unknown number, not allowed) is a 402 on create rather than a prompt that never comes.
    confirm_after_create: bool = True
    # The reconciler first asks about an unsettled MoMo payment or refund this long after creation...
    reconcile_after_seconds: float = Field(60.0, ge=0)
    # ...and a request to pay still unanswered this long after creation expires (after a last query).
    action_ttl_seconds: float = Field(1_800.0, gt=0)
    # A payout's transfer MoMo still does not know this long after it was submitted was never
    # received (MoMo stores a transfer before answering 202): it fails as provider_not_found.
    payout_not_found_after_seconds: float = Field(600.0, gt=0)

    def accounts(self) -> MomoAccounts:
        return Accounts(self.test.credentials("test"), self.live.credentials("live"))
