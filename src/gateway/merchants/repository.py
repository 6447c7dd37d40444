from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.merchants.models import ApiKey, Merchant


class MerchantRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def create(self, merchant_id: str, name: str) -> None:
        await self.session.execute(insert(Merchant).values(id=merchant_id, name=name))

    async def get(self, merchant_id: str) -> Merchant | None:
        return await self.session.get(Merchant, merchant_id)

    async def add_key(
        self, key_id: str, merchant_id: str, key_hash: str, prefix: str, livemode: bool
    ) -> None:
        await self.session.execute(
            insert(ApiKey).values(
                id=key_id, merchant_id=merchant_id, key_hash=key_hash, prefix=prefix, livemode=livemode
            )
        )

    async def find_active_key(self, key_hash: str) -> tuple[str, str, bool] | None:
        """(key id, merchant id, livemode) of an unrevoked key."""
        stmt = select(ApiKey.id, ApiKey.merchant_id, ApiKey.livemode).where(
            ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)
        )
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1], row[2]) if row else None
