from __future__ import annotations

from drivers.base import Driver


class CashDriver(Driver):
    name = "cash"
    asynchronous = False


DRIVER = CashDriver()
