"""Upgrading a database whose invitation codes were stored as plain SHA-256 (before the site key), on SQLite and
PostgreSQL: the old hashes leave the database and those invitations are withdrawn (they must be issued again,
README "Invitations"); new invitations work."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import column, insert, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from community.clock import FakeClock
from community.db import create_engine, session_factory
from community.db_types import UTCDateTime
from community.errors import InvalidCode
from community.keys import SiteKey
from community.migrate import alembic_config, upgrade
from community.people import identify
from community.unit_of_work import UnitOfWorkFactory
from community.verification import RevokedCode, create_invitation, redeem_invitation
from tests.conftest import _create_pg_database, _drop_pg_database, _pg_base_url

KEYED = "0008"  # the migration that retires unkeyed hashes
OLD_CODE = "ABCDE23456"


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database of this test's own (the shared ones are already at head)."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
        yield engine
        await engine.dispose()
        return
    base = _pg_base_url()
    name = f"linli_mig_{uuid.uuid4().hex[:12]}"
    await _create_pg_database(base, name)
    engine = create_engine(make_url(base).set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        await engine.dispose()
        await _drop_pg_database(base, name)


async def test_invitations_hashed_without_the_key_are_withdrawn_by_the_upgrade(
    fresh_engine: AsyncEngine, clock: FakeClock
) -> None:
    before = ScriptDirectory.from_config(alembic_config()).get_revision(KEYED).down_revision
    assert isinstance(before, str)
    await upgrade(fresh_engine, before)
    when = datetime(2026, 3, 1, tzinfo=UTC)
    community = table(
        "community",
        column("name"),
        column("kind"),
        column("timezone"),
        column("default_language"),
        column("created_at", UTCDateTime()),
    )
    invitation = table(
        "invitation",
        column("community_id"),
        column("code_hash"),
        column("max_uses"),
        column("uses"),
        column("role"),
        column("created_at", UTCDateTime()),
    )
    async with fresh_engine.begin() as conn:
        await conn.execute(
            insert(community).values(
                name="康乐社区",
                kind="neighbourhood",
                timezone="Asia/Shanghai",
                default_language="zh_Hans",
                created_at=when,
            )
        )
        await conn.execute(
            insert(invitation).values(
                community_id=1,
                code_hash=hashlib.sha256(OLD_CODE.encode()).hexdigest(),
                max_uses=5,
                uses=0,
                role="resident",
                created_at=when,
            )
        )

    await upgrade(fresh_engine)

    async with fresh_engine.connect() as conn:
        (stored, revoked) = (await conn.execute(text("SELECT code_hash, revoked_at FROM invitation"))).one()
    assert stored == "unkeyed:1" and revoked is not None
    uows = UnitOfWorkFactory(session_factory(fresh_engine), clock, SiteKey.generate())
    async with uows() as uow:
        identity = await identify(uow, channel="console", external_id="w", chat_id="w", display_name="Wang")
        old = await redeem_invitation(uow, identity=identity, code=OLD_CODE)
        issued = await create_invitation(uow, actor_id=None, community_id=1)
        new = await redeem_invitation(uow, identity=identity, code=issued.code)
        await uow.commit()
    assert isinstance(old.refused, InvalidCode) and not isinstance(old.refused, RevokedCode)
    assert new.joined is not None
