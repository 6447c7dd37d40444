"""The hosted checkout in Debian's chromium: what a customer on a phone does and sees.

CHECKOUT_SCREENSHOTS=1 also writes each state's screenshot (390x844) to docs/img/ (README,
"Checkout and payment links").
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Browser, Page, Route, expect

from browser.conftest import Checkout, Tab, open_tab

SHOTS = Path(__file__).parents[2] / "docs" / "img"
SHOP = "https://shop.example"
NBSP = "\u00a0"
PAGE_BUDGET = 50 * 1024


async def shot(page: Page, name: str) -> None:
    if os.environ.get("CHECKOUT_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"checkout-{name}.png"))


async def create(gw: Checkout, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    body = {
        "amount": 150_000,
        "currency": "KES",
        "description": "2 kg sukuma wiki, 1 tray of eggs",
        "return_url": f"{SHOP}/orders/42?from=checkout",
        **body,
    }
    r = await gw.client.post(
        "/v1/payments", json=body, headers={**auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 201, r.text
    payment: dict[str, Any] = r.json()
    assert payment["status"] == "requires_payment_method"
    assert payment["provider"] is None
    return payment


async def shop_route(page: Page) -> list[str]:
    """The merchant's return page, answered in the browser: the URLs it was opened with."""
    landed: list[str] = []

    async def answer(route: Route) -> None:
        landed.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html", body="<h1>Thanks for your order</h1>")

    await page.route(f"{SHOP}/**", answer)
    return landed


def text(s: str) -> str:
    return s.replace(NBSP, " ")


async def test_sandbox_pays_live_and_returns_signed(
    checkout_gateway: Checkout, shop: dict[str, str], tab: Tab
) -> None:
    payment = await create(checkout_gateway, shop)
    page = tab.page
    landed = await shop_route(page)
    sizes: list[int] = []

    async def on_response(response: Any) -> None:
        s = await response.request.sizes()
        sizes.append(s["responseBodySize"] + s["responseHeadersSize"])

    page.on("response", on_response)
    started = time.perf_counter()
    await page.goto(payment["checkout_url"], wait_until="load")
    cold_ms = (time.perf_counter() - started) * 1000
    await expect(page.locator("h1.merchant")).to_have_text("Mama Mboga Shop")
    assert text(await page.locator("#amount").inner_text()) == "KSh 1,500.00"
    total = sum(sizes)
    print(f"checkout page: {len(sizes)} responses, {total} bytes transferred, cold load {cold_ms:.0f} ms")
    assert total < PAGE_BUDGET, total
    assert len(sizes) == 3  # the page, its CSS, its script: nothing else, nobody else's
    await shot(page, "choose")

    await page.evaluate("window.notReloaded = true")
    await page.get_by_label("Sandbox (test)").check()
    await page.get_by_label("Needs approval, then succeeds").check()
    await page.get_by_role("button", name="Pay KSh 1,500.00").click()
    await expect(page.locator("[data-state=waiting]")).to_be_visible()
    await shot(page, "waiting")
    await page.evaluate("window.notReloaded = true")
    # The sandbox's webhook settles it about a second later; the page follows without a reload.
    await expect(page.locator("[data-state=succeeded]")).to_be_visible(timeout=15_000)
    assert await page.evaluate("window.notReloaded") is True
    await expect(page.get_by_role("heading", name="Payment received")).to_be_visible()
    await shot(page, "succeeded")

    await page.get_by_role("link", name="Return to Mama Mboga Shop").click()
    await page.wait_for_url(f"{SHOP}/**")
    query = parse_qs(urlsplit(landed[-1]).query)
    assert query["from"] == ["checkout"]
    assert query["payment_id"] == [payment["id"]]
    key = payment["client_secret"].encode()
    assert query["signature"] == [hmac.new(key, payment["id"].encode(), hashlib.sha256).hexdigest()]
    assert payment["client_secret"] not in landed[-1]


