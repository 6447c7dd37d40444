"""A merchant's cash "account": no credentials (cash is recorded, never sent anywhere); it is the
merchant's switch for offering cash on the hosted checkout, with what the customer should do."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from gateway.providers.account_schema import AccountModel


class CashAccountCredentials(AccountModel):
    """Nothing: a cash account holds no secret."""


class CashAccountSettings(AccountModel):
    # Shown to the customer who chooses cash (where to pay, what to quote), in the checkout's language
    # as the merchant wrote it.
    instructions: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
