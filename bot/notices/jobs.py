"""The scheduled work of notices: community.notices.SEND (a scheduled notice's time has come: fan it out;
community.notices.publish schedules it) and "notice.digest" (every evening: one digest per recipient of the
non-urgent notices held for them)."""

from __future__ import annotations

import logging
from datetime import time
from typing import TYPE_CHECKING

from bot.notices.fanout import fan_out, send_digests
from bot.rendering import Localizers
from community import notices
from community.notices import SEND, NoticeJob
from community.scheduling import JobArgs
from community.unit_of_work import UnitOfWorkFactory

if TYPE_CHECKING:
    from bot.app import App
    from bot.scheduling import JobRegistry

log = logging.getLogger(__name__)

DIGEST_JOB = "notice.digest"
DIGEST_KEY = "notice.digest"
DIGEST_TIME = time(19, 0)
DIGEST_TIMEZONE = "Asia/Shanghai"


class NoticeJobs:
    """What the two jobs do; the composition root registers ``send`` and ``digest`` under their names."""

    def __init__(self, uows: UnitOfWorkFactory, localizers: Localizers) -> None:
        self.uows = uows
        self.localizers = localizers

    async def send(self, job: NoticeJob) -> None:
        notice_id = job.notice_id
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
    """The composition root's hook (bot.app.JOB_REGISTRARS)."""
    register_notice_jobs(registry, app.uows, app.localizers)


def register_notice_jobs(registry: JobRegistry, uows: UnitOfWorkFactory, localizers: Localizers) -> None:
    """The two jobs and the digest every evening."""
    jobs = NoticeJobs(uows, localizers)
    registry.register(SEND, jobs.send)
    registry.register(DIGEST_JOB, jobs.digest)
    registry.every_day(DIGEST_KEY, DIGEST_TIME, DIGEST_TIMEZONE, DIGEST_JOB)
