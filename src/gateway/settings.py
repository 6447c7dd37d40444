"""Settings from the environment (prefix GATEWAY_, nested groups joined by a double underscore)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from limits import parse as parse_limit
from pydantic import AfterValidator, AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.kit.secretbox import Keyring
from gateway.providers.airtel.settings import AirtelSettings
from gateway.providers.catalog import ProviderSettings
from gateway.providers.flutterwave.settings import FlutterwaveSettings
from gateway.providers.momo.settings import MomoSettings
from gateway.providers.mpesa.settings import MpesaSettings
from gateway.providers.paystack.settings import PaystackSettings
from gateway.providers.sandbox.settings import SandboxSettings
from gateway.providers.stripe.settings import StripeSettings
from gateway.providers.wave.settings import WaveSettings
from gateway.redis_client import is_sentinel_url, parse_sentinel_url

# The provider groups are re-exported: their home is each provider's package (settings.py there).
__all__ = [
    "AirtelSettings",
    "DatabaseSettings",
    "DeliverySettings",
    "FlutterwaveSettings",
    "IdempotencySettings",
    "MomoSettings",
    "MpesaSettings",
    "PaystackSettings",
    "RateLimitSettings",
    "ReconcilerSettings",
    "SandboxSettings",
    "Settings",
    "StripeSettings",
    "WaveSettings",
    "WebhookSettings",
    "get_settings",
]


def _database_url(v: str) -> str:
    # Operators paste plain postgres:// URLs; SQLAlchemy needs the driver named.
    for prefix in ("postgres://", "postgresql://"):
        if v.startswith(prefix):
            return "postgresql+asyncpg://" + v[len(prefix) :]
    if v and not v.startswith("postgresql+asyncpg://"):
        raise ValueError("must be a postgresql:// URL")
    return v


def _redis_url(v: str) -> str:
    if is_sentinel_url(v):
        parse_sentinel_url(v)  # its ValueError says what is wrong
    elif v and not v.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            "must be a redis://, rediss://, unix://, redis+sentinel:// or rediss+sentinel:// URL"
        )
    return v


class DatabaseSettings(BaseModel):
    # The asyncpg pool of each worker process: every request and background loop of the process
    # shares it. Enough for 16-32 requests in flight without opening connections under load.
    pool_size: int = Field(20, ge=1, le=200)
    # The database URL is a PgBouncer in transaction pooling mode (or another pooler that hands each
    # transaction any server connection): no prepared statement outlives its statement
    # (gateway/db/database.connect_options; docs/scale-out.md says what it costs).
    pgbouncer: bool = False


class IdempotencySettings(BaseModel):
    # Stored results are kept at least this long (Stripe keeps them 24 h).
    ttl_seconds: int = Field(86_400, ge=3_600)
    # How long a claimed key stays locked if its request dies without finishing.
    lock_seconds: int = Field(60, ge=5, le=3_600)


class WebhookSettings(BaseModel):
    # Inbound events stored but not processed after this long are picked up by the sweeper.
    sweep_after_seconds: float = Field(30.0, ge=0)
    sweep_interval_seconds: float = Field(15.0, gt=0)
    max_attempts: int = Field(10, ge=1)
    # Providers' notifications are a few KB; a bigger body is refused (413) before it is read whole.
    max_body_bytes: int = Field(256 * 1024, ge=1024)


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
    # A payment nobody confirmed (requires_payment_method: its checkout or link was abandoned)
    # expires this long after its creation, as a Stripe Checkout session does after 24 hours.
    unconfirmed_expire_after_seconds: float = Field(86_400.0, ge=60)


def _limit(v: str) -> str:
    parse_limit(v)  # ValueError (a settings error at startup) unless it is `<n>/<second|minute|...>`
    return v


# A rate in the `limits` package's notation: "100/second", "20/minute", "5 per 10 seconds".
LimitText = Annotated[str, AfterValidator(_limit)]


class RateLimitSettings(BaseModel):
    """Requests per moving window, counted in the shared Redis (env GATEWAY_RATE_LIMITS__...)."""

    enabled: bool = True
    # Per API key (an access token counts against the key it was made from), by the key's mode, as
    # Stripe does; a merchant's own rate limit (requests/s, admin API) replaces these.
    live: LimitText = "100/second"
    test: LimitText = "25/second"
    # Per client IP: answers 401 (a wrong key, token or admin token). Over it, every request from the
    # address is 429 until the oldest failure leaves the window (docs/api.md, "Rate limits").
    failed_auth: LimitText = "20/minute"
    # Per client IP, for /v1/admin/...
    admin: LimitText = "10/second"
    # Confirms of one payment (POST /v1/payments/{id}/confirm and the checkout page's), whoever asks,
    # and confirms from one client IP: a client secret or a phone number cannot be tried at speed.
    confirm_per_payment: LimitText = "10/minute"
    confirm_per_ip: LimitText = "30/minute"
    # Payment link opens that may make a payment (no cookie of an earlier one) from one client IP: a
    # crawler or a loop cannot fill the table. Generous: mobile carriers put many phones behind one IP.
    link_opens_per_ip: LimitText = "60/minute"


class AccountsSettings(BaseModel):
    """How merchants reach providers (env GATEWAY_PROVIDERS__...)."""

    # The deployment-wide accounts (GATEWAY_<PROVIDER>__...) serve a merchant that has no account of
    # its own for a provider: the platform collects. Off, such a payment is 422 provider_not_configured.
    shared_accounts: bool = True


def _limits(v: dict[str, int]) -> dict[str, int]:
    for currency, amount in v.items():
        if currency != "*" and not (len(currency) == 3 and currency.isupper()):
            raise ValueError(f"{currency!r}: keys are ISO 4217 codes or '*'")
        if amount < 0:
            raise ValueError(f"{currency}: a limit is not negative")
    return v


# Minor units per currency ("KES": 15000000 is KES 150,000); "*": any currency not named.
PayoutLimits = Annotated[dict[str, int], AfterValidator(_limits)]


class PayoutSettings(BaseModel):
    """Money going out (env GATEWAY_PAYOUTS__...): the default limits every merchant gets per mode and
    currency (a merchant's own, in payout_limits, replace them), per payout and per UTC day."""

    max_per_payout: PayoutLimits = Field(default_factory=lambda: {"*": 10_000_000})
    max_per_day: PayoutLimits = Field(default_factory=lambda: {"*": 50_000_000})
    # A payout whose request died between its insert and its submission (never sent) is canceled by
    # the reconciler this long after its creation; until then a retry with its Idempotency-Key sends it.
    unsubmitted_cancel_after_seconds: float = Field(900.0, ge=60)


class Settings(BaseSettings, ProviderSettings):
    """Everything the gateway reads; each provider's group comes from the provider catalog."""

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
    # `gateway serve` worker processes; uvicorn's own WEB_CONCURRENCY is read too.
    workers: int = Field(
        1, ge=1, validation_alias=AliasChoices("GATEWAY_WORKERS", "WEB_CONCURRENCY", "workers")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    # Prometheus metrics on their own port, never the API's: 0 is off. The `gateway` command (serve,
    # worker, dev) serves GET /metrics there, summed over all its worker processes (metrics_server.py).
    metrics_port: int = Field(0, ge=0, le=65_535)
    # Loopback by default: the metrics are for the operator's Prometheus, not the public.
    metrics_host: str = "127.0.0.1"
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
    webhooks: WebhookSettings = WebhookSettings()
    delivery: DeliverySettings = DeliverySettings()
    reconciler: ReconcilerSettings = ReconcilerSettings()
    providers: AccountsSettings = AccountsSettings()
    payouts: PayoutSettings = PayoutSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()

    # The operator's bearer token for /v1/admin; unset, the admin API answers 404.
    admin_token: SecretStr | None = None
    # The keyring that encrypts provider credentials at rest: `<id>:<base64url 32 bytes>`, comma
    # separated; the first encrypts, all decrypt (kit/secretbox.py). `gateway dev` makes one in .data/.
    secrets_keys: SecretStr | None = None
    # The keys that sign access tokens (POST /v1/oauth/token): `<id>:<secret>`, comma separated; the
    # first signs, all verify.
    jwt_keys: SecretStr | None = None

    # Request bodies above this size are refused (413 payload_too_large) before they are read whole.
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # In-process cache of API-key lookups; revocations take effect within this many seconds.
    api_key_cache_seconds: float = Field(30.0, ge=0)
    # Live streams (/v1/events/stream, /v1/payments/{id}/stream) send a comment line this often so
    # proxies keep the connection open and clients notice a dead one; WebSockets (/v1/events/ws,
    # /v1/payments/{id}/ws) a ping (uvicorn's ws_ping_interval, set by the `gateway` command).
    stream_heartbeat_seconds: float = Field(15.0, gt=0, le=300)

    def keyring(self) -> Keyring | None:
        """The secrets keyring; None when GATEWAY_SECRETS_KEYS is unset (SecretBoxError if unreadable)."""
        text = self.secrets_keys.get_secret_value().strip() if self.secrets_keys is not None else ""
        return Keyring.parse(text) if text else None

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
