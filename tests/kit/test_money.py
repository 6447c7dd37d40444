from decimal import Decimal

import orjson
import pytest

from gateway.kit.money import (
    CURRENCY_EXPONENTS,
    exponent,
    format_amount,
    from_major,
    from_provider_number,
    is_currency,
    to_major_decimal,
    to_major_string,
)

# --- the table ---------------------------------------------------------------------------------------


def test_table_has_every_active_iso_4217_code_with_a_minor_unit() -> None:
    # 178 codes in list one from 2026-01-01, less the 13 with minor unit "N.A.".
    assert len(CURRENCY_EXPONENTS) == 165


def test_table_exponents_split() -> None:
    counts = {e: sum(1 for v in CURRENCY_EXPONENTS.values() if v == e) for e in (0, 2, 3, 4)}
    assert counts == {0: 17, 2: 139, 3: 7, 4: 2}


def test_exponents_are_only_0_2_3_4() -> None:
    assert set(CURRENCY_EXPONENTS.values()) == {0, 2, 3, 4}


def test_zero_three_and_four_digit_sets_are_exact() -> None:
    by_exp = {e: {c for c, v in CURRENCY_EXPONENTS.items() if v == e} for e in (0, 3, 4)}
    assert by_exp[0] == {
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV",
        "XAF", "XOF", "XPF",
    }  # fmt: skip
    assert by_exp[3] == {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}
    assert by_exp[4] == {"CLF", "UYW"}


def test_codes_are_three_upper_case_letters() -> None:
    for code in CURRENCY_EXPONENTS:
        assert len(code) == 3
        assert code.isascii()
        assert code.isalpha()
        assert code.isupper()


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        CURRENCY_EXPONENTS["ZZZ"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("code", "exp"),
    [
        ("USD", 2), ("EUR", 2), ("GBP", 2), ("KES", 2), ("NGN", 2), ("GHS", 2), ("TZS", 2),
        ("ZAR", 2), ("MGA", 2), ("MRU", 2), ("ZWG", 2), ("SLE", 2), ("VES", 2), ("VED", 2),
        ("XCG", 2), ("XAD", 2), ("XCD", 2), ("HUF", 2), ("TWD", 2), ("IDR", 2), ("CHE", 2),
        ("CHW", 2), ("BOV", 2), ("COU", 2), ("MXV", 2), ("USN", 2), ("SVC", 2), ("CUP", 2),
        ("JPY", 0), ("KRW", 0), ("XOF", 0), ("XAF", 0), ("XPF", 0), ("UGX", 0), ("RWF", 0),
        ("KMF", 0), ("GNF", 0), ("DJF", 0), ("VND", 0), ("VUV", 0), ("PYG", 0), ("ISK", 0),
        ("CLP", 0), ("BIF", 0), ("UYI", 0),
        ("BHD", 3), ("IQD", 3), ("JOD", 3), ("KWD", 3), ("LYD", 3), ("OMR", 3), ("TND", 3),
        ("CLF", 4), ("UYW", 4),
    ],
)  # fmt: skip
def test_exponent_spot_checks(code: str, exp: int) -> None:
    assert exponent(code) == exp


@pytest.mark.parametrize(
    "code",
    [
        # "N.A." minor units: not money one is paid in.
        "XAU", "XAG", "XPD", "XPT", "XDR", "XSU", "XUA", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD",
        # Withdrawn from list one.
        "ANG", "BGN", "CUC", "HRK", "SLL", "ZWL", "VEF", "STD", "MRO", "BYR", "LTL",
    ],
)  # fmt: skip
def test_excluded_codes(code: str) -> None:
    assert not is_currency(code)
    with pytest.raises(KeyError):
        exponent(code)


# --- is_currency / exponent -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["usd", "Usd", "US", "USDD", " USD", "USD ", "", "123", "ZZZ"])
def test_is_currency_rejects_anything_but_an_exact_code(code: str) -> None:
    assert not is_currency(code)


def test_is_currency_accepts_table_codes() -> None:
    assert all(is_currency(code) for code in CURRENCY_EXPONENTS)


def test_exponent_unknown_raises_key_error() -> None:
    with pytest.raises(KeyError, match="ZZZ"):
        exponent("ZZZ")
    with pytest.raises(KeyError):
        exponent("usd")


