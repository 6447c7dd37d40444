"""The browser tests' gateway, fake Daraja and Chromium.

The gateway is a real uvicorn server on the session's PostgreSQL and Redis, its M-Pesa test base URL
pointed at the local fake Daraja (fake_daraja.py) and the sandbox's outcomes due after a short delay.
The browser is Debian's chromium (`make test` installs it: Makefile, `chromium`), driven by Playwright
through `executable_path`: nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, async_playwright

from browser.fake_daraja import FakeDaraja, fake_daraja
from browser.fake_paystack import FakePaystack, fake_paystack
from gateway.merchants.service import create_merchant
from ratelimits.serving import serving
from support import Gateway

# The session's limits on the API (no test reaches them), the checkout's own as configured by default.
LIMITS = {"live": "100000/second", "test": "100000/second", "failed_auth": "1000000/minute"}
# The customer's phone: a 390x844 CSS-pixel viewport (README's screenshots too).
MOBILE: ViewportSize = {"width": 390, "height": 844}


@dataclass
class Checkout:
    client: httpx.AsyncClient  # the gateway's API
    base_url: str
    daraja: FakeDaraja
    paystack: FakePaystack
    times: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="session")
async def checkout_gateway(
    gateway: Gateway, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Checkout]:
    async with fake_daraja() as daraja, fake_paystack("", tmp_path_factory.mktemp("paystack")) as paystack:
        base = gateway.ctx.settings
        mpesa = base.mpesa.model_copy(
            update={"test": base.mpesa.test.model_copy(update={"base_url": daraja.url})}
        )
        sandbox = base.sandbox.model_copy(update={"action_delay_seconds": 1.0})
        update = {
            "mpesa": mpesa,
            "sandbox": sandbox,
            "paystack": base.paystack.model_copy(update={"base_url": paystack.api_url}),
        }
        async with serving(gateway, "127.0.0.1", settings_update=update, **LIMITS) as (client, _app):
            base_url = str(client.base_url).rstrip("/")
            paystack.webhook_url = f"{base_url}/v1/webhooks/paystack"
            yield Checkout(client, base_url, daraja, paystack)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (Makefile: chromium)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        await b.close()


@dataclass
class Tab:
    page: Page
    console_errors: list[str]


@contextlib.asynccontextmanager
async def open_tab(browser: Browser, **context: Any) -> AsyncIterator[Tab]:
    ctx = await browser.new_context(viewport=MOBILE, device_scale_factor=1, **context)
    page = await ctx.new_page()
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield Tab(page, errors)
    finally:
        await ctx.close()


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    async with open_tab(browser, locale="en-US") as t:
        yield t
    assert t.console_errors == []


@pytest.fixture
async def shop(gateway: Gateway) -> dict[str, str]:
    """A merchant's secret-key header."""
    m = await create_merchant(gateway.ctx.db, "Mama Mboga Shop")
    return {"Authorization": f"Bearer {m.secret_key}"}
