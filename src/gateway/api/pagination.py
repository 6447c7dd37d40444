"""Query parameters every list endpoint shares: the page and the created-at range."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from gateway.errors import InvalidCursor, InvalidRequest
from gateway.kit.ids import is_valid
from gateway.kit.pagination import Page


async def _page_params(
    limit: Annotated[int, Query(ge=1, le=100, description="How many objects, 1-100")] = 10,
    starting_after: Annotated[
        str | None, Query(max_length=40, description="An id: the page of older objects after it")
    ] = None,
    ending_before: Annotated[
        str | None, Query(max_length=40, description="An id: the page of newer objects before it")
    ] = None,
) -> Page:
    return Page(limit=limit, starting_after=starting_after, ending_before=ending_before)


Paging = Annotated[Page, Depends(_page_params)]


def checked_page(page: Page, prefix: str) -> Page:
    """Cursors must be ids of the listed kind; asking for both directions at once is an error."""
    if page.starting_after is not None and page.ending_before is not None:
        raise InvalidCursor("Use starting_after or ending_before, not both.")
    for name, value in (("starting_after", page.starting_after), ("ending_before", page.ending_before)):
        if value is not None and not is_valid(value, prefix):
            raise InvalidCursor(f"{name} must be an id of this list ({prefix}_…).", param=name)
    return page


_RFC3339 = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}")


def _rfc3339(value: Any) -> Any:
    # Pydantic would also take a number of seconds ("0.5"); the API and its document say RFC 3339.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise PydanticCustomError(
            "datetime_format", "must be an RFC 3339 timestamp, e.g. 2026-01-31T00:00:00Z"
        )
    return value


# A created_gte / created_lt filter: an RFC 3339 timestamp (require_timezone: with its zone).
Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


def require_timezone(name: str, ts: datetime | None) -> datetime | None:
    if ts is not None and ts.tzinfo is None:
        raise InvalidRequest(
            f"{name} needs a time zone (RFC 3339, e.g. 2026-01-31T00:00:00Z).",
            errors=[{"loc": ["query", name], "msg": "time zone required", "type": "timezone_required"}],
        )
    if ts is not None:
        try:
            ts.astimezone(UTC)  # 0001-01-01T00:00+02:00 is before the first instant PostgreSQL holds
        except OverflowError as e:
            raise InvalidRequest(
                f"{name} is out of range.",
                errors=[{"loc": ["query", name], "msg": "out of range", "type": "datetime_out_of_range"}],
            ) from e
    return ts
