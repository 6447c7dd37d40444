"""The checkout's display helpers: amounts in each currency's own format, phone numbers, locales."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway.checkout import security
from gateway.checkout.display import PHONES, format_money
from gateway.checkout.i18n import MESSAGES, Messages, pick_locale

NB = "\u00a0"


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        (150_000, "KES", "en", "KSh 1,500.00"),
        (150_000, "KES", "fr", "KSh 1,500.00"),  # the currency's own format, whatever the language
        (5_000, "XOF", "fr", "5 000 FCFA"),
        (5_000, "XOF", "en", "5 000 FCFA"),
        (1_250_000, "XAF", "fr", "1 250 000 FCFA"),
        (50_000, "NGN", "en", "₦500.00"),
        (120_000, "UGX", "en", "USh 120,000"),
        (150_000, "USD", "en", "$1,500.00"),
        (150_000, "USD", "fr", "1 500,00 $"),
        (99, "EUR", "fr", "0,99 €"),
        (1_234, "BHD", "en", "BHD 1.234"),
        (-500, "GHS", "en", "-GH₵5.00"),
    ],
)
def test_format_money(amount: int, currency: str, locale: str, shown: str) -> None:
    assert format_money(amount, currency, locale).replace(NB, " ") == shown
    assert " " not in format_money(amount, currency, locale)  # no-break spaces only: never wraps


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("+254 712 345 678", "+254712345678"),
        ("0712345678", "+254712345678"),
        ("254712345678", "+254712345678"),
        ("(0712) 345-678", "+254712345678"),
        ("071234567", None),
        ("+255712345678", None),
        ("\uff10\uff17\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18", None),  # full-width digits
        ("", None),
    ],
)
def test_kenyan_numbers(raw: str, normal: str | None) -> None:
    assert PHONES["KES"].normalize(raw) == normal


def test_phone_pattern_accepts_what_normalize_accepts() -> None:
    import re

    pattern = re.compile(PHONES["KES"].pattern)
    assert pattern.fullmatch("+254712345678")
    assert pattern.fullmatch("0712345678")
    assert not pattern.fullmatch("12345")


@pytest.mark.parametrize(
    ("payment_locale", "header", "locale"),
    [
        ("fr", "en-US,en;q=0.9", "fr"),
        (None, "fr-SN,fr;q=0.9,en;q=0.8", "fr"),
        (None, "de-DE, en;q=0.5, fr;q=0.7", "fr"),
        (None, "de-DE", "en"),
        (None, None, "en"),
        (None, "fr;q=0, en", "en"),
        ("de", "fr", "fr"),
    ],
)
def test_pick_locale(payment_locale: str | None, header: str | None, locale: str) -> None:
    assert pick_locale(payment_locale, header) == locale


def test_catalogues_have_the_same_keys() -> None:
    assert MESSAGES["en"].keys() == MESSAGES["fr"].keys()
    assert Messages("fr")("pay", amount="5 000 FCFA") == "Payer 5 000 FCFA"


def test_csrf_token_is_bound_to_checkout_nonce_and_secret() -> None:
    token = security.csrf_token("pay_1_secret_a", "cs_1", "n1")
    assert security.csrf_ok("pay_1_secret_a", "cs_1", "n1", token)
    assert not security.csrf_ok("pay_1_secret_a", "cs_1", "n2", token)
    assert not security.csrf_ok("pay_1_secret_a", "cs_2", "n1", token)
    assert not security.csrf_ok("pay_1_secret_b", "cs_1", "n1", token)
    assert not security.csrf_ok("pay_1_secret_a", "cs_1", None, token)
    assert not security.csrf_ok("pay_1_secret_a", "cs_1", "n1", None)


def test_signed_return_url() -> None:
    url = security.signed_return_url("https://shop.example/done?order=7&signature=forged", "pay_1", "sec")
    expected = hmac.new(b"sec", b"pay_1", hashlib.sha256).hexdigest()
    assert url == f"https://shop.example/done?order=7&payment_id=pay_1&signature={expected}"
