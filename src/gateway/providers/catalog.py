"""The one list of providers: each one's settings group and how its adapter is built.

Adding a provider is a package under providers/ (adapter, transformers, settings, account) and one
field plus a line in each list here; gateway.settings.Settings takes the groups from ProviderSettings,
and the one runtime assembly (gateway.runtime: the API, the worker, the tests) builds the registry
with build_registry().
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, SecretStr
from redis.asyncio import Redis

from gateway.providers.account_schema import AccountSchema
from gateway.providers.airtel.account import AirtelAccountCredentials, AirtelAccountSettings
from gateway.providers.airtel.adapter import AirtelProvider
from gateway.providers.airtel.settings import AirtelSettings
from gateway.providers.base import PaymentProvider
from gateway.providers.cash.account import CashAccountCredentials, CashAccountSettings
from gateway.providers.cash.adapter import CashProvider
from gateway.providers.config import PerModeSettings
from gateway.providers.flutterwave.account import FlutterwaveAccountCredentials, FlutterwaveAccountSettings
from gateway.providers.flutterwave.adapter import FlutterwaveProvider
from gateway.providers.flutterwave.settings import FlutterwaveSettings
from gateway.providers.momo.account import MomoAccountCredentials, MomoAccountSettings
from gateway.providers.momo.adapter import MomoProvider
from gateway.providers.momo.settings import MomoSettings
from gateway.providers.mpesa.account import MpesaAccountCredentials, MpesaAccountSettings
from gateway.providers.mpesa.adapter import MpesaProvider
from gateway.providers.mpesa.settings import MpesaSettings
from gateway.providers.orange.account import OrangeAccountCredentials, OrangeAccountSettings
from gateway.providers.orange.adapter import OrangeProvider
from gateway.providers.orange.settings import OrangeSettings
from gateway.providers.paypal.account import PaypalAccountCredentials, PaypalAccountSettings
from gateway.providers.paypal.adapter import PaypalProvider
from gateway.providers.paypal.settings import PaypalSettings
from gateway.providers.paystack.account import PaystackAccountCredentials, PaystackAccountSettings
from gateway.providers.paystack.adapter import PaystackProvider
from gateway.providers.paystack.settings import PaystackSettings
from gateway.providers.razorpay.account import RazorpayAccountCredentials, RazorpayAccountSettings
from gateway.providers.razorpay.adapter import RazorpayProvider
from gateway.providers.razorpay.settings import RazorpaySettings
from gateway.providers.registry import ProviderRegistry
from gateway.providers.sandbox.adapter import SandboxProvider
from gateway.providers.sandbox.settings import SandboxSettings
from gateway.providers.stripe.account import StripeAccountCredentials, StripeAccountSettings
from gateway.providers.stripe.adapter import StripeProvider
from gateway.providers.stripe.settings import StripeSettings
from gateway.providers.wave.account import WaveAccountCredentials, WaveAccountSettings
from gateway.providers.wave.adapter import WaveProvider
from gateway.providers.wave.settings import WaveSettings


class ProviderSettings(BaseModel):
    """Each provider's settings group (env GATEWAY_<PROVIDER>__...), part of gateway.settings.Settings."""

    sandbox: SandboxSettings = SandboxSettings()
    stripe: StripeSettings = StripeSettings()
    paystack: PaystackSettings = PaystackSettings()
    flutterwave: FlutterwaveSettings = FlutterwaveSettings()
    mpesa: MpesaSettings = MpesaSettings()
    wave: WaveSettings = WaveSettings()
    momo: MomoSettings = MomoSettings()
    paypal: PaypalSettings = PaypalSettings()
    razorpay: RazorpaySettings = RazorpaySettings()
    orange: OrangeSettings = OrangeSettings()
    airtel: AirtelSettings = AirtelSettings()
    # Payments with no answer from the provider may be re-sent (same provider idempotency key) after this.
    provider_timeout_seconds: float = Field(20.0, gt=0, le=120)


# What a merchant's own account with each provider holds (PUT /v1/provider-accounts/{provider}).
ACCOUNTS: dict[str, AccountSchema] = {
    "stripe": AccountSchema(StripeAccountCredentials, StripeAccountSettings),
    "paystack": AccountSchema(PaystackAccountCredentials, PaystackAccountSettings),
    "flutterwave": AccountSchema(FlutterwaveAccountCredentials, FlutterwaveAccountSettings),
    "mpesa": AccountSchema(MpesaAccountCredentials, MpesaAccountSettings, callback_token=True),
    "momo": AccountSchema(MomoAccountCredentials, MomoAccountSettings, callback_token=True),
    "wave": AccountSchema(WaveAccountCredentials, WaveAccountSettings),
    # No credentials, no webhooks: an active cash account offers cash on the merchant's checkout.
    "cash": AccountSchema(CashAccountCredentials, CashAccountSettings, webhooks=False),
    "paypal": AccountSchema(PaypalAccountCredentials, PaypalAccountSettings),
    "razorpay": AccountSchema(RazorpayAccountCredentials, RazorpayAccountSettings),
    # Each notification carries the notif_token of its payment: no callback token in the URL.
    "orange": AccountSchema(OrangeAccountCredentials, OrangeAccountSettings),
    "airtel": AccountSchema(AirtelAccountCredentials, AirtelAccountSettings, callback_token=True),
}
# Providers that run in the gateway itself and so have no account of a merchant's own.
WITHOUT_ACCOUNTS = frozenset({"sandbox"})


# Providers whose payments go through the merchant's own account; the sandbox and cash hold no money
# of anyone's, so their payments go through the deployment's adapter (a cash account only says
# whether customers may choose cash on the checkout).
ACCOUNT_PROVIDERS = frozenset(ACCOUNTS) - {"cash"}


