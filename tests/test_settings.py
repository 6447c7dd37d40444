"""Settings: validated at start, and .env.example lists every one of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from gateway.settings import Settings


def test_plain_postgres_urls_get_the_asyncpg_driver() -> None:
    s = Settings(database_url="postgres://u:p@db:5432/gw", redis_url="redis://r:6379/0")
    assert s.database_url == "postgresql+asyncpg://u:p@db:5432/gw"
    assert Settings(database_url="postgresql://h/gw").database_url == "postgresql+asyncpg://h/gw"


@pytest.mark.parametrize(("field", "value"), [("database_url", "mysql://h/db"), ("redis_url", "http://r")])
def test_wrong_url_schemes_are_refused_with_the_setting_named(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as e:
        Settings.model_validate({field: value})
    assert field in str(e.value)


def test_env_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a/b")
    monkeypatch.setenv("GATEWAY_REDIS_URL", "redis://c:1/0")
    monkeypatch.setenv("GATEWAY_IDEMPOTENCY__TTL_SECONDS", "7200")
    s = Settings(_env_file=None)
    assert (s.database_url, s.redis_url, s.idempotency.ttl_seconds) == (
        "postgresql+asyncpg://a/b",
        "redis://c:1/0",
        7200,
    )


def _env_names(model: type[BaseModel], prefix: str) -> set[str]:
    """Every environment variable a settings model reads, nested groups (a provider's test and live
    members included) joined by a double underscore."""
    names = set()
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= _env_names(field.annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_env_example_lists_every_setting() -> None:
    expected = _env_names(Settings, "GATEWAY_")
    assert "GATEWAY_STRIPE__TEST__SECRET_KEY" in expected
    assert "GATEWAY_MOMO__LIVE__DISBURSEMENT_API_KEY" in expected
    example = (Path(__file__).parents[1] / ".env.example").read_text()
    listed = set(re.findall(r"^(GATEWAY_[A-Z0-9_]+)=", example, re.M))
    assert listed == expected


PROVIDERS = ["stripe", "paystack", "flutterwave", "wave", "mpesa", "momo", "razorpay"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_old_flat_per_mode_names_still_work(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every nested per-mode variable is also read under its old flat name (the upgrade note's rename)."""
    new_names = sorted(
        n for n in _env_names(Settings, "GATEWAY_") if n.startswith(f"GATEWAY_{provider.upper()}__")
    )
    per_mode = [n for n in new_names if "__TEST__" in n or "__LIVE__" in n]
    assert per_mode
    for new in per_mode:
        if new.endswith("TRANSACTION_TYPE"):
            continue  # a Literal: checked below
        old = new.replace("__TEST__", "__TEST_").replace("__LIVE__", "__LIVE_")
        monkeypatch.setenv(old, "12345")
    s = Settings(_env_file=None)
    group = getattr(s, provider)
    for new in per_mode:
        if new.endswith("TRANSACTION_TYPE"):
            continue
        mode, field = new.split("__")[-2:]
        value = getattr(getattr(group, mode.lower()), field.lower())
        assert (value.get_secret_value() if hasattr(value, "get_secret_value") else value) == "12345", new


def test_a_nested_name_wins_over_its_old_flat_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_STRIPE__TEST_SECRET_KEY", "sk_test_old")
    monkeypatch.setenv("GATEWAY_STRIPE__TEST__SECRET_KEY", "sk_test_new")
    monkeypatch.setenv("GATEWAY_STRIPE__LIVE_WEBHOOK_SECRET", "whsec_live")
    monkeypatch.setenv("GATEWAY_MPESA__LIVE_TRANSACTION_TYPE", "CustomerBuyGoodsOnline")
    s = Settings(_env_file=None)
    assert s.stripe.test.secret_key is not None
    assert s.stripe.test.secret_key.get_secret_value() == "sk_test_new"
    assert s.stripe.live.webhook_secret is not None
    assert s.stripe.live.webhook_secret.get_secret_value() == "whsec_live"
    assert s.mpesa.live.transaction_type == "CustomerBuyGoodsOnline"
    # Per-mode defaults survive a partial configuration of that mode.
    assert s.mpesa.test.base_url == "https://sandbox.safaricom.co.ke"
    assert s.mpesa.live.base_url == "https://api.safaricom.co.ke"


def test_a_providers_accounts_hold_each_modes_credentials() -> None:
    s = Settings(
        _env_file=None, stripe={"test_secret_key": " sk_test_1 ", "live": {"webhook_secret": "whsec_2"}}
    )
    accounts = s.stripe.accounts()
    assert accounts.test is not None
    assert accounts.test.secret_key == "sk_test_1"
    assert accounts.live is not None
    assert (accounts.live.secret_key, accounts.live.webhook_secret) == (
        None,
        "whsec_2",
    )
    assert "sk_test_1" not in repr(accounts)
