"""The scheduled work of notices: community.notices.SEND (a scheduled notice's time has come: fan it out;
community.notices.publish schedules it) and "notice.digest" (a tick every minute: each community's digest of the
non-urgent notices held for its residents, once its digest time has come in its time zone, both per-community
settings: community.settings).

One tick for every community rather than a daily job per community: a community's time is then read when it is
used, so changing it (`linli community set-setting`), adding a community or a restart needs no job to be
scheduled again, and the tick after a downtime sends whatever came due meanwhile. What is due is a function of
the clock and the data alone (messages held before the community's latest digest time), so a tick that runs
twice, or late, sends each message once and in the digest of the day it was held for."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.notices.fanout import send_digests
from bot.rendering import Localizers
from community import notices
from community.notice_messages import fan_out
from community.notices import SEND, NoticeJob
from community.scheduling import JobArgs
from community.unit_of_work import UnitOfWorkFactory

if TYPE_CHECKING:
    from bot.app import App
    from bot.scheduling import JobRegistry

log = logging.getLogger(__name__)

DIGEST_JOB = "notice.digest"
DIGEST_KEY = "notice.digest"
DIGEST_TICK = timedelta(minutes=1)  # how late a digest may be after its community's time


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
            count = await fan_out(uow, notice)
            await uow.commit()
        log.info("notice %s: %s messages queued", notice_id, count)

    async def digest(self, args: JobArgs) -> None:
        async with self.uows() as uow:
            count = await send_digests(uow, self.localizers)
            await uow.commit()
        if count:
            log.info("daily digest: %s messages queued", count)


def register_jobs(registry: JobRegistry, app: App) -> None:
    """The notices' manifest's job registrar (bot.notices.manifest)."""
    register_notice_jobs(registry, app.uows, app.localizers)


def register_notice_jobs(registry: JobRegistry, uows: UnitOfWorkFactory, localizers: Localizers) -> None:
    """The two jobs and the digest tick."""
    jobs = NoticeJobs(uows, localizers)
    registry.register(SEND, jobs.send)
    registry.register(DIGEST_JOB, jobs.digest)
    registry.every(DIGEST_KEY, DIGEST_TICK, DIGEST_JOB)