# --- to_major_string -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # 0 decimals
        (500, "UGX", "500"), (0, "JPY", "0"), (-1, "JPY", "-1"), (1_000_000, "XOF", "1000000"),
        (-250, "KRW", "-250"),
        # 2 decimals
        (1050, "KES", "10.50"), (0, "USD", "0.00"), (1, "USD", "0.01"), (9, "USD", "0.09"),
        (10, "USD", "0.10"), (99, "EUR", "0.99"), (100, "EUR", "1.00"), (12345, "NGN", "123.45"),
        (-5, "USD", "-0.05"), (-1050, "KES", "-10.50"), (-100, "GBP", "-1.00"), (-195, "USD", "-1.95"),
        (10**12 - 1, "TZS", "9999999999.99"),
        # 3 decimals
        (1234, "BHD", "1.234"), (1, "KWD", "0.001"), (1000, "JOD", "1.000"), (-5, "OMR", "-0.005"),
        (-1234, "TND", "-1.234"), (50, "IQD", "0.050"),
        # 4 decimals
        (1, "CLF", "0.0001"), (12345, "CLF", "1.2345"), (10000, "UYW", "1.0000"), (-7, "UYW", "-0.0007"),
        (-123456, "CLF", "-12.3456"),
    ],
)  # fmt: skip
def test_to_major_string(amount: int, currency: str, expected: str) -> None:
    assert to_major_string(amount, currency) == expected


def test_to_major_string_unknown_currency() -> None:
    with pytest.raises(KeyError):
        to_major_string(100, "ZZZ")


@pytest.mark.parametrize("amount", [1.5, 100.0, True, "100", Decimal("100")])
def test_to_major_string_rejects_non_int(amount: object) -> None:
    with pytest.raises(TypeError):
        to_major_string(amount, "USD")  # type: ignore[arg-type]


# --- from_major ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("10", "KES", 1000), ("10.5", "KES", 1050), ("10.50", "KES", 1050), ("10.500", "KES", 1050),
        ("0", "USD", 0), ("0.01", "USD", 1), ("-0.05", "USD", -5), ("-0", "USD", 0), ("007.10", "USD", 710),
        ("500", "UGX", 500), ("500.00", "UGX", 500), ("-3", "JPY", -3),
        ("1.234", "BHD", 1234), ("1.2", "KWD", 1200), ("-0.005", "OMR", -5),
        ("1.2345", "CLF", 12345), ("1", "UYW", 10000), ("-0.0001", "CLF", -1),
        ("99999999999999999999999999999999.99", "USD", 10**34 - 1),
        (10, "KES", 1000), (0, "USD", 0), (-3, "BHD", -3000), (7, "JPY", 7), (2, "CLF", 20000),
        (Decimal("10.5"), "KES", 1050), (Decimal("10.50"), "KES", 1050), (Decimal("10.5000"), "KES", 1050),
        (Decimal("-0.05"), "USD", -5), (Decimal("1E+2"), "USD", 10000), (Decimal("1.234"), "BHD", 1234),
        (Decimal("500"), "UGX", 500), (Decimal("0E-10"), "JPY", 0), (Decimal("-0"), "USD", 0),
        (Decimal("0.0001"), "CLF", 1),
        # Beyond Decimal's default 28-digit context: must not round.
        (Decimal("12345678901234567890123456789.12"), "USD", 1234567890123456789012345678912),
    ],
)  # fmt: skip
def test_from_major(value: str | int | Decimal, currency: str, expected: int) -> None:
    assert from_major(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("10.505", "KES"), ("0.001", "USD"), ("1.5", "JPY"), ("500.5", "UGX"), ("1.2345", "BHD"),
        ("0.00001", "CLF"), ("0.00005", "UYW"),
        (Decimal("10.505"), "KES"), (Decimal("0.5"), "JPY"), (Decimal("1.23451"), "CLF"),
    ],
)  # fmt: skip
def test_from_major_rejects_too_many_decimals(value: str | Decimal, currency: str) -> None:
    with pytest.raises(ValueError, match="decimal places"):
        from_major(value, currency)


