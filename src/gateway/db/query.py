"""Building a query's WHERE clause with asyncpg's numbered parameters, and cursor pages."""

from __future__ import annotations

from typing import Any, TypeVar

from gateway.db.database import Queries, Record
from gateway.db.rows import RowSpec
from gateway.errors import InvalidCursor
from gateway.kit.pagination import Page

R = TypeVar("R")


class Where:
    """Conditions joined by AND; each `{}` in a condition becomes the next `$n`."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []
        self._owner = (0, 0)  # how many leading clauses (and their arguments) say whose rows these are

    def owned(self) -> Where:
        """Marks the conditions so far as the list's owner (merchant, mode): a page's cursor must
        name one of the owner's rows, whatever the other filters."""
        self._owner = (len(self.clauses), len(self.args))
        return self

    def owner(self) -> tuple[str, list[Any]]:
        """The owner's conditions, and the arguments they number from $1."""
        clauses, args = self._owner
        assert clauses, "a paged list says whose rows it lists (Where.owned())"
        return " AND ".join(self.clauses[:clauses]), self.args[:args]

    def add(self, condition: str, *values: Any) -> Where:
        marks = []
        for value in values:
            self.args.append(value)
            marks.append(f"${len(self.args)}")
        self.clauses.append(condition.format(*marks))
        return self

    def maybe(self, condition: str, value: Any) -> Where:
        """Adds the condition only when the value is given (a filter the caller may leave out)."""
        return self if value is None else self.add(condition, value)

    def created(self, gte: Any, lt: Any) -> Where:
        """The created-at range every list takes (`created_gte`, `created_lt`)."""
        return self.maybe("created_at >= {}", gte).maybe("created_at < {}", lt)

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"


async def paginate(q: Queries, spec: RowSpec[R], where: Where, page: Page) -> tuple[list[R], bool]:
    """Newest first. `starting_after` walks to older rows, `ending_before` to newer ones (Stripe's rules)."""
    records, has_more = await page_of(q, spec.table, spec.columns, where, page)
    return spec.many(records), has_more


async def page_of(
    q: Queries, table: str, columns: str, where: Where, page: Page
) -> tuple[list[Record], bool]:
    """`paginate`'s page as the database records of `columns` (a reader that renders them as they
    come builds no row objects)."""
    newer = page.ending_before is not None
    cursor = page.ending_before if newer else page.starting_after
    owner, owner_args = where.owner()
    if cursor is not None:
        # The cursor must name one of the owner's rows. A row found proves it, so only an empty page
        # costs a second statement. Unqualified columns in the subquery are its own row's.
        where.add("id > {}" if newer else "id < {}", cursor)
        mine = f"SELECT 1 FROM {table} WHERE id = ${len(where.args)} AND {owner}"  # noqa: S608
        where.clauses.append(f"EXISTS ({mine})")
    # The limit is written into the text (an int the API bounded to 1-100), not bound: PostgreSQL
    # prices a generic plan with an unknown LIMIT as if it returned a tenth of the table, and then
    # re-plans the statement on every execution (0.25 ms of planning for a 0.03 ms scan).
    sql = (
        f"SELECT {columns} FROM {table} WHERE {where.sql} "  # noqa: S608
        f"ORDER BY id {'ASC' if newer else 'DESC'} LIMIT {int(page.limit) + 1}"
    )
    records = await q.fetch(sql, *where.args)
    if not records and cursor is not None and not await _owns(q, table, owner, [*owner_args, cursor]):
        name = "ending_before" if newer else "starting_after"
        raise InvalidCursor(f"{name} is not an object of this list: no such id.", param=name)
    has_more = len(records) > page.limit
    if has_more:
        del records[page.limit :]
    if newer:
        records.reverse()
    return records, has_more


async def _owns(q: Queries, table: str, owner: str, args: list[Any]) -> bool:
    sql = f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id = ${len(args)} AND {owner})"  # noqa: S608
    return bool(await q.fetchval(sql, *args))


_CLAIM_DUE = """
UPDATE {table} SET
    reconcile_attempts = reconcile_attempts + 1,
    next_reconcile_at = now() + make_interval(
        secs => LEAST($2 * power(2, LEAST(reconcile_attempts, 30)), $3))
WHERE id IN (
    SELECT id FROM {table}
    WHERE status = ANY($4) AND next_reconcile_at <= now()
      AND (provider_lease_until IS NULL OR provider_lease_until < now())
    ORDER BY next_reconcile_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""


async def claim_due_for_reconcile(
    q: Queries, table: str, statuses: tuple[str, ...], *, limit: int, backoff: float, max_backoff: float
) -> list[str]:
    """Takes due unsettled rows of `table` (payments or refunds, which share these columns) and moves
    their next question into the future in one statement: with SKIP LOCKED, reconcilers running at
    once never ask about the same row in a round."""
    assert table in ("payments", "refunds")  # an identifier, never input
    sql = _CLAIM_DUE.format(table=table)
    return [r[0] for r in await q.fetch(sql, limit, backoff, max_backoff, list(statuses))]


_COUNT_DUE = """
SELECT count(*) FROM (
    SELECT 1 FROM {table} WHERE status = ANY($2) AND next_reconcile_at <= now() LIMIT $1
) due
"""


async def count_due_for_reconcile(q: Queries, table: str, statuses: tuple[str, ...], *, cap: int) -> int:
    """How many rows `claim_due_for_reconcile` would take if it took them all (up to `cap`: the
    metrics' reconciler backlog, read at every scrape, stays a bounded index scan)."""
    assert table in ("payments", "refunds")  # an identifier, never input
    count: int = await q.fetchval(_COUNT_DUE.format(table=table), cap, list(statuses))
    return count
