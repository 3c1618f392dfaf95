"""What the toy feature's Alembic revision would do: create its table (after the kernel's, which it refers to), and
drop it again (the test's PostgreSQL database is shared by the whole run, whose schema checks must not see it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.toy_feature.domain import METADATA


async def upgrade(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)


async def downgrade(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(METADATA.drop_all)
