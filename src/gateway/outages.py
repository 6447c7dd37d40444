"""Which exceptions mean PostgreSQL or Redis is away (a 503 with Retry-After, not a bug's 500).

The error boundary (api/boundary.py) asks `outage_of` about every exception a request raised.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
from redis import exceptions as redis_errors

# How long a client should wait before retrying while PostgreSQL or Redis is away: a restart or a
# failover takes seconds, and a sooner retry only adds to the load of the one coming back.
OUTAGE_RETRY_AFTER = "2"


def outage_of(exc: BaseException) -> str | None:
    """ "postgres" or "redis" when `exc` says that service is unreachable, restarting or refusing
    connections (a retry later can succeed), else None (a bug: a 500). Its explicit causes count
    too, and so does the context of asyncpg's InterfaceError: a connection that dies mid-transaction
    surfaces as that error from the rollback, with the broken connection as its context. Any other
    exception raised while handling an outage stays a bug."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if (service := _outage(seen)) is not None:
            return service
        interface = isinstance(seen, asyncpg.InterfaceError)
        seen = seen.__cause__ or (seen.__context__ if interface else None)
    return None


def _outage(exc: BaseException) -> str | None:
    """One exception, not its chain."""
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError | redis_errors.ReadOnlyError):
        return "redis"
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):
        return None  # a statement timeout or a cancel: our slow query, not PostgreSQL away
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError  # the connection broke or was refused (08xxx)
        | asyncpg.exceptions.OperatorInterventionError  # shutting down, starting up (57xxx)
        | asyncpg.exceptions.InsufficientResourcesError  # too many connections, disk full (53xxx)
        | asyncpg.exceptions.ReadOnlySQLTransactionError  # a failover left us on a replica
        | asyncpg.exceptions.ConnectionDoesNotExistError,
    ):
        return "postgres"
    if isinstance(exc, OSError | TimeoutError):  # connect refused or reset, pool or command timeout
        return "postgres" if _raised_in(exc, "/asyncpg/") else "redis" if _raised_in(exc, "/redis/") else None
    return None


def _raised_in(exc: BaseException, package: str) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if package in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False
