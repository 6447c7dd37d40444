"""Fixtures of the rate-limit tests: gateways of their own (serving.py), a client address each."""

from __future__ import annotations

import functools
import uuid

import pytest

from ratelimits.serving import Serve, serving
from support import Gateway


@pytest.fixture
def address() -> str:
    """A client address of the test's own (sent as X-Forwarded-For), so per-address counts start at 0."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"


@pytest.fixture
def serve(gateway: Gateway, address: str) -> Serve:
    """`async with serve(test="5/minute", ...) as (client, app)`: serving.serving for this test."""
    return functools.partial(serving, gateway, address)
