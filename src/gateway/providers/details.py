"""How a payment was paid, as providers tell it: the payment's `payment_method_details`.

Adapters build these from what the provider returns (pure values, no I/O). Nothing here can hold a
full card number or a full phone number: the constructors keep the last four digits only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar


def last4(value: Any) -> str | None:
    """The last four digits of a card or phone number the provider sent (a number, or text with
    separators or a mask), or None if it has fewer than four digits."""
    if value is None or isinstance(value, bool):
        return None
    digits = "".join(ch for ch in str(value) if ch.isdigit())
    return digits[-4:] if len(digits) >= 4 else None


def _month(value: Any) -> int | None:
    try:
        month = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return month if 1 <= month <= 12 else None


def _year(value: Any) -> int | None:
    try:
        year = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    if 0 <= year < 100:  # "09/32": a two-digit year
        year += 2000
    return year if 2000 <= year <= 2100 else None


# Brand names as providers spell them -> ours (Stripe's vocabulary: visa, mastercard, amex, ...).
_BRANDS = {
    "master": "mastercard",
    "master card": "mastercard",
    "mastercard": "mastercard",
    "american express": "amex",
    "americanexpress": "amex",
    "amex": "amex",
    "visa": "visa",
    "verve": "verve",
    "discover": "discover",
    "diners": "diners",
    "diners club": "diners",
    "jcb": "jcb",
    "unionpay": "unionpay",
    "union pay": "unionpay",
}
_FUNDING = ("credit", "debit", "prepaid")


def card_brand(value: Any) -> str | None:
    """A provider's card brand or type ("VISA", "visa ", "Mastercard", "MASTERCARD CREDIT") as ours,
    lower case; a brand we do not list keeps its own name."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.lower().split())
    for words in (text, " ".join(w for w in text.split() if w not in _FUNDING)):
        if words in _BRANDS:
            return _BRANDS[words]
    first = text.split()[0]
    return _BRANDS.get(first, first)


def card_funding(value: Any) -> str | None:
    """credit | debit | prepaid where the provider's text says so ("MASTERCARD  CREDIT", "visa DEBIT")."""
    if not isinstance(value, str):
        return None
    words = value.lower().split()
    return next((f for f in _FUNDING if f in words), None)


def country(value: Any) -> str | None:
    """An ISO 3166-1 alpha-2 code, upper case ("NG", or the code ending "NIGERIA NG"), or None."""
    words = value.split() if isinstance(value, str) else []
    if words and len(words[-1]) == 2 and words[-1].isalpha():
        return words[-1].upper()
    return None


@dataclass(frozen=True)
class Card:
    type: ClassVar[str] = "card"
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    funding: str | None = None  # credit | debit | prepaid | unknown
    country: str | None = None  # ISO 3166-1 alpha-2 of the issuer

    @classmethod
    def of(
        cls,
        *,
        brand: Any = None,
        number: Any = None,
        exp_month: Any = None,
        exp_year: Any = None,
        funding: Any = None,
        country_code: Any = None,
    ) -> Card:
        """From a provider's raw values; `number` is whatever digits it sent (last4, a masked PAN)."""
        return cls(
            brand=card_brand(brand),
            last4=last4(number),
            exp_month=_month(exp_month),
            exp_year=_year(exp_year),
            funding=funding if funding in (*_FUNDING, "unknown") else card_funding(funding),
            country=country(country_code),
        )


@dataclass(frozen=True)
class MobileMoney:
    type: ClassVar[str] = "mobile_money"
    operator: str | None = None  # mpesa | mtn | wave | airtel | ...
    phone_last4: str | None = None
    receipt: str | None = None  # the operator's transaction id, as on the customer's SMS

    @classmethod
    def of(cls, *, operator: str | None, phone: Any = None, receipt: Any = None) -> MobileMoney:
        text = str(receipt).strip() if receipt is not None and not isinstance(receipt, bool) else ""
        return cls(operator=operator, phone_last4=last4(phone), receipt=text[:64] or None)


@dataclass(frozen=True)
class Cash:
    type: ClassVar[str] = "cash"
    till: str | None = None  # the till or cash session that took the money, where the merchant names it


MethodDetails = Card | MobileMoney | Cash


def details_json(details: MethodDetails) -> dict[str, Any]:
    """The details as the payment stores and shows them: `type` first, then the fields."""
    return {"type": details.type} | {f.name: getattr(details, f.name) for f in fields(details)}
