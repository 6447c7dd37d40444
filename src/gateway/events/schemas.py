"""The event as the API shows it: the object at that moment and the status it left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


class EventData(BaseModel):
    object: dict[str, Any]
    previous_status: str | None


class EventOut(BaseModel):
    id: str
    object: Literal["event"] = "event"
    type: str
    livemode: bool
    source: str
    created_at: datetime
    data: EventData


class EventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EventOut]
    has_more: bool


@dataclass(frozen=True)
class EventFilters:
    # Exact types, or a family with a wildcard: "payment.*"; "*" is everything.
    types: tuple[str, ...] = ()
    payment: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


def event_out(e: Any) -> EventOut:
    return EventOut(
        id=e.id,
        type=e.type,
        livemode=e.livemode,
        source=e.source,
        created_at=e.created_at,
        data=EventData(object=e.data, previous_status=e.previous_status),
    )


def type_matches(patterns: tuple[str, ...] | list[str], event_type: str) -> bool:
    """`*` matches all, `payment.*` a family, anything else exactly."""
    family = event_type.split(".", 1)[0] + ".*"
    return any(p in ("*", event_type, family) for p in patterns)
