"""The hot paths render payments with payment_json + orjson; the OpenAPI schema is PaymentOut's.
They must give the same bytes for every payment, or clients would see two shapes of one object."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.payments.models import Payment, payments
from gateway.payments.schemas import dump, payment_json, payment_out

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)  # what PostgreSQL can hold
maybe_text = st.none() | text
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
) | st.just(datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC))  # whole seconds: no fraction rendered
next_actions = (
    st.none()
    | st.fixed_dictionaries(
        {
            "type": st.just("redirect_to_url"),
            "redirect_to_url": st.fixed_dictionaries({"url": text, "return_url": maybe_text}),
        }
    )
    | st.fixed_dictionaries(
        {
            "type": st.just("mobile_money_prompt"),
            "mobile_money_prompt": st.fixed_dictionaries({"phone": maybe_text, "message": text}),
        }
    )
)
digits4 = st.text(alphabet="0123456789", min_size=4, max_size=4)
method_details = (
    st.none()
    | st.fixed_dictionaries(
        {
            "type": st.just("card"),
            "brand": st.none() | st.sampled_from(["visa", "mastercard", "verve"]),
            "last4": st.none() | digits4,
            "exp_month": st.none() | st.integers(1, 12),
            "exp_year": st.none() | st.integers(2000, 2100),
            "funding": st.none() | st.sampled_from(["credit", "debit", "prepaid", "unknown"]),
            "country": st.none() | st.sampled_from(["KE", "NG", "US"]),
        }
    )
    | st.fixed_dictionaries(
        {
            "type": st.just("mobile_money"),
            "operator": st.none() | st.sampled_from(["mpesa", "mtn", "wave"]),
            "phone_last4": st.none() | digits4,
            "receipt": maybe_text,
        }
    )
    | st.fixed_dictionaries({"type": st.just("cash"), "till": maybe_text})
)
statuses = st.sampled_from(
    ["requires_payment_method", "pending", "requires_action", "succeeded", "failed", "refunded"]
)


@st.composite
def rows(draw: st.DrawFn) -> Payment:
    created = draw(moments)
    return Payment(
        id="pay_01jq2v3w4x5y6z7a8b9c0d1e2f",
        merchant_id="mer_01jq2v3w4x5y6z7a8b9c0d1e2f",
        livemode=draw(st.booleans()),
        amount=draw(st.integers(1, 999_999_999_999)),
        amount_refunded=draw(st.integers(0, 10)),
        currency=draw(st.sampled_from(["KES", "XOF", "USD", "JPY"])),
        status=draw(statuses),
        provider=draw(st.sampled_from(["sandbox", "mpesa", "cash", None])),
        payment_method=draw(maybe_text),
        customer_name=draw(maybe_text),
        customer_email=draw(maybe_text),
        customer_phone=draw(maybe_text),
        customer_location=draw(maybe_text),
        description=draw(maybe_text),
        reference=draw(maybe_text),
        metadata_=draw(st.dictionaries(text, text, max_size=3)),
        return_url=draw(maybe_text),
        provider_reference=draw(maybe_text),
        next_action=draw(next_actions),
        failure_code=draw(maybe_text),
        failure_message=draw(maybe_text),
        idempotency_key="k",
        request_fingerprint="f" * 64,
        provider_lease_until=None,
        next_reconcile_at=None,
        reconcile_attempts=0,
        created_at=created,
        updated_at=created + timedelta(microseconds=draw(st.integers(0, 10**7))),
        completed_at=draw(st.none() | moments),
        # Shuffled keys: JSONB keeps no key order, the API shows the model's.
        payment_method_details=_shuffled(draw(method_details), draw(st.randoms())),
        provider_receipt=draw(maybe_text),
        provider_account_id=None,
        client_secret="pay_01jq2v3w4x5y6z7a8b9c0d1e2f_secret_x",
        checkout_id="cs_x",
        locale=draw(st.sampled_from([None, "en", "fr"])),
        allow_retries=draw(st.booleans()),
        payment_link_id=draw(st.none() | st.just("plink_01jq2v3w4x5y6z7a8b9c0d1e2f")),
        attempt=draw(st.integers(0, 3)),
    )


def _shuffled(details: dict[str, Any] | None, rnd: Any) -> dict[str, Any] | None:
    if details is None:
        return None
    items = list(details.items())
    rnd.shuffle(items)
    return dict(items)


# No deadline: a loaded CI machine may take longer than Hypothesis' default 200 ms on one example.
@settings(max_examples=300, deadline=None)
@given(rows())
def test_payment_json_is_byte_identical_to_the_model(row: Payment) -> None:
    assert dump(payment_json(row)) == payment_out(row).model_dump_json().encode()
    shown = payment_json(row, client_secret=True)
    assert dump(shown) == payment_out(row, client_secret=True).model_dump_json().encode()
    assert shown["client_secret"] == row.client_secret


def test_the_client_secret_is_shown_only_when_asked() -> None:
    """Events, webhooks and streams render the default: no client secret, in the same shape."""
    row = _fixed()
    hidden, shown = payment_json(row), payment_json(row, client_secret=True)
    assert list(hidden) == list(shown)
    assert (hidden["client_secret"], shown["client_secret"]) == (None, row.client_secret)
    assert row.client_secret not in dump(hidden).decode()
    assert hidden["checkout_url"].endswith(f"/checkout/{row.checkout_id}")


def test_a_row_has_every_column_of_the_model_in_table_order() -> None:
    assert [f.name.rstrip("_") for f in dataclasses.fields(Payment)] == [c.name for c in payments.c]


def test_timestamps_render_like_pydantic() -> None:
    row: Any = dataclasses.replace(
        _fixed(),
        created_at=datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC),
        completed_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    out = orjson.loads(dump(payment_json(row)))
    assert out["created_at"] == "2026-01-02T03:04:05.000600Z"
    assert out["completed_at"] == "2026-01-02T03:04:05Z"


def _fixed() -> Payment:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    values: dict[str, Any] = {f.name: None for f in dataclasses.fields(Payment)}
    values |= {
        "id": "pay_x",
        "merchant_id": "mer_x",
        "livemode": False,
        "amount": 1,
        "amount_refunded": 0,
        "currency": "KES",
        "status": "pending",
        "provider": "cash",
        "metadata_": {},
        "idempotency_key": "k",
        "request_fingerprint": "f",
        "reconcile_attempts": 0,
        "created_at": now,
        "updated_at": now,
        "client_secret": "pay_x_secret_y",
        "checkout_id": "cs_z",
        "allow_retries": True,
        "attempt": 0,
    }
    return Payment(**values)
