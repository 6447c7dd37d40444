"""The state machine's table is exactly design.md §4's, plus issue #14's requires_payment_method (a
payment created without a rail, until its confirm)."""

from __future__ import annotations

import itertools

from gateway.payments.state import FINAL, TRANSITIONS, Status, can_move

DESIGN = {
    "requires_payment_method": {
        "pending",
        "requires_action",
        "processing",
        "succeeded",
        "failed",
        "canceled",
        "expired",
    },
    "pending": {"requires_action", "processing", "succeeded", "failed", "canceled"},
    "requires_action": {"processing", "succeeded", "failed", "canceled", "expired"},
    "processing": {"succeeded", "failed"},
    "succeeded": {"partially_refunded", "refunded"},
    "partially_refunded": {"partially_refunded", "refunded"},
    "failed": set(),
    "canceled": set(),
    "expired": set(),
    "refunded": set(),
}


def test_every_pair_of_statuses_is_allowed_exactly_as_designed() -> None:
    assert {s.value for s in Status} == set(DESIGN)
    for a, b in itertools.product(DESIGN, DESIGN):
        assert can_move(a, b) == (b in DESIGN[a]), (a, b)


def test_final_statuses() -> None:
    assert {s.value for s in FINAL} == {"failed", "canceled", "expired", "refunded"}
    assert all(not TRANSITIONS[s] for s in FINAL)


def test_nothing_moves_back_to_pending() -> None:
    """Only a payment that had no rail yet becomes pending (its confirm)."""
    assert [s for s, moves in TRANSITIONS.items() if Status.PENDING in moves] == [
        Status.REQUIRES_PAYMENT_METHOD
    ]
