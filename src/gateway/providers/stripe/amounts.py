"""Amounts as Stripe counts them: which currencies it charges, in which unit, and the conversions
to and from our ISO 4217 minor units (docs/providers/stripe.md, "Amounts"). Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from gateway.kit.money import CURRENCY_EXPONENTS


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Presentment currencies Stripe charges cards in (docs.stripe.com/currencies), as far as they are in
# our ISO 4217 table. Not offered: IQD and LYD (three-decimal, not Stripe currencies); codes ISO has
# withdrawn (ANG, BGN, HRK, SLL, STD, VEF), which our API refuses anyway.
STRIPE_CURRENCIES: Final = _codes(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BWP BYN BZD CAD CDF
    CHF CLP CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ETB EUR FJD FKP GBP GEL GIP GMD GNF GTQ GYD HKD
    HNL HTG HUF IDR ILS INR ISK JMD JOD JPY KES KGS KHR KMF KRW KWD KYD KZT LAK LBP LKR LRD LSL MAD
    MDL MGA MKD MMK MNT MOP MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SEK SGD SHP SLE SOS SRD SZL THB TJS TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VND VUV WST XAF XCD XOF XPF YER ZAR ZMW
    """
)

# Where Stripe's amount unit is not ISO 4217's (ours). Stripe's own words (docs.stripe.com/currencies,
# "special cases", and its API errors): ISK and UGX became zero-decimal, but "backwards compatibility
# requires you to represent it as a two-decimal value, where the decimal amount is always 00" (charge
# 5 UGX as 500); MGA is zero-decimal at Stripe while ISO gives it two decimals. Every other currency
# here uses ISO's exponent at Stripe too (JPY, XOF, RWF... 0; HUF and TWD 2 for charges).
STRIPE_EXPONENTS: Final[Mapping[str, int]] = {
    **{c: CURRENCY_EXPONENTS[c] for c in STRIPE_CURRENCIES},
    "ISK": 2,
    "UGX": 2,
    "MGA": 0,
}
# Three-decimal currencies: Stripe takes them in thousandths but only with a last digit of 0
# ("5.124 KWD must be rounded to 5120 or 5130"). We never round money, so other amounts are refused.
THREE_DECIMAL: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def _pow10(n: int) -> int:
    return int(10**n)  # int ** int is typed Any; n is never negative here


class UnsupportedAmount(ValueError):
    """An amount Stripe cannot take in this currency without changing it (which we never do)."""


def amount_problem(amount: int, currency: str) -> str | None:
    """Why Stripe cannot take this amount in this currency exactly, or None (for a check before the
    payment exists)."""
    try:
        to_stripe_amount(amount, currency)
    except UnsupportedAmount as e:
        return str(e)
    return None


def to_stripe_amount(amount: int, currency: str) -> int:
    """Our minor units (ISO 4217) as Stripe's `amount`; UnsupportedAmount when Stripe cannot take it."""
    if currency not in STRIPE_EXPONENTS:
        raise UnsupportedAmount(f"Stripe does not take {currency}")
    shift = STRIPE_EXPONENTS[currency] - CURRENCY_EXPONENTS[currency]
    if shift >= 0:
        value = amount * _pow10(shift)
    else:
        value, rest = divmod(amount, _pow10(-shift))
        if rest:
            raise UnsupportedAmount(
                f"Stripe takes {currency} in whole units only: amount must be a multiple of {_pow10(-shift)}"
            )
    if currency in THREE_DECIMAL and value % 10:
        raise UnsupportedAmount(f"Stripe takes {currency} amounts only in multiples of 10 (0.010 {currency})")
    return value


def from_stripe_amount(value: int, currency: str) -> int:
    """Stripe's `amount` as our minor units; ValueError if it is no whole number of them."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"amount must be an integer, not {type(value).__name__}")
    shift = STRIPE_EXPONENTS[currency] - CURRENCY_EXPONENTS[currency]
    if shift <= 0:
        return value * _pow10(-shift)
    ours, rest = divmod(value, _pow10(shift))
    if rest:
        raise ValueError(f"{value} is not a whole number of {currency} minor units")
    return ours


def money(obj: Mapping[str, Any], amount_field: str = "amount") -> tuple[int, str]:
    """(amount, CURRENCY) of a Stripe object in our terms. A currency we do not know keeps Stripe's raw
    amount: it can never equal one of our payments' currencies, so a mismatch check still fires."""
    currency = str(obj["currency"]).upper()
    amount = obj[amount_field]
    if currency not in STRIPE_EXPONENTS:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValueError(f"{amount_field} must be an integer")
        return amount, currency
    return from_stripe_amount(amount, currency), currency
