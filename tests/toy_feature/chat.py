"""The toy feature's bot side: /water, the daily clean-up job, its /privacy line, and its manifest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import TYPE_CHECKING

from bot.context import Context
from bot.events import Command
from bot.manifest import Manifest, MenuEntry
from bot.rendering import Localizer
from bot.replies import Reply, SendText
from bot.router import Router
from community.scheduling import JobArgs
from community.unit_of_work import UnitOfWorkFactory
from i18n import N_
from tests.toy_feature.domain import DAILY_LIMIT, FEATURE, KEEP_DAYS, WATER, Waterings, drop_old, water

if TYPE_CHECKING:
    from bot.app import App
    from bot.scheduling import JobRegistry

CLEAN_JOB = "toy.clean"
CLEAN_AT = time(3, 0)


async def water_plants(ctx: Context, _: Command) -> Sequence[Reply]:
    community_id = ctx.membership.community.id if ctx.membership is not None else None
    count = await water(ctx.uow, ctx.person_id, community_id, daily_limit=ctx.features.settings[DAILY_LIMIT])
    return (SendText(ctx.l.text("Thank you: the plants are watered (%(count)s today).", count=count)),)


def register(router: Router) -> None:
    router.command("water", water_plants, description=N_("Water the shared plants"), action=WATER)


def register_jobs(registry: JobRegistry, app: App) -> None:
    uows: UnitOfWorkFactory = app.uows
    keep_days = app.features.settings[KEEP_DAYS]

    async def clean(_: JobArgs) -> None:
        async with uows() as uow:
            await drop_old(uow, keep_days)
            await uow.commit()

    registry.register(CLEAN_JOB, clean)
    registry.every_day(CLEAN_JOB, CLEAN_AT, "Asia/Shanghai", CLEAN_JOB)


def privacy_line(l: Localizer, section: Waterings) -> str:  # noqa: E741 - the house name for a localizer
    return l.text("Times you watered the shared plants: %(count)s", count=section.count)


MANIFEST = Manifest(
    feature=FEATURE,
    handlers=(register,),
    menu=(MenuEntry("water", N_("Water the plants"), WATER, position=520),),
    jobs=(register_jobs,),
    privacy=privacy_line,
)
