"""How the checkout shows money and phone numbers: the one home of locale-aware display.

Amounts are shown in the currency's own format where it has one that does not depend on the
reader's language (KSh 1,500.00; 5 000 FCFA; ₦500.00); otherwise the locale decides the separators
(en: $1,500.00; fr: 1 500,00 $). Spaces inside an amount are no-break spaces (U+00A0), so an amount
never wraps across lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.kit.money import exponent

NBSP: Final = "\u00a0"


@dataclass(frozen=True)
class _Style:
    symbol: str
    before: bool = True  # the symbol before the number
    space: bool = True  # a space between symbol and number
    group: str | None = None  # None: the locale's
    decimal: str | None = None  # None: the locale's


_STYLES: Final[dict[str, _Style]] = {
    "KES": _Style("KSh", group=",", decimal="."),
    "UGX": _Style("USh", group=",", decimal="."),
    "TZS": _Style("TSh", group=",", decimal="."),
    "RWF": _Style("RF", group=",", decimal="."),
    "NGN": _Style("₦", space=False, group=",", decimal="."),
    "GHS": _Style("GH₵", space=False, group=",", decimal="."),
    "ZAR": _Style("R", group=",", decimal="."),
    "XOF": _Style("FCFA", before=False, group=NBSP, decimal=","),
    "XAF": _Style("FCFA", before=False, group=NBSP, decimal=","),
    "EGP": _Style("E£", space=False),
    "MAD": _Style("MAD", before=False),
    "USD": _Style("$", space=False),
    "EUR": _Style("€", space=False),
    "GBP": _Style("£", space=False),
}
# The locale's separators, and whether a symbol of a language-dependent currency goes after.
_LOCALES: Final[dict[str, tuple[str, str, bool]]] = {"en": (",", ".", False), "fr": (NBSP, ",", True)}


def format_money(amount: int, currency: str, locale: str = "en") -> str:
    """(150000, "KES") -> "KSh 1,500.00"; (5000, "XOF") -> "5 000 FCFA"; (50000, "NGN") -> "₦500.00";
    (150000, "USD", "fr") -> "1 500,00 $". Unknown currencies show their code."""
    group_l, decimal_l, after_l = _LOCALES.get(locale, _LOCALES["en"])
    style = _STYLES.get(currency, _Style(currency))
    fixed = style.group is not None
    group = style.group if style.group is not None else group_l
    decimal = style.decimal if style.decimal is not None else decimal_l
    exp = exponent(currency)
    major, minor = divmod(abs(amount), 10**exp)
    digits = f"{major:,}".replace(",", group)
    number = digits + (f"{decimal}{minor:0{exp}d}" if exp else "")
    sign = "-" if amount < 0 else ""
    before = style.before if fixed else style.before and not after_l
    if before:
        return f"{sign}{style.symbol}{NBSP if style.space else ''}{number}"
    return f"{sign}{number}{NBSP}{style.symbol}"


@dataclass(frozen=True)
class PhoneFormat:
    """A mobile-money country's numbers: what the page suggests and checks before posting (the
    provider's own check still runs on confirm)."""

    country: str
    dial_code: str
    national_digits: int  # after the dial code
    example: str

    @property
    def pattern(self) -> str:
        """An HTML `pattern`: the international form, or the national one with its leading 0."""
        n = self.national_digits
        return rf"\+?{self.dial_code}[0-9]{{{n}}}|0[0-9]{{{n}}}"

    def normalize(self, raw: str) -> str | None:
        """`+254 712 345 678`, `0712345678`, `254712345678` -> `+254712345678` (E.164, as the
        providers take customer.phone); None if not a number of this country."""
        digits = "".join(ch for ch in raw if not ch.isspace() and ch not in "-().")
        digits = digits.removeprefix("+")
        if not digits.isdigit() or not digits.isascii():
            return None
        if digits.startswith("0") and len(digits) == self.national_digits + 1:
            digits = self.dial_code + digits[1:]
        if digits.startswith(self.dial_code) and len(digits) == len(self.dial_code) + self.national_digits:
            return "+" + digits
        return None


PHONES: Final[dict[str, PhoneFormat]] = {
    "KES": PhoneFormat("KE", "254", 9, "+254 712 345 678"),
    "UGX": PhoneFormat("UG", "256", 9, "+256 772 123 456"),
    "TZS": PhoneFormat("TZ", "255", 9, "+255 712 345 678"),
    "RWF": PhoneFormat("RW", "250", 9, "+250 788 123 456"),
    "GHS": PhoneFormat("GH", "233", 9, "+233 24 123 4567"),
    "ZMW": PhoneFormat("ZM", "260", 9, "+260 97 123 4567"),
    "XOF": PhoneFormat("SN", "221", 9, "+221 77 123 45 67"),
    "XAF": PhoneFormat("CM", "237", 9, "+237 6 71 23 45 67"),
}


def phone_format(currency: str) -> PhoneFormat | None:
    return PHONES.get(currency)
