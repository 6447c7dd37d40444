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


def test_env_example_lists_every_setting() -> None:
    expected = set()
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            expected |= {f"GATEWAY_{name.upper()}__{sub.upper()}" for sub in field.annotation.model_fields}
        else:
            expected.add(f"GATEWAY_{name.upper()}")
    example = (Path(__file__).parents[1] / ".env.example").read_text()
    listed = set(re.findall(r"^(GATEWAY_[A-Z0-9_]+)=", example, re.M))
    assert listed == expected
