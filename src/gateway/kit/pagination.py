"""A page request of cursor pagination (ids sort by creation time, so a cursor is an object id)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
