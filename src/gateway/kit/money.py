"""ISO 4217 minor units, and exact conversion between minor-unit integers and the major-unit forms
providers use: decimal strings, Decimals, and JSON numbers (which a JSON parser may hand back as floats)."""

from __future__ import annotations

import math
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

# No real amount has 60 digits of minor units; refusing more keeps a hostile "1E+999999999" or a
# million-digit string from making this build a huge int.
_MAX_DIGITS: Final = 60


# DBL_DIG: every decimal of at most 15 significant digits survives text -> float -> shortest repr
# unchanged. An amount under 10**15 minor units has at most 15 (it has no more decimals than the
# exponent), so a float is trusted only below this; above it orjson turns 90071992547409.91 into
# 90071992547409.9 and nothing after the parse can tell.
_FLOAT_EXACT_MINOR_UNITS: Final = 10**15


def _pow10(n: int) -> int:
    # int ** int is typed Any (a negative power gives a float); n is never negative here.
    return int(10**n)


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
    major, minor = divmod(abs(amount), _pow10(exp))
    sign = "-" if amount < 0 else ""
    return f"{sign}{major}.{minor:0{exp}d}"


def _from_decimal(value: Decimal, exp: int) -> int:
    sign, digits, dexp = value.as_tuple()
    if not value.is_finite() or not isinstance(dexp, int):  # the isinstance narrows dexp for mypy
        raise ValueError(f"not a finite amount: {value}")
    # Integer arithmetic on the tuple: Decimal.scaleb would round to the context's 28 digits.
    # Trailing zeros are not precision ("10.500" KES is 1050), so drop them before counting places.
    sig = "".join(map(str, digits)).lstrip("0")
    stripped = sig.rstrip("0")
    if not stripped:
        return 0
    shift = dexp + (len(sig) - len(stripped)) + exp
    if shift < 0:
        raise ValueError(f"{value} has more than {exp} decimal places")
    if len(stripped) + shift > _MAX_DIGITS:
        raise ValueError(f"amount out of range: {value}")
    minor = int(stripped) * _pow10(shift)
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
        return value * _pow10(exp)
    if isinstance(value, Decimal):
        return _from_decimal(value, exp)
    if not isinstance(value, str):
        raise TypeError(f"amount must be str, int or Decimal, not {type(value).__name__}")
    m = _MAJOR_RE.fullmatch(value)
    if m is None:
        raise ValueError(f"not a decimal amount: {value!r}")
    sign, whole, frac = m.group(1), m.group(2).lstrip("0"), (m.group(3) or "").rstrip("0")
    if len(frac) > exp:
        raise ValueError(f"{value!r} has more than {exp} decimal places for {currency}")
    if len(whole) + exp > _MAX_DIGITS:
        raise ValueError(f"amount out of range: {value[:20]!r}...")
    minor = int(whole or "0") * _pow10(exp) + int(frac.ljust(exp, "0") or "0")
    return -minor if sign else minor


def to_major_decimal(amount: int, currency: str) -> Decimal:
    """Minor units as an exact major-unit Decimal with exactly `exponent` places: (1050, "KES") ->
    Decimal("10.50"), (500, "UGX") -> Decimal("500"), (1234, "BHD") -> Decimal("1.234").

    For providers whose JSON takes the amount as a number (Flutterwave's `amount`, MTN MoMo). Neither
    orjson nor the json module writes a Decimal as a number, and float() would be exact only up to 15
    digits, so write the literal text instead: to_major_string already matches JSON's number grammar
    (no "+", exponent or leading zero), e.g. orjson.dumps({"amount": orjson.Fragment(to_major_string(a, c))}).
    Arithmetic on the result runs in a Decimal context (28 digits by default); the value itself is exact.
    """
    # Decimal(str) is exact whatever the context, and keeps the string's places ("10.50", not "10.5").
    return Decimal(to_major_string(amount, currency))


def from_provider_number(value: int | float | str | Decimal, currency: str) -> int:
    """A provider's major-unit amount, as its JSON parser handed it over, in minor units:
    (100.5, "KES") -> 10050, (500, "UGX") -> 500, ("1.234", "BHD") -> 1234.

    str, int and Decimal follow from_major exactly. A float is read as the literal it was parsed from
    (see below), then held to the same rules: ValueError for NaN, infinity, more decimal places than
    the currency has, or 10**15 minor units and more (where a float may already have lost a unit;
    parse such bodies with json.loads(parse_float=Decimal)). TypeError for bool.
    """
    if isinstance(value, bool):
        raise TypeError("amount must be a number, not bool")
    if not isinstance(value, float):
        return from_major(value, currency)
    if not math.isfinite(value):
        raise ValueError(f"not a finite amount: {value!r}")
    # Decimal(value) would be the float's exact binary value (100.1 -> 100.09999999999999431...),
    # which is not what the provider sent and has far too many places. repr is the shortest decimal
    # that parses back to the same float, so when the provider's literal had at most 15 significant
    # digits -- guaranteed below _FLOAT_EXACT_MINOR_UNITS -- repr gives that literal's value back.
    exp = exponent(currency)
    literal = Decimal(repr(value))
    # Decimal-to-int comparison is exact (no context rounding), and checking first gives 1e300 this
    # message rather than from_major's "out of range".
    if abs(literal) >= _FLOAT_EXACT_MINOR_UNITS // _pow10(exp):
        raise ValueError(f"float amount {value!r} is too large to be exact; parse it as a Decimal")
    return _from_decimal(literal, exp)


def format_amount(amount: int, currency: str) -> str:
    """For logs and messages, not for locale display: (1050, "KES") -> "KES 10.50"."""
    return f"{currency} {to_major_string(amount, currency)}"
