"""Alembic environment: runs migrations through the same async engine Linli uses."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

# Imported for their side effect: they register the tables on SQLModel.metadata.
import community.export_models
import community.models
import community.notice_models  # noqa: F401
import consultation.models  # noqa: F401
from community.db import create_engine
from community.scheduling import JOB_TABLE

config = context.config
target_metadata = SQLModel.metadata


def _include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    # The scheduler's job store creates and owns its table: autogenerate must not propose dropping it.
    return not (type_ == "table" and name == JOB_TABLE)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_async(config.get_main_option("sqlalchemy.url") or ""))


if context.is_offline_mode():
    raise SystemExit("Linli runs migrations online only: use `linli db upgrade`.")
run_migrations_online()
