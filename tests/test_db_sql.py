"""positional(): `:name` parameters to asyncpg's `$n`, for the statements deferred to a commit."""

from __future__ import annotations

from gateway.db.database import positional


def test_names_become_numbers_in_order_of_first_use() -> None:
    sql, names = positional("UPDATE t SET a = :u0_a, b = :b WHERE id = :u0_id AND a <> :u0_a")
    assert sql == "UPDATE t SET a = $1, b = $2 WHERE id = $3 AND a <> $1"
    assert names == ("u0_a", "b", "u0_id")


def test_casts_are_not_parameters() -> None:
    sql, names = positional("SELECT CAST(:data AS text[]), :x::jsonb, 'a::b'")
    assert sql == "SELECT CAST($1 AS text[]), $2::jsonb, 'a::b'"
    assert names == ("data", "x")


def test_names_inside_quoted_literals_are_text() -> None:
    sql, names = positional("SELECT 1 WHERE a = 'x:y' AND b = :b AND c = 'it''s :c'")
    assert sql == "SELECT 1 WHERE a = 'x:y' AND b = $1 AND c = 'it''s :c'"
    assert names == ("b",)
