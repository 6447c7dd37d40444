"""The live message is the event as the API's model renders it: a stream's subscriber must not see
another shape of an event than the events endpoint shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events.publisher import message
from gateway.events.schemas import EventData, EventOut

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
) | st.just(datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC))  # whole seconds: no fraction rendered
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | moments
)
# What the domains' renderers put in an event's data: objects of scalars, lists and objects.
objects = st.dictionaries(
    text,
    st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3)
    ),
)


def _model(values: dict[str, Any]) -> bytes:
    return (
        EventOut(
            id=values["id"],
            type=values["type"],
            livemode=values["livemode"],
            source=values["source"],
            created_at=values["created_at"],
            data=EventData(object=values["data"], previous_status=values["previous_status"]),
        )
        .model_dump_json()
        .encode()
    )


@settings(max_examples=300, deadline=None)
@given(
    data=objects,
    created_at=moments,
    livemode=st.booleans(),
    previous=st.none() | text,
    kind=st.sampled_from(["payment.succeeded", "refund.failed", "payout.pending"]),
)
def test_the_message_is_the_models_bytes(
    data: dict[str, Any], created_at: datetime, livemode: bool, previous: str | None, kind: str
) -> None:
    values = {
        "id": "evt_01jq2v3w4x5y6z7a8b9c0d1e2f",
        "merchant_id": "mer_01jq2v3w4x5y6z7a8b9c0d1e2f",
        "type": kind,
        "livemode": livemode,
        "source": "webhook",
        "created_at": created_at,
        "data": data,
        "previous_status": previous,
    }
    assert message(values) == _model(values)
