"""The sandbox's settings (env GATEWAY_SANDBOX__...): no provider account, so no modes."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class SandboxSettings(BaseModel):
    webhook_secret: SecretStr = SecretStr("whsec_c2FuZGJveC1kZXYtc2VjcmV0LWRvLW5vdC11c2UtaW4tcHJvZA==")
    # How long the simulated customer takes before the sandbox reports the outcome by webhook.
    action_delay_seconds: float = Field(3.0, ge=0, le=3_600)
    send_webhooks: bool = True
    # Off: the sandbox declares it cannot refund, for testing how an integration handles such providers.
    refunds: bool = True
    # The reconciler's first question about an unsettled sandbox payment, and when a customer who never
    # acts makes the payment expire.
    reconcile_after_seconds: float = Field(60.0, ge=0)
    action_ttl_seconds: float = Field(900.0, gt=0)
