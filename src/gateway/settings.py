"""Settings from the environment (prefix GATEWAY_, nested groups joined by a double underscore)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.kit.money import is_currency


def _database_url(v: str) -> str:
    # Operators paste plain postgres:// URLs; SQLAlchemy needs the driver named.
    for prefix in ("postgres://", "postgresql://"):
        if v.startswith(prefix):
            return "postgresql+asyncpg://" + v[len(prefix) :]
    if v and not v.startswith("postgresql+asyncpg://"):
        raise ValueError("must be a postgresql:// URL")
    return v


def _redis_url(v: str) -> str:
    if v and not v.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return v


class DatabaseSettings(BaseModel):
    # The asyncpg pool of each worker process: every request and background loop of the process
    # shares it. Enough for 16-32 requests in flight without opening connections under load.
    pool_size: int = Field(20, ge=1, le=200)


class IdempotencySettings(BaseModel):
    # Stored results are kept at least this long (Stripe keeps them 24 h).
    ttl_seconds: int = Field(86_400, ge=3_600)
    # How long a claimed key stays locked if its request dies without finishing.
    lock_seconds: int = Field(60, ge=5, le=3_600)


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


class WebhookSettings(BaseModel):
    # Inbound events stored but not processed after this long are picked up by the sweeper.
    sweep_after_seconds: float = Field(30.0, ge=0)
    sweep_interval_seconds: float = Field(15.0, gt=0)
    max_attempts: int = Field(10, ge=1)


class DeliverySettings(BaseModel):
    """Outbound webhooks to merchants."""

    # Seconds before each attempt, the first counted from the event: about three days in all.
    retry_schedule: list[float] = Field(
        default_factory=lambda: [
            0.0,
            5.0,
            300.0,
            1_800.0,
            7_200.0,
            18_000.0,
            36_000.0,
            50_400.0,
            72_000.0,
            86_400.0,
        ],
        min_length=1,
    )
    timeout_seconds: float = Field(10.0, gt=0, le=60)
    # Run the delivery worker inside each API process (`gateway worker` runs it alone).
    run_in_process: bool = True
    poll_interval_seconds: float = Field(1.0, gt=0, le=60)
    batch_size: int = Field(20, ge=1, le=500)
    # Endpoints on loopback, private, link-local or metadata addresses are refused unless this is on
    # (`gateway dev` turns it on, with a warning, so local receivers work).
    allow_private_targets: bool = False


class ReconcilerSettings(BaseModel):
    """Asks providers about payments and refunds they never reported on; expires abandoned ones."""

    run_in_process: bool = True
    interval_seconds: float = Field(15.0, gt=0)
    batch_size: int = Field(50, ge=1, le=1_000)
    # Between two questions about the same object: doubling from `backoff_seconds` up to the max.
    backoff_seconds: float = Field(60.0, gt=0)
    max_backoff_seconds: float = Field(3_600.0, gt=0)


class StripeSettings(BaseModel):
    test_secret_key: SecretStr | None = None
    live_secret_key: SecretStr | None = None
    # The endpoint signing secrets (whsec_...) of the webhook endpoints registered at Stripe.
    test_webhook_secret: SecretStr | None = None
    live_webhook_secret: SecretStr | None = None
    api_base: str = "https://api.stripe.com"


class PaystackSettings(BaseModel):
    # Paystack signs webhooks with the same secret key (HMAC-SHA512).
    test_secret_key: SecretStr | None = None
    live_secret_key: SecretStr | None = None
    base_url: str = "https://api.paystack.co"


class FlutterwaveSettings(BaseModel):
    test_secret_key: SecretStr | None = None
    live_secret_key: SecretStr | None = None
    # The "secret hash" set in the dashboard, sent back in the `verif-hash` header.
    test_secret_hash: SecretStr | None = None
    live_secret_hash: SecretStr | None = None
    base_url: str = "https://api.flutterwave.com"


def _currency_codes(v: list[str]) -> list[str]:
    if not v:
        raise ValueError("at least one currency is needed")
    unknown = [c for c in v if not is_currency(c)]
    if unknown:
        raise ValueError(f"not upper-case ISO 4217 codes: {', '.join(unknown)}")
    return v


class WaveSettings(BaseModel):
    """Wave Checkout (shared/providers.md §6). Items marked [U] there are settings here."""

    # API keys of the business wallet, per mode (Business Portal, with the Checkout API enabled).
    # Live keys look like wave_sn_prod_...; test-mode keys (wave_sn_test_...) are reported, not documented.
    test_api_key: SecretStr | None = None
    live_api_key: SecretStr | None = None
    # The secrets of the webhooks registered in the Business Portal (wave_sn_WHS_...), pointing at
    # {public_url}/v1/webhooks/wave. Any configured one is accepted.
    test_webhook_secret: SecretStr | None = None
    live_webhook_secret: SecretStr | None = None
    # The security strategy chosen when the webhook was registered: "signing_secret" (Wave-Signature
    # HMAC-SHA256, recommended) or "shared_secret" (the secret itself as `Authorization: Bearer`).
    webhook_auth: Literal["signing_secret", "shared_secret"] = "signing_secret"
    # What stands between the timestamp and the raw body in the signed string [U]: "" (t + body, as
    # Wave's samples do) or "." (t + "." + body).
    webhook_signature_separator: Literal["", "."] = ""
    # Signed webhooks whose timestamp is further than this from now are refused (replays); 0: no check.
    webhook_tolerance_seconds: int = Field(300, ge=0)
    base_url: str = "https://api.wave.com"
    # What the wallet collects in (XOF in Senegal and Cote d'Ivoire; other countries' currencies [U]).
    currencies: Annotated[list[str], AfterValidator(_currency_codes)] = Field(default_factory=lambda: ["XOF"])
    # success_url and error_url for payments created without a return_url (empty: such payments fail
    # with return_url_required, since Wave needs both).
    default_return_url: str = ""
    # Send our payment id (refund id) as `Idempotency-Key` on creates and refunds [U: optional for checkout].
    send_idempotency_key: bool = True
    # Let only the customer's own Wave account (customer.phone, E.164) pay the session.
    restrict_payer_mobile: bool = False
    # The reconciler first asks about an unsettled Wave payment or refund this long after creation...
    reconcile_after_seconds: float = Field(120.0, ge=0)
    # ...and a session still unpaid this long after creation is expired at Wave and here (Wave's own
    # session lifetime is about 30 minutes [U]; keep this above it).
    action_ttl_seconds: float = Field(2_400.0, gt=0)


def _path_token(v: SecretStr | None) -> SecretStr | None:
    # A secret in a callback URL's path: URL-safe, and long enough not to be guessed.
    token = v.get_secret_value() if v is not None else ""
    if token and not re.fullmatch(r"[A-Za-z0-9_-]{24,200}", token):
        raise ValueError("must be 24 to 200 characters of A-Z, a-z, 0-9, '_' and '-'")
    return v


class MomoSettings(BaseModel):
    """MTN MoMo Collection (shared/providers.md §5), per mode. Sandbox: the host below, target environment
    `sandbox`, EUR only; production: the country host and target environment MTN gives at go-live."""

    # The primary key of the Collections product subscription (Ocp-Apim-Subscription-Key).
    test_subscription_key: SecretStr | None = None
    live_subscription_key: SecretStr | None = None
    # The API user (a UUID) and its API key: sandbox ones are provisioned through /v1_0/apiuser,
    # production ones come from the partner portal.
    test_api_user: str | None = None
    live_api_user: str | None = None
    test_api_key: SecretStr | None = None
    live_api_key: SecretStr | None = None
    # X-Target-Environment: "sandbox", or e.g. mtnuganda, mtnghana, mtnrwanda, mtnivorycoast, mtncongo.
    test_target_environment: str = "sandbox"
    live_target_environment: str | None = None
    # The API host: the sandbox in test mode; in live mode the country's (e.g. https://proxy.momoapi.mtn.co.rw).
    test_base_url: str = "https://sandbox.momodeveloper.mtn.com"
    live_base_url: str | None = None
    # The secret path token of the callback URL {public_url}/v1/webhooks/momo/{token} sent as X-Callback-Url
    # (its host must be the API user's providerCallbackHost). Empty: no callbacks; the reconciler asks.
    callback_token: Annotated[SecretStr | None, AfterValidator(_path_token)] = None
    # Refunds go through the Disbursement product (its own subscription key, API user and key, per mode).
    # Unset in both modes: refunds are declared unsupported (422 refund_not_supported).
    test_disbursement_subscription_key: SecretStr | None = None
    live_disbursement_subscription_key: SecretStr | None = None
    test_disbursement_api_user: str | None = None
    live_disbursement_api_user: str | None = None
    test_disbursement_api_key: SecretStr | None = None
    live_disbursement_api_key: SecretStr | None = None
    # Whether a refund may return part of a payment [U].
    partial_refunds: bool = True
    # What the wallets collect in: EUR in the sandbox, the country's currency in production.
    currencies: Annotated[list[str], AfterValidator(_currency_codes)] = Field(
        default_factory=lambda: ["EUR", "UGX", "GHS", "RWF", "XAF", "XOF", "ZMW", "GNF", "LRD", "SZL"]
    )
    # Ask for the status right after MoMo accepts a request to pay, so a payer MoMo refuses at once
    # (unknown number, not allowed) is a 402 on create rather than a prompt that never comes.
    confirm_after_create: bool = True
    # The reconciler first asks about an unsettled MoMo payment or refund this long after creation...
    reconcile_after_seconds: float = Field(60.0, ge=0)
    # ...and a request to pay still unanswered this long after creation expires (after a last query).
    action_ttl_seconds: float = Field(1_800.0, gt=0)


def _digits(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(r"[0-9]{5,7}", v):
        raise ValueError("must be the 5 to 7 digits of a shortcode or till number")
    return v


Shortcode = Annotated[str | None, AfterValidator(_digits)]
MpesaTransactionType = Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]


class MpesaSettings(BaseModel):
    """Safaricom M-Pesa Daraja, STK Push (shared/providers.md §2), per mode. Items marked [U] there are
    settings here."""

    # The Daraja app's consumer key and secret (OAuth client credentials).
    test_consumer_key: SecretStr | None = None
    live_consumer_key: SecretStr | None = None
    test_consumer_secret: SecretStr | None = None
    live_consumer_secret: SecretStr | None = None
    # BusinessShortCode: the PayBill or head-office (store) number; the sandbox's is 174379.
    test_shortcode: Shortcode = None
    live_shortcode: Shortcode = None
    # The Lipa na M-Pesa Online passkey (the sandbox's is public; production's is emailed at go-live).
    test_passkey: SecretStr | None = None
    live_passkey: SecretStr | None = None
    # PayBill (CustomerPayBillOnline, PartyB = the shortcode) or Till (CustomerBuyGoodsOnline, PartyB =
    # the till number below).
    test_transaction_type: MpesaTransactionType = "CustomerPayBillOnline"
    live_transaction_type: MpesaTransactionType = "CustomerPayBillOnline"
    test_till_number: Shortcode = None
    live_till_number: Shortcode = None
    # Refunds go through the Reversal API as an API operator with the "Org Reversals Initiator" role: its
    # user name and its SecurityCredential (the password RSA-encrypted with Safaricom's certificate,
    # base64, as the Daraja portal generates it). Unset in both modes: refunds are declared unsupported.
    test_initiator_name: str | None = None
    live_initiator_name: str | None = None
    test_security_credential: SecretStr | None = None
    live_security_credential: SecretStr | None = None
    test_base_url: str = "https://sandbox.safaricom.co.ke"
    live_base_url: str = "https://api.safaricom.co.ke"
    # The secret path token of the callback URL {public_url}/v1/webhooks/mpesa/{token} (M-Pesa signs
    # nothing). Required: without it no M-Pesa payment is created.
    callback_token: Annotated[SecretStr | None, AfterValidator(_path_token)] = None
    # The Timestamp (and so the Password) is local time at this offset from UTC [U]: EAT, UTC+3.
    timestamp_utc_offset_minutes: int = Field(180, ge=-720, le=840)
    # Whether the Reversal API takes part of a payment [U: undocumented]; off, refunds are whole payments.
    partial_reversals: bool = False
    # STK Query answers meaning "the customer has not answered yet" [U]: error bodies with these
    # errorCodes ("The transaction is being processed"), and these ResultCodes.
    stk_query_pending_error_codes: list[str] = Field(default_factory=lambda: ["500.001.1001"])
    stk_query_pending_result_codes: list[str] = Field(default_factory=lambda: ["4999"])
    # The reconciler first asks about an unsettled M-Pesa payment or refund this long after creation...
    reconcile_after_seconds: float = Field(90.0, ge=0)
    # ...and a prompt still unanswered this long after creation expires (after a last STK Query).
    action_ttl_seconds: float = Field(600.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    # Empty: `gateway dev` starts an embedded server; `gateway serve` refuses to start.
    database_url: Annotated[str, AfterValidator(_database_url)] = Field(
        "", validation_alias=AliasChoices("GATEWAY_DATABASE_URL", "DATABASE_URL", "database_url")
    )
    redis_url: Annotated[str, AfterValidator(_redis_url)] = Field(
        "", validation_alias=AliasChoices("GATEWAY_REDIS_URL", "REDIS_URL", "redis_url")
    )

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65_535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    # FastAPI's native OpenTelemetry (traces, metrics, logs to the process's global providers). Off,
    # FastAPI skips even the per-request check for configured providers.
    opentelemetry: bool = False
    # Embedded servers' data (dev only).
    data_dir: str = ".data"
    # Fixed ports for the embedded servers; 0 picks a free one.
    embedded_postgres_port: int = Field(0, ge=0, le=65_535)
    embedded_redis_port: int = Field(0, ge=0, le=65_535)

    # The address providers and customers reach this gateway at; default http://{host}:{port}.
    public_url: str = ""
    database: DatabaseSettings = DatabaseSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    sandbox: SandboxSettings = SandboxSettings()
    webhooks: WebhookSettings = WebhookSettings()
    delivery: DeliverySettings = DeliverySettings()
    reconciler: ReconcilerSettings = ReconcilerSettings()
    stripe: StripeSettings = StripeSettings()
    paystack: PaystackSettings = PaystackSettings()
    flutterwave: FlutterwaveSettings = FlutterwaveSettings()
    mpesa: MpesaSettings = MpesaSettings()
    wave: WaveSettings = WaveSettings()
    momo: MomoSettings = MomoSettings()

    # Payments with no answer from the provider may be re-sent (same provider idempotency key) after this.
    provider_timeout_seconds: float = Field(20.0, gt=0, le=120)
    # In-process cache of API-key lookups; revocations take effect within this many seconds.
    api_key_cache_seconds: float = Field(30.0, ge=0)
    # Live streams (/v1/events/stream, /v1/payments/{id}/stream) send a comment line this often so
    # proxies keep the connection open and clients notice a dead one.
    stream_heartbeat_seconds: float = Field(15.0, gt=0, le=300)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
