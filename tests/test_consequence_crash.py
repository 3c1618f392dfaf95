"""Crash safety of consequences as rows, on PostgreSQL and on an SQLite file: the jobs' process is killed with
SIGKILL between a commit that scheduled and the hand-over of what it scheduled, twice, and after each restart
every scheduled transition runs once and every message is delivered once.

The jobs' process runs on its own (tests/support/jobs_process.py: build_app's scheduler, relay and delivery
engine, as `linli run` starts them) against the fake Bot API in this process. The story, in real time:

1. The first jobs' process runs. A worker creates a consultation here, in the test process, as
   `linli consultation create` does: its opening and closing are schedule rows of the creating transaction.
   The process's relay finds them at its next poll and the process dies before handing them over.
2. The second one starts: its relay replays the rows, the opening (missed meanwhile) runs and invites the six
   residents, whom the delivery engine tells. Three vote. At the closing time the close job commits the close,
   and with it the row asking for the outcome; the relay, woken by that commit, finds the row and the process
   dies before handing it over.
3. The third one starts, replays the rows, and the three participants get the outcome."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from community.clock import SystemClock
from community.communities import add_community, add_member, household
from community.db import session_factory
from community.keys import SiteKey
from community.models import AuditEntry, ScheduleRequest
from community.notice_models import DeliveryStatus, OutboxMessage
from community.people import identify
from community.roles import CommunityKind, Role
from community.scope import Scope
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import ConsultationDraft, VoteValue, create_consultation, vote
from consultation.models import Consultation, ConsultationStatus, Statement
from tests.support.fake_bot_api import FakeBotApi

ROOT = Path(__file__).resolve().parent.parent
RESIDENTS = tuple(9001 + n for n in range(6))
VOTERS = RESIDENTS[:3]
WORKER_CHAT = 9100
OPENS_IN = timedelta(seconds=1)
CLOSES_IN = timedelta(seconds=14)  # time for the second process to start, invite, and the residents to vote
TIMEOUT = 60.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


async def start_jobs(
    engine: AsyncEngine, fake: FakeBotApi, secret: str, crash_before: str | None = None
) -> asyncio.subprocess.Process:
    extra = ["--crash-before", crash_before] if crash_before else []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.jobs_process",
        engine.url.render_as_string(hide_password=False),
        fake.base_url,
        fake.token,
        secret,
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=TIMEOUT)
    assert line.strip() == b"ready", line
    return process


async def killed(process: asyncio.subprocess.Process) -> None:
    """Wait for the process to kill itself at its crash point."""
    try:
        code = await asyncio.wait_for(process.wait(), timeout=TIMEOUT)
    except TimeoutError:
        process.send_signal(signal.SIGKILL)
        await process.wait()
        raise
    assert code == -signal.SIGKILL


async def stopped(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=TIMEOUT) == 0  # a clean stop


async def until(check: object, what: str) -> None:
    """Poll an async predicate (the other process writes the database) until it holds."""
    assert callable(check)
    for _ in range(int(TIMEOUT / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def seed(uows: UnitOfWorkFactory) -> tuple[int, int]:
    """A community with a worker and six residents on Telegram: its id and the worker's."""
    async with uows() as uow:
        community = await add_community(uow, name="梧桐社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        people = {WORKER_CHAT: "李娜", **{chat: f"居民{chat}" for chat in RESIDENTS}}
        worker = 0
        for n, (chat, name) in enumerate(people.items()):
            me = await identify(uow, channel="telegram", external_id=str(chat), chat_id=str(chat), display_name=name)
            home = await household(uow, community.id, f"{n % 3 + 1}号楼 {n + 1}01")
            roles = {Role.COMMUNITY_WORKER} if chat == WORKER_CHAT else {Role.RESIDENT}
            await add_member(
                uow, person_id=me.person_id, community_id=community.id, roles=roles, household_id=home.id, reason="test"
            )
            if chat == WORKER_CHAT:
                worker = me.person_id
        await uow.commit()
    return community.id, worker


async def test_a_jobs_process_killed_before_its_hand_overs_runs_every_transition_once(
    engine: AsyncEngine, fake: FakeBotApi
) -> None:
    raw = secrets.token_bytes(32)
    secret = raw.hex()  # both processes key the audit chain and the pseudonyms alike
    uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.of(raw))
    community, worker = await seed(uows)

    first = await start_jobs(engine, fake, secret, crash_before="consultation.open")
    try:
        async with uows() as uow:
            now = uow.clock.now()
            draft = ConsultationDraft(
                community_id=community,
                title="东门空地改造",
                background="东门空地改建为停车位还是口袋公园？",
                language="zh_Hans",
                opens_at=now + OPENS_IN,
                closes_at=now + CLOSES_IN,
                audience=Scope(),
            )
            created = await create_consultation(uow, worker, draft, ("应改建为停车位。", "应改建为口袋公园。"))
            await uow.commit()
        await killed(first)
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
            await first.wait()
    cid = created.consultation.id
    assert cid is not None
    assert fake.sent == []

    second = await start_jobs(engine, fake, secret, crash_before="consultation.outcome")
    try:
        await fake.wait_for(lambda sent: {m.chat_id for m in sent} >= set(RESIDENTS), timeout=TIMEOUT)
        async with uows() as uow:
            first_statement = (
                await uow.session.exec(
                    select(Statement.id).where(Statement.consultation_id == cid).order_by(col(Statement.id))
                )
            ).first()
        assert first_statement is not None
        for chat in VOTERS:
            async with uows() as uow:
                voter = await identify(
                    uow, channel="telegram", external_id=str(chat), chat_id=str(chat), display_name=f"居民{chat}"
                )
                await vote(uow, voter.person_id, first_statement, VoteValue.AGREE)
                await uow.commit()

        async def closed() -> bool:
            async with uows() as uow:
                found = await uow.session.get(Consultation, cid)
            return found is not None and found.status is ConsultationStatus.CLOSED

        await until(closed, "the closing")
        await killed(second)
    finally:
        if second.returncode is None:
            second.send_signal(signal.SIGKILL)
            await second.wait()
    assert Counter(fake.sends_per_chat.values()) == {1: len(RESIDENTS)}  # the invitations, not yet the outcome

    third = await start_jobs(engine, fake, secret)
    try:
        await fake.wait_for(lambda sent: len(sent) >= len(RESIDENTS) + len(VOTERS), timeout=TIMEOUT)

        async def settled() -> bool:
            async with uows() as uow:
                rows = (await uow.session.exec(select(ScheduleRequest))).all()
                waiting = (
                    await uow.session.exec(
                        select(OutboxMessage).where(col(OutboxMessage.status) != DeliveryStatus.SENT)
                    )
                ).all()
            return not rows and not waiting

        await until(settled, "every job run and every message sent")
    finally:
        await stopped(third)

    async with uows() as uow:
        actions = Counter(
            (
                await uow.session.exec(
                    select(AuditEntry.action).where(
                        AuditEntry.subject_type == "consultation", AuditEntry.subject_id == cid
                    )
                )
            ).all()
        )
    assert (actions["consultation.opened"], actions["consultation.closed"], actions["consultation.outcome_sent"]) == (
        1,
        1,
        1,
    )
    assert fake.sends_per_chat == Counter({chat: 2 if chat in VOTERS else 1 for chat in RESIDENTS})
    assert fake.duplicate_count() == 0