@pytest.mark.parametrize(
    "value",
    [
        "abc", "", " ", "NaN", "nan", "Infinity", "-Infinity", "inf", "sNaN", "1e3", "1E3", "10.", ".5",
        "+10", " 10", "10 ", "10\n", "1_000", "1,000", "10.5.0", "--1", "0x10", "\u0661\u0660",
        Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"),
    ],
)  # fmt: skip
def test_from_major_rejects_non_numbers(value: str | Decimal) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- several messages; the type is the contract
        from_major(value, "USD")


@pytest.mark.parametrize(
    "value", [Decimal("1E+999999999"), Decimal("9" * 100), "9" * 100, "9" * 59 + ".0", "1" * 1_000_000]
)
def test_from_major_rejects_absurdly_large_amounts(value: str | Decimal) -> None:
    with pytest.raises(ValueError, match="out of range"):
        from_major(value, "USD")


def test_from_major_largest_accepted_amount() -> None:
    assert from_major("9" * 58, "USD") == int("9" * 58) * 100
    assert from_major(Decimal("9" * 58), "USD") == int("9" * 58) * 100


def test_from_major_tiny_decimal_exponent_is_too_many_places_not_slow() -> None:
    with pytest.raises(ValueError, match="decimal places"):
        from_major(Decimal("1E-999999999"), "USD")
    assert from_major(Decimal("1." + "0" * 70), "USD") == 100


@pytest.mark.parametrize("value", [10.5, 10.0, 0.0, float("nan"), float("inf"), True, None, [1]])
def test_from_major_rejects_float_and_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        from_major(value, "USD")  # type: ignore[arg-type]


def test_from_major_float_rejected_even_for_zero_decimal_currency() -> None:
    with pytest.raises(TypeError):
        from_major(500.0, "UGX")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["10", 10, Decimal("10")])
def test_from_major_unknown_currency(value: str | int | Decimal) -> None:
    with pytest.raises(KeyError):
        from_major(value, "ZZZ")


# --- round trips -----------------------------------------------------------------------------------------

_AMOUNTS = [0, 1, 9, 10, 99, 100, 101, 999, 1000, 12345, 10**6 + 7, 10**12 - 1, 10**18 + 3]
_AMOUNTS += [-a for a in _AMOUNTS if a]


@pytest.mark.parametrize("currency", sorted(CURRENCY_EXPONENTS))
def test_round_trip_every_currency(currency: str) -> None:
    for amount in _AMOUNTS:
        text = to_major_string(amount, currency)
        assert from_major(text, currency) == amount
        assert from_major(Decimal(text), currency) == amount
        # The string is the exact value: Decimal agrees with integer scaling.
        assert Decimal(text) * 10 ** exponent(currency) == amount


@pytest.mark.parametrize("currency", ["JPY", "USD", "BHD", "CLF"])
def test_round_trip_dense_range(currency: str) -> None:
    for amount in range(-2500, 2501):
        assert from_major(to_major_string(amount, currency), currency) == amount


# --- to_major_decimal -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1050, "KES", "10.50"), (500, "UGX", "500"), (1234, "BHD", "1.234"), (-5, "USD", "-0.05"),
        (0, "USD", "0.00"), (0, "JPY", "0"), (1, "CLF", "0.0001"), (1000, "JOD", "1.000"),
        (10**30 + 1, "USD", "10000000000000000000000000000.01"),  # 31 digits: past the 28-digit context
    ],
)  # fmt: skip
def test_to_major_decimal(amount: int, currency: str, expected: str) -> None:
    d = to_major_decimal(amount, currency)
    # str() too: the places are part of the contract ("10.50", not "10.5"), and == would ignore them.
    assert str(d) == expected
    assert d == Decimal(expected)


@pytest.mark.parametrize("amount", [1.5, True, "100", Decimal("100")])
def test_to_major_decimal_rejects_non_int(amount: object) -> None:
    with pytest.raises(TypeError):
        to_major_decimal(amount, "USD")  # type: ignore[arg-type]


def test_to_major_decimal_unknown_currency() -> None:
    with pytest.raises(KeyError):
        to_major_decimal(1, "ZZZ")


