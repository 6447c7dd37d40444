"""Provider drivers for the contract suite: how to make each provider answer each scenario.

Each module here defines `DRIVER`, an instance of a `Driver` subclass; tests/providers/test_contract.py
runs every scenario against every driver it finds, and tests/conftest.py configures the gateway with
each driver's `settings()`: a new provider brings its driver, and nothing else in the tests changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drivers.base import Driver


def discover() -> list[Driver]:
    return [
        importlib.import_module(f"{__name__}.{m.name}").DRIVER
        for m in pkgutil.iter_modules(__path__)
        if m.name != "base"
    ]


def provider_settings() -> dict[str, Any]:
    """Each provider's settings group for the test gateway, keyed as gateway.settings.Settings names it."""
    return {d.name: s for d in discover() if (s := d.settings()) is not None}