async def test_decline_then_retry(checkout_gateway: Checkout, shop: dict[str, str], tab: Tab) -> None:
    payment = await create(checkout_gateway, shop, amount=50_000, currency="NGN")
    page = tab.page
    await page.goto(payment["checkout_url"])
    assert text(await page.locator("#amount").inner_text()) == "₦500.00"
    await page.get_by_label("Sandbox (test)").check()
    await page.get_by_label("Card declined").check()
    await page.get_by_role("button", name="Pay ₦500.00").click()
    await expect(page.get_by_role("heading", name="Payment failed")).to_be_visible()
    await shot(page, "failed")
    await page.get_by_label("Sandbox (test)").check()
    await page.get_by_label("Succeeds", exact=True).check()
    await page.get_by_role("button", name="Pay ₦500.00").click()
    await expect(page.locator("[data-state=succeeded]")).to_be_visible()

    r = await checkout_gateway.client.get(f"/v1/payments/{payment['id']}", headers=shop)
    assert r.json()["status"] == "succeeded"


async def test_mpesa_prompt_then_success(checkout_gateway: Checkout, shop: dict[str, str], tab: Tab) -> None:
    daraja = checkout_gateway.daraja
    pushes = len(daraja.pushes)
    payment = await create(checkout_gateway, shop, amount=5_000)
    page = tab.page
    await page.goto(payment["checkout_url"])
    await page.get_by_label("M-Pesa").check()
    phone = page.get_by_label("Mobile money number")
    await expect(phone).to_be_visible()
    await expect(page.get_by_text("Test scenario")).to_be_hidden()
    await phone.fill("0712 345 678")
    await page.evaluate("window.notReloaded = true")
    await page.get_by_role("button", name="Pay KSh 50.00").click()
    await expect(page.get_by_role("heading", name="Approve on your phone")).to_be_visible()
    await expect(page.locator("#countdown")).to_have_text(re.compile(r"^1:[0-2]\d$"), timeout=3_000)
    await shot(page, "approve")
    assert len(daraja.pushes) == pushes + 1
    push = daraja.pushes[-1]
    assert str(push["PhoneNumber"]) == "254712345678"
    assert push["Amount"] == 50
    await page.evaluate("window.notReloaded = true")

    await daraja.customer_pays(daraja.checkouts[-1])
    await expect(page.locator("[data-state=succeeded]")).to_be_visible(timeout=15_000)
    assert await page.evaluate("window.notReloaded") is True
    r = await checkout_gateway.client.get(f"/v1/payments/{payment['id']}", headers=shop)
    assert (r.json()["status"], r.json()["provider"]) == ("succeeded", "mpesa")


async def test_french_by_locale_and_by_browser(
    checkout_gateway: Checkout, shop: dict[str, str], browser: Browser
) -> None:
    by_payment = await create(checkout_gateway, shop, amount=5_000, currency="XOF", locale="fr")
    by_browser = await create(checkout_gateway, shop, amount=5_000, currency="XOF")
    for url, browser_locale in ((by_payment["checkout_url"], "en-US"), (by_browser["checkout_url"], "fr-SN")):
        async with open_tab(browser, locale=browser_locale) as t:
            await t.page.goto(url)
            await expect(t.page.locator("html")).to_have_attribute("lang", "fr")
            await expect(t.page.get_by_text("Choisissez comment payer")).to_be_visible()
            assert text(await t.page.locator("#amount").inner_text()) == "5 000 FCFA"
            await expect(t.page.get_by_role("button", name="Payer 5 000 FCFA")).to_be_visible()
            await shot(t.page, "fr")
            assert t.console_errors == []


