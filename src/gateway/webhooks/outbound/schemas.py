"""Webhook endpoints, deliveries and attempts as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

EVENT_TYPES = frozenset(
    {
        "payment.created",
        "payment.requires_action",
        "payment.processing",
        "payment.succeeded",
        "payment.failed",
        "payment.canceled",
        "payment.expired",
        "payment.partially_refunded",
        "payment.refunded",
        "payment.transition_rejected",
        "refund.created",
        "refund.succeeded",
        "refund.failed",
        "refund.transition_rejected",
        "payout.created",
        "payout.succeeded",
        "payout.failed",
        "payout.canceled",
        "payout.transition_rejected",
        "payment.rerouted",
        "cash_session.opened",
        "cash_session.closed",
    }
)
PATTERNS = EVENT_TYPES | {"*"} | {t.split(".", 1)[0] + ".*" for t in EVENT_TYPES}


def _patterns(v: list[str]) -> list[str]:
    unknown = [p for p in v if p not in PATTERNS]
    if unknown:
        raise PydanticCustomError(
            "invalid_event_type",
            "unknown event types {unknown}; use '*', 'payment.*', 'refund.*' or a type",
            {"unknown": unknown},
        )
    return sorted(set(v))


def _url(v: str) -> str:
    if not v.startswith(("https://", "http://")) or len(v) < 10:
        raise PydanticCustomError("invalid_url", "url must be an absolute http(s) URL")
    return v


DeliveryStatus = TypeAliasType("DeliveryStatus", Literal["pending", "succeeded", "failed"])
# The document lists the patterns _patterns takes (its code `invalid_event_type` stays the check).
EventPattern = TypeAliasType(
    "EventPattern", Annotated[str, Field(json_schema_extra={"enum": sorted(PATTERNS)})]
)
EventPatterns = Annotated[list[EventPattern], Field(min_length=1, max_length=50), AfterValidator(_patterns)]
Url = Annotated[str, Field(max_length=2048), AfterValidator(_url)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://shop.example/webhooks/gateway",
                    "enabled_events": ["payment.*", "refund.succeeded"],
                },
            ]
        },
    )

    url: Url
    enabled_events: EventPatterns
    description: str | None = Field(None, max_length=500)


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    enabled_events: EventPatterns | None = None
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    enabled_events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    livemode: bool
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    """Only the answers to create and rotate-secret carry the secret."""

    secret: str


class EndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EndpointOut]
    has_more: bool


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    response_body: str | None
    error: str | None


class DeliveryOut(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint: str
    event: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime
    attempts: list[AttemptOut]


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DeliveryOut]
    has_more: bool


def endpoint_out(e: Any, *, with_secret: bool = False) -> EndpointOut:
    fields = dict(
        id=e.id,
        url=e.url,
        enabled_events=list(e.enabled_events),
        description=e.description,
        enabled=e.enabled,
        disabled_reason=e.disabled_reason,
        livemode=e.livemode,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )
    return EndpointWithSecret(**fields, secret=e.secret) if with_secret else EndpointOut(**fields)


def delivery_out(d: Any, attempts: list[Any]) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        endpoint=d.endpoint_id,
        event=d.event_id,
        event_type=d.event_type,
        status=d.status,
        attempt_count=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_status_code=d.last_status_code,
        created_at=d.created_at,
        attempts=[
            AttemptOut(
                attempted_at=a.attempted_at,
                status_code=a.status_code,
                duration_ms=a.duration_ms,
                response_body=a.response_body,
                error=a.error,
            )
            for a in attempts
        ],
    )
