"""ISO 4217 minor units, and exact conversion between minor-unit integers and major-unit decimal strings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

# ISO 4217 list one as in force from 2026-01-01 (amendments up to 180): every code that has a numeric
# minor unit. Left out on purpose: the "N.A." units (XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX),
# which no one pays in, and the withdrawn ANG (-> XCG), BGN (-> EUR), CUC, HRK, SLL (-> SLE), ZWL (-> ZWG).
# These are ISO's exponents, not a processor's (Stripe, for one, treats ISK and UGX as two-decimal).
_BY_EXPONENT: Final[Mapping[int, str]] = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: (
        "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD BTN BWP BYN BZD "
        "CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
        "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK "
        "LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO "
        "NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS "
        "SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST "
        "XAD XCD XCG YER ZAR ZMW ZWG"
    ),
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}

# Read-only so no caller can quietly change how much money an integer means.
CURRENCY_EXPONENTS: Final[Mapping[str, int]] = MappingProxyType(
    {code: exp for exp, codes in _BY_EXPONENT.items() for code in codes.split()}
)

# Plain ASCII digits only ([0-9], not \d, which also matches other scripts' digits); no exponent,
# whitespace, "+", "_" or bare "." -- the forms Decimal() would also take but an API should not.
_MAJOR_RE: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")

# Caps how far a Decimal's own exponent may scale it, so Decimal("1E+999999999") fails fast instead
# of building a billion-digit int. 10**60 major units is far past any real amount.
_MAX_SCALE: Final = 60


def exponent(currency: str) -> int:
    """The number of minor-unit digits (0, 2, 3 or 4); KeyError for a code not in the table."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise KeyError(f"unknown ISO 4217 currency: {currency!r}") from None


def is_currency(code: str) -> bool:
    """True only for an upper-case code in the table; "usd" is not normalised here on purpose."""
    return code in CURRENCY_EXPONENTS


def _check_amount(amount: int) -> None:
    # bool is an int subclass and untyped callers (JSON) can hand in floats: both are bugs, not money.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int of minor units, not {type(amount).__name__}")


def to_major_string(amount: int, currency: str) -> str:
    """Minor units as an exact major-unit string: (1050, "KES") -> "10.50", (-5, "USD") -> "-0.05"."""
    _check_amount(amount)
    exp = exponent(currency)
    if exp == 0:
        return str(amount)
    # Work on the magnitude: divmod on a negative int floors, which would give "-1.95" for -5 cents.
    major, minor = divmod(abs(amount), 10**exp)
    sign = "-" if amount < 0 else ""
    return f"{sign}{major}.{minor:0{exp}d}"


def _from_decimal(value: Decimal, exp: int) -> int:
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    sign, digits, dexp = value.as_tuple()
    if not isinstance(dexp, int):  # unreachable once finite; narrows the type for mypy
        raise ValueError(f"not a finite amount: {value}")
    coefficient = 0
    for digit in digits:
        coefficient = coefficient * 10 + digit
    if coefficient == 0:
        return 0
    # Integer arithmetic on the tuple: Decimal.scaleb would round to the context's 28 digits.
    shift = dexp + exp
    if shift > _MAX_SCALE:
        raise ValueError(f"amount out of range: {value}")
    if shift >= 0:
        minor = coefficient * 10**shift
    else:
        minor, rest = divmod(coefficient, 10**-shift)
        if rest:
            raise ValueError(f"{value} has more than {exp} decimal places")
    return -minor if sign else minor


def from_major(value: str | int | Decimal, currency: str) -> int:
    """The exact inverse of to_major_string: ("10.5", "KES") -> 1050.

    ValueError when the value is not a finite number or needs more decimal places than the currency
    has ("10.505" KES, "1.5" JPY); trailing zeros are not precision, so "10.500" KES is 1050.
    TypeError for float (and bool): a float has already lost the exact amount.
    """
    if isinstance(value, float | bool):
        raise TypeError(f"amount must be str, int or Decimal, not {type(value).__name__}")
    exp = exponent(currency)
    if isinstance(value, int):
        return value * 10**exp
    if isinstance(value, Decimal):
        return _from_decimal(value, exp)
    if not isinstance(value, str):
        raise TypeError(f"amount must be str, int or Decimal, not {type(value).__name__}")
    m = _MAJOR_RE.fullmatch(value)
    if m is None:
        raise ValueError(f"not a decimal amount: {value!r}")
    sign, whole, frac = m.group(1), m.group(2), (m.group(3) or "").rstrip("0")
    if len(frac) > exp:
        raise ValueError(f"{value!r} has more than {exp} decimal places for {currency}")
    minor = int(whole) * 10**exp + int(frac.ljust(exp, "0") or "0")
    return -minor if sign else minor


def format_amount(amount: int, currency: str) -> str:
    """For logs and messages, not for locale display: (1050, "KES") -> "KES 10.50"."""
    return f"{currency} {to_major_string(amount, currency)}"