async def test_keyboard_only(checkout_gateway: Checkout, shop: dict[str, str], tab: Tab) -> None:
    payment = await create(checkout_gateway, shop)
    page = tab.page
    await page.goto(payment["checkout_url"])
    methods = page.locator("input[name=method]")
    assert await methods.count() >= 2
    await page.keyboard.press("Tab")  # the first control of the page: the checked method
    await expect(methods.nth(0)).to_be_focused()
    await expect(methods.nth(0)).to_be_checked()
    await page.keyboard.press("ArrowDown")
    await expect(methods.nth(1)).to_be_focused()
    await expect(methods.nth(1)).to_be_checked()
    chosen = await methods.nth(1).get_attribute("value")
    # Back to the sandbox (the last method in test mode) and through to the pay button.
    sandbox = page.locator("input[name=method][value=sandbox]")
    for _ in range(await methods.count()):  # the arrows go round the group
        if await sandbox.is_checked():
            break
        await page.keyboard.press("ArrowDown")
    await expect(sandbox).to_be_checked()
    await expect(sandbox).to_be_focused()
    assert chosen is not None
    pay = page.get_by_role("button", name="Pay KSh 1,500.00")
    for _ in range(10):
        if await pay.evaluate("b => b === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(pay).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("[data-state=succeeded]")).to_be_visible()


async def test_without_javascript(checkout_gateway: Checkout, shop: dict[str, str], browser: Browser) -> None:
    payment = await create(checkout_gateway, shop, amount=5_000)
    async with open_tab(browser, java_script_enabled=False) as t:
        page = t.page
        await page.goto(payment["checkout_url"])
        await page.get_by_label("M-Pesa").check()
        await page.get_by_label("Mobile money number").fill("12345")
        await page.get_by_role("button", name="Pay KSh 50.00").click()
        await expect(page.get_by_role("alert")).to_have_text("This is not a valid number for this country.")
        await page.get_by_label("M-Pesa").check()
        await page.get_by_label("Mobile money number").fill("+254 712 345 678")
        await page.get_by_role("button", name="Pay KSh 50.00").click()
        await expect(page.get_by_role("heading", name="Approve on your phone")).to_be_visible()
        await expect(page.get_by_text("•••••••••678")).to_be_visible()


async def test_unknown_checkout_is_a_plain_404(checkout_gateway: Checkout, tab: Tab) -> None:
    r = await tab.page.goto(f"{checkout_gateway.base_url}/checkout/cs_doesnotexist")
    assert r is not None
    assert r.status == 404
    await expect(tab.page.get_by_role("heading", name="Checkout not found")).to_be_visible()
    tab.console_errors.clear()  # chromium reports the 404 itself, which is this test's point


async def test_a_redirect_rail_there_and_back(
    checkout_gateway: Checkout, shop: dict[str, str], browser: Browser
) -> None:
    """Paystack: the form post goes to Paystack's page (allowed by the CSP's form-action); a customer
    who comes back unpaid sees "continue with Paystack"; paid, Paystack's webhook settles it and its
    redirect brings the customer back to the checkout, which shows the outcome, then the shop."""
    paystack = checkout_gateway.paystack
    payment = await create(
        checkout_gateway, shop, amount=50_000, currency="NGN", customer={"email": "ada@example.com"}
    )
    async with open_tab(browser, ignore_https_errors=True) as t:
        page = t.page
        landed = await shop_route(page)
        await page.goto(payment["checkout_url"])
        await page.get_by_label("Card or bank (Paystack)").check()
        await page.get_by_role("button", name="Pay ₦500.00").click()
        await expect(page.get_by_role("heading", name="Pay NGN 500.00")).to_be_visible()
        assert page.url.startswith(paystack.page_url)
        started = next(s for s in paystack.started.values() if s.reference == f"pay-{payment['id'][4:]}-test")
        assert (started.amount, started.currency) == (50_000, "NGN")
        assert started.callback_url == payment["checkout_url"]

        # Back without paying: the checkout says where to finish.
        await page.go_back()
        await page.reload()
        await expect(page.locator("[data-state=redirect]")).to_be_visible()
        await shot(page, "redirect")
        await page.get_by_role("link", name="Go to Paystack").click()
        await expect(page.get_by_role("heading", name="Pay NGN 500.00")).to_be_visible()

        await page.get_by_role("button", name="Pay now").click()
        await expect(page.locator("[data-state=succeeded]")).to_be_visible(timeout=15_000)
        assert page.url.startswith(payment["checkout_url"])
        r = await checkout_gateway.client.get(f"/v1/payments/{payment['id']}", headers=shop)
        assert (r.json()["status"], r.json()["provider"]) == ("succeeded", "paystack")
        await page.get_by_role("link", name="Return to Mama Mboga Shop").click()
        await page.wait_for_url(f"{SHOP}/**")
        query = parse_qs(urlsplit(landed[-1]).query)
        assert query["payment_id"] == [payment["id"]]
        key = payment["client_secret"].encode()
        assert query["signature"] == [hmac.new(key, payment["id"].encode(), hashlib.sha256).hexdigest()]
        assert t.console_errors == []
