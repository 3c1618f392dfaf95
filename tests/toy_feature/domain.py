"""The toy feature's domain side: a resident records that they watered the shared plants, at most
``DAILY_LIMIT`` times a day; waterings older than ``KEEP_DAYS`` are dropped by a daily job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, delete, func, insert, select
from sqlmodel import SQLModel

import community.models  # noqa: F401 - registers the kernel's tables
from community.communities import effective_roles
from community.db_types import UTCDateTime
from community.errors import LinliError, NotAMember
from community.features import Feature, FeatureAction, Setting
from community.permissions import require
from community.roles import Role
from community.unit_of_work import UnitOfWork
from i18n import N_

# The kernel's tables it refers to (registered on SQLModel's metadata by importing community.models).
PERSON = SQLModel.metadata.tables["person"]
COMMUNITY = SQLModel.metadata.tables["community"]
# Its own metadata: the kernel's tables know nothing of it (its migration creates the table).
METADATA = MetaData()
WATERING = Table(
    "toy_watering",
    METADATA,
    Column("id", Integer, primary_key=True),
    # No ON DELETE: a person erased without the provider's erase would fail loudly at the foreign key.
    Column("person_id", Integer, ForeignKey(PERSON.c.id), nullable=False, index=True),
    Column("community_id", Integer, ForeignKey(COMMUNITY.c.id), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

WATER = FeatureAction("toy.water", frozenset({Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE}))
DAILY_LIMIT: Setting[int] = Setting("toy.daily_limit", 2, N_("How often a day one resident may water the plants"))
KEEP_DAYS: Setting[int] = Setting("toy.keep_days", 30, N_("How many days a watering is remembered"))


class WateredEnough(LinliError):
    message = N_("You have watered the plants as often as a day allows (%(limit)s).")


async def water(uow: UnitOfWork, person_id: int, community_id: int | None, *, daily_limit: int) -> int:
    """Record a watering; how many the person has made today (the last day), this one included."""
    if community_id is None:
        raise NotAMember()
    require(await effective_roles(uow, person_id, community_id), WATER)
    now = uow.clock.now()
    connection = await uow.session.connection()
    today = (
        await connection.execute(
            select(func.count())
            .select_from(WATERING)
            .where(WATERING.c.person_id == person_id, WATERING.c.at > now - timedelta(days=1))
        )
    ).scalar_one()
    if today >= daily_limit:
        raise WateredEnough(limit=daily_limit)
    await connection.execute(insert(WATERING).values(person_id=person_id, community_id=community_id, at=now))
    return int(today) + 1


async def drop_old(uow: UnitOfWork, keep_days: int) -> int:
    connection = await uow.session.connection()
    result = await connection.execute(
        delete(WATERING).where(WATERING.c.at < uow.clock.now() - timedelta(days=keep_days))
    )
    return int(result.rowcount)


@dataclass(frozen=True, slots=True)
class Waterings:
    count: int

    def as_json(self) -> dict[str, Any]:
        return {"waterings": self.count}


class ToyProvider:
    key = "toy"

    async def collect(self, uow: UnitOfWork, person_id: int) -> Waterings | None:
        connection = await uow.session.connection()
        count = (
            await connection.execute(
                select(func.count()).select_from(WATERING).where(WATERING.c.person_id == person_id)
            )
        ).scalar_one()
        return Waterings(int(count)) if count else None

    async def erase(self, uow: UnitOfWork, person_id: int) -> None:
        connection = await uow.session.connection()
        await connection.execute(delete(WATERING).where(WATERING.c.person_id == person_id))


FEATURE = Feature(name="toy", actions=(WATER,), settings=(DAILY_LIMIT, KEEP_DAYS), personal_data=ToyProvider())
