"""Routing rules: replace and read a merchant's ordered list, and match a payment against it.

A rule holds for a payment when each condition it sets holds (an unset one holds for every payment):
the currency, the country of the customer's phone number, the payment method type the payment names
and the amount's inclusive range. The providers of the rules that hold, in order and each once, are
the payment's route: the first takes it, the next ones are its fallbacks (payments/routed.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import phonenumbers

from gateway.db.database import Database
from gateway.errors import CurrencyNotSupported, ProviderNotConfigured, ProviderUnknown
from gateway.provider_accounts.directory import Providers
from gateway.providers.accounts import mode_name
from gateway.providers.catalog import ACCOUNT_PROVIDERS
from gateway.routing_rules import repository
from gateway.routing_rules.models import RoutingRule

# What a payment names to be routed: not a provider, so no provider may be called so.
AUTO = "auto"
MAX_RULES = 50


@dataclass(frozen=True)
class Draft:
    """One rule as a PUT gives it (the router has checked each field's form)."""

    provider: str
    currency: str | None = None
    phone_country: str | None = None
    payment_method_type: str | None = None
    amount_min: int | None = None
    amount_max: int | None = None


def phone_country(phone: str | None) -> str | None:
    """The ISO 3166-1 alpha-2 country of an E.164 number (as payments store it), by its calling
    code and prefix; None without a number or for a non-geographic one."""
    if not phone:
        return None
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "001" else None


def holds(
    rule: RoutingRule, *, amount: int, currency: str, country: str | None, method_type: str | None
) -> bool:
    return (
        (rule.currency is None or rule.currency == currency)
        and (rule.phone_country is None or rule.phone_country == country)
        and (rule.payment_method_type is None or rule.payment_method_type == method_type)
        and (rule.amount_min is None or amount >= rule.amount_min)
        and (rule.amount_max is None or amount <= rule.amount_max)
    )


def route(
    rules: list[RoutingRule], *, amount: int, currency: str, phone: str | None, method_type: str | None
) -> list[str]:
    """The providers of the rules that hold for this payment, in the rules' order, each once."""
    country = phone_country(phone)
    found: list[str] = []
    for rule in rules:
        if rule.provider not in found and holds(
            rule, amount=amount, currency=currency, country=country, method_type=method_type
        ):
            found.append(rule.provider)
    return found


async def rules_of(db: Database, merchant_id: str, livemode: bool) -> list[RoutingRule]:
    return await repository.list_rules(db, merchant_id, livemode)


async def replace(
    db: Database, registry: Providers, *, merchant_id: str, livemode: bool, drafts: list[Draft]
) -> list[RoutingRule]:
    """Checks every rule's provider against this merchant and mode, then replaces the whole list in
    one transaction: a refused list changes nothing."""
    for i, draft in enumerate(drafts):
        await _check(registry, merchant_id, livemode, i, draft)
    now = datetime.now(UTC)
    rows = [
        RoutingRule(
            merchant_id=merchant_id,
            livemode=livemode,
            position=i + 1,
            provider=d.provider,
            currency=d.currency,
            phone_country=d.phone_country,
            payment_method_type=d.payment_method_type,
            amount_min=d.amount_min,
            amount_max=d.amount_max,
            created_at=now,
        )
        for i, d in enumerate(drafts)
    ]
    async with db.transaction() as tx:
        await repository.replace(tx, merchant_id, livemode, rows)
    return rows


async def _check(registry: Providers, merchant_id: str, livemode: bool, i: int, draft: Draft) -> None:
    name = draft.provider
    provider = registry.get(name) if name != AUTO else None
    if provider is None:
        raise ProviderUnknown(
            f"Rule {i}: no provider named {name!r}. Available: {', '.join(registry.names())}.",
            param=f"rules[{i}].provider",
        )
    account_id = (
        await registry.active_account(merchant_id, name, livemode) if name in ACCOUNT_PROVIDERS else None
    )
    if not registry.configured(name, livemode, account_id):
        raise ProviderNotConfigured(
            f"Rule {i}: {name} is not configured for you in {mode_name(livemode)} mode.",
            param=f"rules[{i}].provider",
        )
    if draft.currency is not None and draft.currency not in provider.capabilities.currencies:
        raise CurrencyNotSupported(
            f"Rule {i}: {name} does not take {draft.currency}.",
            param=f"rules[{i}].currency",
            supported=sorted(provider.capabilities.currencies),
        )
