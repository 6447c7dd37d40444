"""The async engine and session factory; sessions are opened per request or per background job."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from gateway.settings import DatabaseSettings


def make_engine(url: str, settings: DatabaseSettings) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_pre_ping=False,
        echo=settings.echo,
        # Every statement names its columns, so asyncpg's prepared-statement cache stays small and hot.
        connect_args={"server_settings": {"application_name": "gateway"}},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # A Session class of this app's own, so commit hooks (event publishing) never leak across apps.
    session_class = type("GatewaySession", (Session,), {})
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=session_class
    )
