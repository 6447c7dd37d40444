"""positional(): one SQL text with :name parameters serves SQLAlchemy and asyncpg alike."""

from __future__ import annotations

from gateway.db.pg import positional


def test_names_become_numbers_in_order_of_first_use() -> None:
    sql, names = positional("UPDATE t SET a = :u0_a, b = :b WHERE id = :u0_id AND a <> :u0_a")
    assert sql == "UPDATE t SET a = $1, b = $2 WHERE id = $3 AND a <> $1"
    assert names == ("u0_a", "b", "u0_id")


def test_casts_are_not_parameters() -> None:
    sql, names = positional("SELECT CAST(:data AS text[]), :x::jsonb, 'a::b'")
    assert sql == "SELECT CAST($1 AS text[]), $2::jsonb, 'a::b'"
    assert names == ("data", "x")
