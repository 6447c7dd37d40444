"""The one list of providers: each one's settings group and how its adapter is built.

Adding a provider is a package under providers/ (adapter, transformers, settings, account) and one
field plus a line in each list here; gateway.settings.Settings takes the groups from ProviderSettings,
and the one runtime assembly (gateway.runtime: the API, the worker, the tests) builds the registry
with build_registry().
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from gateway.providers.account_schema import AccountSchema
from gateway.providers.cash.adapter import CashProvider
from gateway.providers.flutterwave.account import FlutterwaveAccountCredentials, FlutterwaveAccountSettings
from gateway.providers.flutterwave.adapter import FlutterwaveProvider
from gateway.providers.flutterwave.settings import FlutterwaveSettings
from gateway.providers.momo.account import MomoAccountCredentials, MomoAccountSettings
from gateway.providers.momo.adapter import MomoProvider
from gateway.providers.momo.settings import MomoSettings
from gateway.providers.mpesa.account import MpesaAccountCredentials, MpesaAccountSettings
from gateway.providers.mpesa.adapter import MpesaProvider
from gateway.providers.mpesa.settings import MpesaSettings
from gateway.providers.paystack.account import PaystackAccountCredentials, PaystackAccountSettings
from gateway.providers.paystack.adapter import PaystackProvider
from gateway.providers.paystack.settings import PaystackSettings
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
}
# Providers that run in the gateway itself and so have no account of a merchant's own.
WITHOUT_ACCOUNTS = frozenset({"sandbox", "cash"})


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
            MomoProvider(settings.momo, redis, base_url, timeout, accounts=settings.momo.accounts()),
            WaveProvider(settings.wave, timeout, accounts=settings.wave.accounts()),
            StripeProvider(settings.stripe, timeout, accounts=settings.stripe.accounts()),
            PaystackProvider(settings.paystack, timeout, accounts=settings.paystack.accounts()),
            FlutterwaveProvider(settings.flutterwave, timeout, accounts=settings.flutterwave.accounts()),
        ]
    )
