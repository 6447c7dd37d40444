"""The value types of payment requests: each validates and normalises one field, and names its
schema (TypeAliasType) so the OpenAPI document and generated clients have one type for it."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StrictInt
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from gateway.kit.money import CURRENCY_EXPONENTS

MAX_AMOUNT = 999_999_999_999  # 12 digits: exact in every JSON client, far above any real payment
METADATA_MAX_KEYS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 50, 40, 500
# Named (TypeAliasType): one schema in the OpenAPI document, one enum in generated clients.
PaymentStatus = TypeAliasType(
    "PaymentStatus",
    Literal[
        "requires_payment_method",
        "pending",
        "requires_action",
        "processing",
        "succeeded",
        "failed",
        "canceled",
        "expired",
        "partially_refunded",
        "refunded",
    ],
)


def _currency(v: str) -> str:
    if len(v) != 3:
        raise PydanticCustomError("invalid_currency", "currency must be a 3-letter ISO 4217 code")
    if v not in CURRENCY_EXPONENTS:
        hint = " (currency codes are upper case)" if v.upper() in CURRENCY_EXPONENTS else ""
        raise PydanticCustomError(
            "invalid_currency", "{value} is not an ISO 4217 currency code{hint}", {"value": v, "hint": hint}
        )
    return v


def _amount(v: int) -> int:
    if v > MAX_AMOUNT:
        raise PydanticCustomError("amount_too_large", "amount must be at most {max}", {"max": MAX_AMOUNT})
    return v


def normalize_phone(v: str) -> str:
    try:
        n = phonenumbers.parse(v, None)
    except phonenumbers.NumberParseException:
        n = None
    if n is None or not phonenumbers.is_valid_number(n):
        raise PydanticCustomError(
            "invalid_phone", "phone must be a valid number in international format, e.g. +254712345678"
        )
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(v: str) -> str:
    try:
        return validate_email(v, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise PydanticCustomError("invalid_email", "email is not valid: {reason}", {"reason": str(e)}) from e


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _payment_method(v: str) -> str:
    # Card data must never reach us: a PAN sent as a payment method is refused before anything is
    # stored, logged or echoed (the error does not repeat the value).
    digits = re.sub(r"[\s-]", "", v)
    if digits.isdigit() and 12 <= len(digits) <= 19 and _luhn_ok(digits):
        raise PydanticCustomError(
            "card_number_not_allowed",
            "payment_method looks like a card number; send a provider token (e.g. pm_…), never card data",
        )
    return v


def _metadata(v: dict[str, str]) -> dict[str, str]:
    if len(v) > METADATA_MAX_KEYS:
        raise PydanticCustomError("invalid_metadata", "metadata holds at most 50 keys")
    for k, val in v.items():
        if not 1 <= len(k) <= METADATA_KEY_MAX:
            raise PydanticCustomError("invalid_metadata", "metadata keys are 1 to 40 characters")
        if len(val) > METADATA_VALUE_MAX:
            raise PydanticCustomError("invalid_metadata", "metadata values are at most 500 characters")
    return v


# The document states the codes the server takes; the check itself stays in _currency, so a wrong
# one is answered with its own code (`invalid_currency`, with a hint for lower case).
Currency = TypeAliasType(
    "Currency",
    Annotated[
        str,
        AfterValidator(_currency),
        Field(
            examples=["KES"],
            min_length=1,
            max_length=3,
            description="ISO 4217 code, upper case",
            json_schema_extra={"pattern": "^[A-Z]{3}$", "enum": sorted(CURRENCY_EXPONENTS)},
        ),
    ],
)
Amount = Annotated[
    StrictInt,
    Field(
        gt=0,
        description="Integer amount in the currency's minor unit",
        json_schema_extra={"maximum": MAX_AMOUNT},  # checked by _amount (code `amount_too_large`)
    ),
    AfterValidator(_amount),
]
Metadata = TypeAliasType(
    "Metadata",
    Annotated[
        dict[str, str],
        AfterValidator(_metadata),
        # What _metadata checks (code `invalid_metadata`), stated in the document too.
        Field(
            json_schema_extra={
                "maxProperties": METADATA_MAX_KEYS,
                "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_MAX},
                "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_MAX},
            }
        ),
    ],
)
Phone = Annotated[str, Field(max_length=32), AfterValidator(normalize_phone)]
Email = Annotated[
    str, Field(max_length=320, json_schema_extra={"format": "email"}), AfterValidator(normalize_email)
]
# A provider token (pm_…), never card data.
PaymentMethod = Annotated[str, AfterValidator(_payment_method)]
# What kind of method a payment is paid by, as payment_method_details names it: routing rules match
# it (a payment names it with `"provider": "auto"`), no provider is told it.
PaymentMethodType = TypeAliasType("PaymentMethodType", Literal["card", "mobile_money", "cash"])
