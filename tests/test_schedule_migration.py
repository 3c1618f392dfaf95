"""Upgrading a database from before consequences were rows, on SQLite and PostgreSQL: what the hand-written
catch-ups at start used to act on becomes schedule rows, so the first start after the upgrade loses nothing. A
notice still waiting is sent at its time (one going out but never fanned out, at once); a consultation still to
open opens and closes on time, an open one closes; a closed one whose participants were not told gets its
outcome. Nothing else is asked for twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.scheduling import JobRegistry
from community.clock import FakeClock
from community.communities import add_community
from community.db import session_factory
from community.keys import SiteKey
from community.migrate import alembic_config, upgrade
from community.notice_models import Notice, NoticeStatus
from community.roles import CommunityKind
from community.unit_of_work import UnitOfWorkFactory
from consultation import reach
from consultation.models import Consultation, ConsultationStatus
from tests.support.fake_scheduler import FakeScheduler
from tests.test_invitation_hash_migration import fresh_engine  # noqa: F401 - the fixture

ROWS = "0009"  # the migration that makes consequences rows


async def test_the_upgrade_turns_what_the_catch_ups_did_into_schedule_rows(
    fresh_engine: AsyncEngine,  # noqa: F811 - the fixture
    clock: FakeClock,
) -> None:
    before = ScriptDirectory.from_config(alembic_config()).get_revision(ROWS).down_revision
    assert isinstance(before, str)
    await upgrade(fresh_engine, before)
    uows = UnitOfWorkFactory(session_factory(fresh_engine), clock, SiteKey.generate())
    now = clock.now()
    soon, later = now + timedelta(hours=2), now + timedelta(days=7)
    async with uows() as uow:
        community = await add_community(uow, name="康乐社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        notices = [
            Notice(community_id=community.id, body=f"通知 {status}", language="zh_Hans", status=status, created_at=now)
            for status in (NoticeStatus.SCHEDULED, NoticeStatus.SENDING, NoticeStatus.SENDING, NoticeStatus.SENT)
        ]
        notices[0].send_at = soon
        notices[2].queued_at = now  # fanned out: the sender has its messages
        consultations = [
            Consultation(
                community_id=community.id,
                title=f"议事 {status}",
                background="背景",
                language="zh_Hans",
                audience="{}",
                opens_at=soon,
                closes_at=later,
                status=status,
                created_at=now,
            )
            for status in (
                ConsultationStatus.SCHEDULED,
                ConsultationStatus.OPEN,
                ConsultationStatus.CLOSED,
                ConsultationStatus.CLOSED,
            )
        ]
        uow.session.add_all([*notices, *consultations])
        await uow.session.flush()
        await reach.mark_outcome_sent(uow, consultations[3], 0)  # told already
        await uow.commit()
    await upgrade(fresh_engine)

    scheduler = FakeScheduler(clock, JobRegistry(), uows)
    await scheduler.start()  # the first start after the upgrade: the relay replays the rows
    jobs = {key: (job.job, dict(job.args), job.when) for key, job in scheduler.jobs.items()}
    n1, n2 = (notice.id for notice in notices[:2])
    c1, c2, c3 = (consultation.id for consultation in consultations[:3])
    migrated_at = jobs[f"notice:{n2}:send"][2]
    assert abs(migrated_at - datetime.now(UTC)) < timedelta(minutes=5)  # the migration's own time: at once
    assert jobs == {
        f"notice:{n1}:send": ("notice.send", {"notice_id": n1}, soon),
        f"notice:{n2}:send": ("notice.send", {"notice_id": n2}, migrated_at),
        f"consultation:{c1}:open": ("consultation.open", {"consultation_id": c1}, soon),
        f"consultation:{c1}:close": ("consultation.close", {"consultation_id": c1}, later),
        f"consultation:{c2}:close": ("consultation.close", {"consultation_id": c2}, later),
        f"consultation:{c3}:outcome": ("consultation.outcome", {"consultation_id": c3}, migrated_at),
    }
