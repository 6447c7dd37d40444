"""Every query of routing_rules."""

from __future__ import annotations

from gateway.db.database import Queries, Tx
from gateway.routing_rules.models import ROUTING_RULES, RoutingRule

_COLS = ROUTING_RULES.columns
_LIST = (
    f"SELECT {_COLS} FROM routing_rules "  # noqa: S608
    "WHERE merchant_id = $1 AND livemode = $2 ORDER BY position"
)
# Two PUTs of one merchant take turns on its merchants row, so the second deletes what the first
# inserted (a delete alone would not see rows committed after it started). NO KEY UPDATE: payments'
# foreign-key checks (KEY SHARE) on the row are not held up.
_TAKE_TURNS = "SELECT 1 FROM merchants WHERE id = $1 FOR NO KEY UPDATE"
_DELETE = "DELETE FROM routing_rules WHERE merchant_id = $1 AND livemode = $2"
_INSERT = ROUTING_RULES.insert_sql()


async def list_rules(q: Queries, merchant_id: str, livemode: bool) -> list[RoutingRule]:
    return ROUTING_RULES.many(await q.fetch(_LIST, merchant_id, livemode))


async def replace(tx: Tx, merchant_id: str, livemode: bool, rules: list[RoutingRule]) -> None:
    """The merchant's rules in this mode become `rules`, at the transaction's commit."""
    await tx.fetchval(_TAKE_TURNS, merchant_id)
    await tx.execute(_DELETE, merchant_id, livemode)
    for rule in rules:
        await tx.execute(_INSERT, *ROUTING_RULES.values(rule))
