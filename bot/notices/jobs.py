"""The scheduled work of notices: "notice.send" (a scheduled notice's time has come: fan it out) and
"notice.digest" (every evening: one digest per recipient of the non-urgent notices held for them)."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_
from sqlmodel import col, select

from bot.notices.fanout import fan_out, send_digests
from bot.rendering import Localizers
from community import kernel_features, notices
from community.notice_models import Notice, NoticeStatus
from community.scheduling import JobArgs, Scheduler
from community.unit_of_work import UnitOfWorkFactory

if TYPE_CHECKING:
    from bot.app import App
    from bot.scheduling import JobRegistry

log = logging.getLogger(__name__)

SEND_JOB = "notice.send"
DIGEST_JOB = "notice.digest"
DIGEST_KEY = "notice.digest"
# The defaults of the settings notices declare (community.kernel_features); the app's values may differ.
DIGEST_TIME = kernel_features.DIGEST_TIME.default
DIGEST_TIMEZONE = kernel_features.DIGEST_TIMEZONE.default


def send_key(notice_id: int) -> str:
    return f"notice:{notice_id}:send"


async def schedule_send(scheduler: Scheduler, notice_id: int, when: datetime) -> None:
    await scheduler.at(send_key(notice_id), when, SEND_JOB, {"notice_id": notice_id})


async def schedule_digest(scheduler: Scheduler) -> None:
    """The daily digest job; scheduling it again (at every start) replaces it."""
    await scheduler.daily(DIGEST_KEY, DIGEST_TIME, DIGEST_TIMEZONE, DIGEST_JOB, {})


async def catch_up(uows: UnitOfWorkFactory, scheduler: Scheduler) -> int:
    """At start: make sure every notice waiting to go out has its job. Scheduling happens after the publishing
    transaction commits and a job is taken from the store before it runs, so a process that died at the wrong
    moment leaves a SCHEDULED notice without a job, or a SENDING one never fanned out. Scheduling again is
    harmless: the same key replaces the job, and the job itself does nothing for a notice already out."""
    async with uows() as uow:
        now = uow.clock.now()
        rows = (
            await uow.session.exec(
                select(Notice.id, Notice.send_at).where(
                    or_(
                        col(Notice.status) == NoticeStatus.SCHEDULED,
                        and_(col(Notice.status) == NoticeStatus.SENDING, col(Notice.queued_at).is_(None)),
                    )
                )
            )
        ).all()
    for notice_id, send_at in rows:
        assert notice_id is not None
        await schedule_send(scheduler, notice_id, send_at if send_at is not None and send_at > now else now)
    return len(rows)


class NoticeJobs:
    """What the two jobs do; the composition root registers ``send`` and ``digest`` under their names."""

    def __init__(self, uows: UnitOfWorkFactory, localizers: Localizers) -> None:
        self.uows = uows
        self.localizers = localizers

    async def send(self, args: JobArgs) -> None:
        notice_id = int(args["notice_id"])
        async with self.uows() as uow:
            notice = await notices.begin_sending(uow, notice_id)
            if notice is None:
                log.info("notice %s: nothing to send (cancelled, gone, or already sent)", notice_id)
                return
            if notice.queued_at is not None:
                log.info("notice %s was already fanned out; not again", notice_id)
                return
            count = await fan_out(uow, self.localizers, notice)
            await uow.commit()
        log.info("notice %s: %s messages queued", notice_id, count)

    async def digest(self, args: JobArgs) -> None:
        async with self.uows() as uow:
            count = await send_digests(uow, self.localizers)
            await uow.commit()
        log.info("daily digest: %s messages queued", count)


def register_jobs(registry: JobRegistry, app: App) -> None:
    """The notices' manifest's job registrar (bot.notices.manifest), with the digest time the app's settings say."""
    settings = app.features.settings
    register_notice_jobs(
        registry,
        app.uows,
        app.localizers,
        digest_at=settings[kernel_features.DIGEST_TIME],
        digest_timezone=settings[kernel_features.DIGEST_TIMEZONE],
    )


def register_notice_jobs(
    registry: JobRegistry,
    uows: UnitOfWorkFactory,
    localizers: Localizers,
    *,
    digest_at: time = DIGEST_TIME,
    digest_timezone: str = DIGEST_TIMEZONE,
) -> None:
    """The two jobs, the digest every evening, and the catch-up once the jobs' process has started."""
    jobs = NoticeJobs(uows, localizers)
    registry.register(SEND_JOB, jobs.send)
    registry.register(DIGEST_JOB, jobs.digest)
    registry.every_day(DIGEST_KEY, digest_at, digest_timezone, DIGEST_JOB)
    registry.on_start(functools.partial(catch_up, uows))
