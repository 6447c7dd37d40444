from __future__ import annotations

from typing import Any

from drivers.base import Driver


class CashDriver(Driver):
    name = "cash"
    asynchronous = False

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # A cash payment's payment_method, if given, names the till (the contract's bodies give none).
        return {"type": "cash", "till": payment["payment_method"]}


DRIVER = CashDriver()
