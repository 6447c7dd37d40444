"""Property tests: converting between minor units and every major-unit form never loses or invents a unit."""

import json
import re
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.kit.money import (
    CURRENCY_EXPONENTS,
    exponent,
    from_major,
    from_provider_number,
    to_major_decimal,
    to_major_string,
)

# No deadline: a slow CI runner must not turn timing into a failure. 300 examples keeps the file at a
# few seconds while still covering every currency many times over.
_settings = settings(deadline=None, max_examples=300)

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
amounts = st.integers(min_value=-(10**15), max_value=10**15)

# Every decimal with at most 15 significant digits (DBL_DIG) comes back unchanged from text -> float ->
# shortest repr. An amount has no more decimals than its exponent, so its major value has as many
# significant digits as the minor-unit integer, whatever the exponent: below 10**15 minor units a float
# is always exact. That is the bound from_provider_number enforces. (2**53 // 10**exponent is not the
# right bound: the float holds a / 10**exponent, not a, and e.g. 2**53 - 1 cents already collides.)
float_safe_amounts = st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1)

# RFC 8259's number grammar, without the exponent part (which to_major_string never writes).
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


@_settings
@given(currencies, amounts)
def test_string_round_trip(currency: str, amount: int) -> None:
    assert from_major(to_major_string(amount, currency), currency) == amount


@_settings
@given(currencies, amounts)
def test_decimal_round_trip_is_exact_and_quantized(currency: str, amount: int) -> None:
    exp = exponent(currency)
    d = to_major_decimal(amount, currency)
    assert from_major(d, currency) == amount
    # |amount| <= 10**15 is 16 digits, well inside the 28-digit context, so this product is exact.
    assert d * 10**exp == amount
    assert d.as_tuple().exponent == -exp  # exactly `exponent` places, trailing zeros included
    assert str(d) == to_major_string(amount, currency)


@_settings
@given(currencies, float_safe_amounts)
def test_float_round_trip_below_the_bound(currency: str, amount: int) -> None:
    assert from_provider_number(float(to_major_string(amount, currency)), currency) == amount


@_settings
@given(currencies, float_safe_amounts)
def test_json_number_round_trip_through_parsers(currency: str, amount: int) -> None:
    # The real route: the literal goes out as a JSON number, the provider's parser hands back a float
    # (or an int when there is no point), and from_provider_number reads it back.
    text = to_major_string(amount, currency)
    assert _JSON_NUMBER.fullmatch(text)
    body = orjson.dumps({"amount": orjson.Fragment(text)})
    assert from_provider_number(orjson.loads(body)["amount"], currency) == amount
    assert from_provider_number(json.loads(body)["amount"], currency) == amount
    assert json.loads(body, parse_float=Decimal)["amount"] == to_major_decimal(amount, currency)


@_settings
@given(currencies, st.integers(min_value=10**15, max_value=10**30), st.booleans())
def test_float_above_the_bound_is_refused_not_guessed(currency: str, magnitude: int, negative: bool) -> None:
    amount = -magnitude if negative else magnitude
    with pytest.raises(ValueError, match="too large"):
        from_provider_number(float(to_major_string(amount, currency)), currency)
    # Refusing the float costs nothing: the exact forms still read it.
    assert from_provider_number(to_major_string(amount, currency), currency) == amount


@_settings
@given(
    currencies,
    amounts,
    st.integers(min_value=0, max_value=3),  # zeros before the extra digit
    st.integers(min_value=1, max_value=9),  # the extra, non-zero digit
)
def test_extra_places_are_rejected(currency: str, amount: int, zeros: int, digit: int) -> None:
    exp = exponent(currency)
    text = to_major_string(amount, currency)
    if exp == 0:
        text += "."
    text += "0" * zeros + str(digit)  # now exp + zeros + 1 places, the last one non-zero
    with pytest.raises(ValueError, match="decimal places"):
        from_major(text, currency)
    with pytest.raises(ValueError, match="decimal places"):
        from_major(Decimal(text), currency)
    with pytest.raises(ValueError, match="decimal places"):
        from_provider_number(text, currency)
    # As a float only where the float is exact (at most 15 significant digits); beyond that the parse
    # itself may round the extra digit away, which is why large floats are refused outright.
    if abs(amount) * 10 ** (zeros + 1) + digit < 10**15:
        with pytest.raises(ValueError, match="decimal places"):
            from_provider_number(float(text), currency)


@_settings
@given(currencies, amounts, st.integers(min_value=1, max_value=5))
def test_trailing_zeros_beyond_the_exponent_are_not_precision(currency: str, amount: int, zeros: int) -> None:
    text = to_major_string(amount, currency)
    padded = text + ("." if exponent(currency) == 0 else "") + "0" * zeros
    assert from_major(padded, currency) == amount
    assert from_major(Decimal(padded), currency) == amount


@_settings
@given(currencies, amounts, amounts)
def test_major_decimal_is_strictly_monotonic(currency: str, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    if lo == hi:
        assert to_major_decimal(lo, currency) == to_major_decimal(hi, currency)
    else:
        assert to_major_decimal(lo, currency) < to_major_decimal(hi, currency)


# Below 10**11 major units every currency (exponent <= 4) stays under the float bound of 10**15 minor.
@_settings
@given(currencies, st.integers(min_value=-(10**11) + 1, max_value=10**11 - 1))
def test_whole_major_numbers_read_the_same_every_way(currency: str, major: int) -> None:
    # A JSON number with no point parses as an int; it must mean the same as its float and text forms.
    expected = major * 10 ** exponent(currency)
    assert from_provider_number(major, currency) == expected
    assert from_provider_number(float(major), currency) == expected
    assert from_provider_number(str(major), currency) == expected


# --- the table (sampled as properties; the exact sets are spelled out in test_money.py) ---------------

_ZERO_DECIMAL = {
    "JPY", "KRW", "UGX", "RWF", "XOF", "XAF", "KMF", "GNF", "VND", "ISK", "CLP", "PYG", "BIF", "DJF",
    "VUV", "XPF",
    "UYI",  # also 0 in ISO 4217 (Uruguay's indexed-unit peso); no provider here uses it
}  # fmt: skip
_THREE_DECIMAL = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}


@_settings
@given(currencies)
def test_every_code_is_three_upper_case_letters_with_a_known_exponent(currency: str) -> None:
    assert re.fullmatch(r"[A-Z]{3}", currency)
    assert exponent(currency) in {0, 2, 3, 4}


def test_zero_and_three_decimal_groups() -> None:
    assert {c for c, e in CURRENCY_EXPONENTS.items() if e == 0} == _ZERO_DECIMAL
    assert {c for c, e in CURRENCY_EXPONENTS.items() if e == 3} == _THREE_DECIMAL
    assert {c for c, e in CURRENCY_EXPONENTS.items() if e == 4} == {"CLF", "UYW"}
