"""Every provider the gateway has, built from the settings into one registry."""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.providers.cash.adapter import CashProvider
from gateway.providers.flutterwave.adapter import FlutterwaveProvider
from gateway.providers.momo.adapter import MomoProvider
from gateway.providers.mpesa.adapter import MpesaProvider
from gateway.providers.paystack.adapter import PaystackProvider
from gateway.providers.registry import ProviderRegistry
from gateway.providers.sandbox.adapter import SandboxProvider
from gateway.providers.stripe.adapter import StripeProvider
from gateway.providers.wave.adapter import WaveProvider
from gateway.settings import Settings


def build_registry(settings: Settings, redis: Redis) -> ProviderRegistry:
    return ProviderRegistry(
        [
            SandboxProvider(settings.sandbox, redis, settings.base_url + "/v1/webhooks/sandbox"),
            CashProvider(),
            MpesaProvider(
                settings.mpesa,
                redis,
                settings.base_url + "/v1/webhooks/mpesa",
                settings.provider_timeout_seconds,
            ),
            MomoProvider(settings.momo, redis, settings.base_url, settings.provider_timeout_seconds),
            WaveProvider(settings.wave, settings.provider_timeout_seconds),
            StripeProvider(settings.stripe, settings.provider_timeout_seconds),
            PaystackProvider(settings.paystack, settings.provider_timeout_seconds),
            FlutterwaveProvider(settings.flutterwave, settings.provider_timeout_seconds),
        ]
    )
