"""The credentials an adapter is handed: one frozen object per mode, never global settings.

Today the deployment's accounts come from the settings (providers/catalog.py builds them); the same
object can later carry a merchant's own provider account, handed per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import SecretStr

C = TypeVar("C")


def mode_name(livemode: bool) -> str:
    return "live" if livemode else "test"


def secret_text(value: SecretStr | str | None, *, strip: bool = False) -> str | None:
    """A configured secret as text; unset and empty are both None."""
    if value is None:
        return None
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if strip:
        text = text.strip()
    return text or None


@dataclass(frozen=True)
class Accounts(Generic[C]):
    """One provider account's credentials per mode; None where a mode has none."""

    test: C | None = None
    live: C | None = None

    def get(self, livemode: bool) -> C | None:
        return self.live if livemode else self.test

    def configured(self) -> list[tuple[bool, C]]:
        """(livemode, credentials) of every mode that has them, test first."""
        return [(mode, c) for mode, c in ((False, self.test), (True, self.live)) if c is not None]