def test_major_string_goes_into_json_as_an_exact_number() -> None:
    # The documented way to send a major-unit number: the literal text, not a float.
    body = orjson.dumps({"amount": orjson.Fragment(to_major_string(1050, "KES"))})
    assert body == b'{"amount":10.50}'
    assert from_provider_number(orjson.loads(body)["amount"], "KES") == 1050


# --- from_provider_number --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        # floats, as orjson / json.loads hand over a JSON number with a point or exponent ("1e2" -> 100.0)
        (100.5, "KES", 10050), (100.0, "KES", 10000), (0.01, "USD", 1), (-0.05, "USD", -5),
        (0.1, "USD", 10), (1.1, "USD", 110), (19.99, "EUR", 1999), (500.0, "UGX", 500),
        (1.234, "BHD", 1234), (0.001, "KWD", 1), (1.2345, "CLF", 12345), (-0.0, "USD", 0), (0.0, "JPY", 0),
        (9999999999999.99, "USD", 10**15 - 1), (999999999999999.0, "JPY", 10**15 - 1),
        (99999999999.9999, "CLF", 10**15 - 1),
        # ints (a JSON number without a point), strings and Decimals: exactly from_major
        (100, "KES", 10000), (500, "UGX", 500), (-3, "BHD", -3000), ("100.5", "KES", 10050),
        ("1.234", "BHD", 1234), (Decimal("10.50"), "KES", 1050), (Decimal("1E+2"), "USD", 10000),
    ],
)  # fmt: skip
def test_from_provider_number(value: float | int | str | Decimal, currency: str, expected: int) -> None:
    assert from_provider_number(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        (500.5, "UGX"), (10.505, "KES"), (0.001, "USD"), (1.2345, "BHD"), (0.00001, "CLF"), (1e-7, "USD"),
        (0.1 + 0.2, "USD"),  # 0.30000000000000004: float arithmetic, not an amount anyone sent
        ("10.505", "KES"), (Decimal("0.5"), "JPY"),
    ],
)  # fmt: skip
def test_from_provider_number_rejects_too_many_decimals(value: float | str | Decimal, currency: str) -> None:
    with pytest.raises(ValueError, match="decimal places"):
        from_provider_number(value, currency)


@pytest.mark.parametrize(
    ("value", "currency"),
    [(1e13, "USD"), (-1e13, "USD"), (1e15, "JPY"), (1e11, "CLF"), (1e300, "USD"), (2.0**53, "UGX")],
)
def test_from_provider_number_rejects_floats_too_large_to_be_exact(value: float, currency: str) -> None:
    with pytest.raises(ValueError, match="too large"):
        from_provider_number(value, currency)


def test_from_provider_number_large_float_is_refused_not_misread() -> None:
    # Why the bound exists: the parse has already dropped the last cent, and the float's repr is a
    # well-formed two-place amount, so without the bound this would be a silent 1-cent error.
    value = orjson.loads(b"90071992547409.91")
    assert repr(value) == "90071992547409.9"
    with pytest.raises(ValueError, match="too large"):
        from_provider_number(value, "USD")
    # The same literal read without a float is exact and allowed.
    assert from_provider_number("90071992547409.91", "USD") == 9007199254740991


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "NaN", Decimal("Infinity")])
def test_from_provider_number_rejects_non_finite(value: float | str | Decimal) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- the message differs by input type; the type is the contract
        from_provider_number(value, "USD")


@pytest.mark.parametrize("value", [True, False, None, [1], {"amount": 1}])
def test_from_provider_number_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        from_provider_number(value, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1.5, 1, "1", Decimal(1)])
def test_from_provider_number_unknown_currency(value: float | int | str | Decimal) -> None:
    with pytest.raises(KeyError):
        from_provider_number(value, "ZZZ")


# --- format_amount ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1050, "KES", "KES 10.50"), (500, "UGX", "UGX 500"), (1234, "BHD", "BHD 1.234"),
        (-5, "USD", "USD -0.05"), (12345, "CLF", "CLF 1.2345"), (0, "EUR", "EUR 0.00"),
    ],
)  # fmt: skip
def test_format_amount(amount: int, currency: str, expected: str) -> None:
    assert format_amount(amount, currency) == expected


def test_format_amount_unknown_currency() -> None:
    with pytest.raises(KeyError):
        format_amount(1, "ZZZ")