def _one_mode(group: PerModeSettings, livemode: bool, values: dict[str, Any]) -> PerModeSettings:
    """The provider's settings with one mode holding the account's values (and the deployment's base
    URL for that mode, which is the operator's choice of host) and the other mode empty."""
    mode, other = ("live", "test") if livemode else ("test", "live")
    deployment = getattr(group, mode)
    base = {"base_url": deployment.base_url} if "base_url" in type(deployment).model_fields else {}
    return group.model_copy(
        update={
            mode: type(deployment).model_validate({**base, **values}),
            other: type(getattr(group, other))(),
        }
    )


def build_account_adapter(
    settings: ProviderSettings,
    redis: Redis,
    base_url: str,
    *,
    provider: str,
    account_id: str,
    livemode: bool,
    values: dict[str, Any],
) -> PaymentProvider:
    """The adapter of one merchant's account: the provider's deployment settings, with the account's
    credentials and settings (`values`, named as the provider's mode settings name them) in its mode.
    Callbacks that carry a path token reach /v1/webhooks/{provider}/{account_id}/{callback_token}."""
    timeout = settings.provider_timeout_seconds
    webhooks = f"{base_url}/v1/webhooks/{provider}/{account_id}"
    values = dict(values)
    token = values.pop("callback_token", None)
    callback = {"callback_token": SecretStr(token)} if token else {"callback_token": None}
    if provider == "mpesa":
        mpesa = _one_mode(settings.mpesa, livemode, values).model_copy(update=callback)
        assert isinstance(mpesa, MpesaSettings)
        return MpesaProvider(mpesa, redis, webhooks, timeout, accounts=mpesa.accounts())
    if provider == "momo":
        momo = _one_mode(settings.momo, livemode, values).model_copy(update=callback)
        assert isinstance(momo, MomoSettings)
        return MomoProvider(momo, redis, webhooks, timeout, accounts=momo.accounts())
    if provider == "wave":
        wave = _one_mode(settings.wave, livemode, values)
        assert isinstance(wave, WaveSettings)
        return WaveProvider(wave, timeout, accounts=wave.accounts())
    if provider == "stripe":
        stripe = _one_mode(settings.stripe, livemode, values)
        assert isinstance(stripe, StripeSettings)
        return StripeProvider(stripe, timeout, accounts=stripe.accounts())
    if provider == "paystack":
        paystack = _one_mode(settings.paystack, livemode, values)
        assert isinstance(paystack, PaystackSettings)
        return PaystackProvider(paystack, timeout, accounts=paystack.accounts())
    if provider == "flutterwave":
        flutterwave = _one_mode(settings.flutterwave, livemode, values)
        assert isinstance(flutterwave, FlutterwaveSettings)
        return FlutterwaveProvider(flutterwave, timeout, accounts=flutterwave.accounts())
    if provider == "paypal":
        paypal = _one_mode(settings.paypal, livemode, values)
        assert isinstance(paypal, PaypalSettings)
        return PaypalProvider(paypal, redis, timeout, accounts=paypal.accounts())
    if provider == "razorpay":
        razorpay = _one_mode(settings.razorpay, livemode, values)
        assert isinstance(razorpay, RazorpaySettings)
        return RazorpayProvider(razorpay, timeout, accounts=razorpay.accounts())
    if provider == "orange":
        orange = _one_mode(settings.orange, livemode, values)
        assert isinstance(orange, OrangeSettings)
        return OrangeProvider(orange, redis, webhooks, timeout, accounts=orange.accounts())
    if provider == "airtel":
        hash_key = values.pop("callback_hash_key", None)
        keys = {**callback, "callback_hash_key": SecretStr(hash_key) if hash_key else None}
        airtel = _one_mode(settings.airtel, livemode, values).model_copy(update=keys)
        assert isinstance(airtel, AirtelSettings)
        return AirtelProvider(airtel, redis, webhooks, timeout, accounts=airtel.accounts())
    raise ValueError(f"{provider} takes no merchant accounts")


def build_registry(settings: ProviderSettings, redis: Redis, base_url: str) -> ProviderRegistry:
    """Every provider's adapter, handed the deployment's accounts from the settings; `base_url` is
    where providers reach this gateway (its webhook and callback URLs)."""
    timeout, webhooks = settings.provider_timeout_seconds, base_url + "/v1/webhooks"
    return ProviderRegistry(
        [
            SandboxProvider(settings.sandbox, redis, webhooks + "/sandbox"),
            CashProvider(),
            MpesaProvider(
                settings.mpesa, redis, webhooks + "/mpesa", timeout, accounts=settings.mpesa.accounts()
            ),
            MomoProvider(
                settings.momo, redis, webhooks + "/momo", timeout, accounts=settings.momo.accounts()
            ),
            WaveProvider(settings.wave, timeout, accounts=settings.wave.accounts()),
            StripeProvider(settings.stripe, timeout, accounts=settings.stripe.accounts()),
            PaystackProvider(settings.paystack, timeout, accounts=settings.paystack.accounts()),
            FlutterwaveProvider(settings.flutterwave, timeout, accounts=settings.flutterwave.accounts()),
            PaypalProvider(settings.paypal, redis, timeout, accounts=settings.paypal.accounts()),
            RazorpayProvider(settings.razorpay, timeout, accounts=settings.razorpay.accounts()),
            OrangeProvider(
                settings.orange, redis, webhooks + "/orange", timeout, accounts=settings.orange.accounts()
            ),
            AirtelProvider(
                settings.airtel, redis, webhooks + "/airtel", timeout, accounts=settings.airtel.accounts()
            ),
        ]
    )
