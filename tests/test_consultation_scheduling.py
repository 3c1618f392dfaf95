"""Consultations on time, in the console channel with the demo's people and a fake clock, on both databases: a
community worker composes a consultation in chat, which schedules its opening and closing; at the opening the
eligible residents in its scope (only they) are invited, each in their language with a Take part button, and the
real Sender delivers the invitations through the console transport; at the closing every participant (only
they) gets the outcome; a restart after missed times catches up once; a consultation closed early by a person
gets its outcome once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.channels.console import ConsoleSession
from bot.consultations.buttons import OpenConsultation
from bot.consultations.jobs import register_consultation_jobs, send_outcome
from bot.notices.jobs import register_notice_jobs
from bot.rendering import Localizer, Localizers
from bot.scheduling import JobRegistry
from bot.worker import Worker
from community import settings
from community.anonymity import Anonymity
from community.clock import FakeClock
from community.demo import seed_demo
from community.models import AuditEntry, Community
from community.notice_models import MessageKind, OutboxMessage
from community.outbox import buttons_from_json
from community.unit_of_work import UnitOfWorkFactory
from consultation import consultations
from consultation.consultations import VoteValue
from consultation.models import Consultation, ConsultationStatus, Statement
from consultation.settings import CLOSING_DAYS
from tests.support.console import ConsoleDelivery, scheduled_session
from tests.support.console import script as _script
from tests.support.console import tap as _tap
from tests.support.demo_people import CHEN, COMMITTEE, LIU, WANG, WORKER, ZHAO
from tests.support.fake_scheduler import FakeScheduler
from tests.support.outbox import outbox_rows as _rows

COMMUNITY = "梧桐社区"
PEOPLE = (WORKER, WANG, LIU, CHEN, COMMITTEE, ZHAO)

TITLE = "Parking or a pocket park at the east gate?"
BACKGROUND = "The empty lot by the east gate can become 20 parking spaces or a small park with benches."
SEEDS = ("The lot should become parking spaces.", "The lot should become a pocket park.", "Keep the trees.")
OPENS = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 2026-03-02 09:00 in Shanghai
CLOSES = OPENS + timedelta(days=7)


@pytest.fixture
def anonymity() -> Anonymity:
    """Most consultations here are for 3号楼 and 7号楼, three residents, fewer than the default k = 5: these are
    transcripts of opening, closing and the outcome, so k = 2 lets them be created (test_consultation_anonymity
    holds k itself)."""
    return Anonymity(min_group_size=2)


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture
def registry(uows: UnitOfWorkFactory, localizers: Localizers) -> JobRegistry:
    registry = JobRegistry()
    register_notice_jobs(registry, uows, localizers)  # as bot.app registers them, every feature's
    register_consultation_jobs(registry, uows, Worker(processes=False))
    return registry


@pytest.fixture
def scheduler(clock: FakeClock, registry: JobRegistry, uows: UnitOfWorkFactory) -> FakeScheduler:
    return FakeScheduler(clock, registry, uows)


@pytest.fixture
def session(
    demo: None, uows: UnitOfWorkFactory, localizers: Localizers, scheduler: FakeScheduler, tmp_path: Path
) -> ConsoleSession:
    return scheduled_session(uows, localizers, PEOPLE, tmp_path / "files")


@pytest.fixture
def deliver(uows: UnitOfWorkFactory, session: ConsoleSession) -> ConsoleDelivery:
    """Run the delivery engine's real Sender until the outbox has nothing due; what the terminal printed."""
    return ConsoleDelivery(uows, session)


# --- helpers ----------------------------------------------------------------------------------------------------


async def _compose(session: ConsoleSession, *, opens: str | None = "2026-03-02 09:00") -> list[str]:
    """The worker sets up a consultation for 3号楼 and 7号楼 with three statements, up to the Create button."""
    out = await _script(session, "/as worker", "/newconsultation")
    assert out[0] == f"New consultation in {COMMUNITY}"
    out = await session.feed(TITLE)
    assert out[0] == "The background"
    out = await session.feed(BACKGROUND)
    assert out[0] == "Who is the consultation for?"
    out = await _tap(session, out, "Buildings ›", "3号楼", "7号楼", "‹ Back", "Next ›")
    if opens is not None:
        out = await _tap(session, out, "Open later…")
        out = await session.feed(opens)
    out = await _tap(session, out, "Add statements")
    for seed in SEEDS:
        out = await session.feed(seed)
    out = await _tap(session, out, "Done", "Preview ›")
    return out


async def _consultation(uows: UnitOfWorkFactory, consultation_id: int = 1) -> Consultation:
    async with uows() as uow:
        found = await uow.session.get(Consultation, consultation_id)
    assert found is not None
    return found


async def _statement_ids(uows: UnitOfWorkFactory, consultation_id: int = 1) -> list[int]:
    async with uows() as uow:
        rows = (
            await uow.session.exec(
                select(Statement.id).where(Statement.consultation_id == consultation_id).order_by(col(Statement.id))
            )
        ).all()
    return [sid for sid in rows if sid is not None]


async def _person(session: ConsoleSession, uows: UnitOfWorkFactory, key: str) -> int:
    async with uows() as uow:
        found = (await seed_demo(uow)).by_key(key)
    return found.person_id


async def _votes(uows: UnitOfWorkFactory, session: ConsoleSession, *voters: str) -> None:
    """Each of these people agrees with the first statement and disagrees with the second."""
    first, second, *_ = await _statement_ids(uows)
    for key in voters:
        person = await _person(session, uows, key)
        async with uows() as uow:
            await consultations.vote(uow, person, first, VoteValue.AGREE)
            await consultations.vote(uow, person, second, VoteValue.DISAGREE)
            await uow.commit()


def _take_part(row: OutboxMessage) -> list[str | None]:
    return [button.data for line in buttons_from_json(row.buttons) for button in line]


async def _outcomes_sent(uows: UnitOfWorkFactory) -> int:
    async with uows() as uow:
        rows = (
            await uow.session.exec(select(AuditEntry).where(AuditEntry.action == "consultation.outcome_sent"))
        ).all()
    return len(rows)


# --- composing, opening, closing ------------------------------------------------------------------------------


async def test_a_consultation_composed_in_chat_opens_and_closes_on_time(
    session: ConsoleSession,
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    scheduler: FakeScheduler,
    deliver: Callable[[], Awaitable[list[str]]],
    zh: Localizer,
) -> None:
    assert clock.now() == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
    out = await _compose(session)
    # The preview is the invitation as residents will get it, then what was chosen and how many it reaches.
    assert out[1:3] == [
        "Preview: this is the invitation exactly as residents will receive it.",
        f"🗳 {COMMUNITY} · Consultation",
    ]
    assert TITLE in out and BACKGROUND in out and "Open until Mar 9, 2026, 9:00\u202fAM." in out
    assert "  [1] 🗳 Take part" in out
    assert "For: 3号楼 or 7号楼 · Residents" in out and "3 people would be invited now." in out
    assert "Opens: Mar 2, 2026, 9:00\u202fAM" in out and "Closes: 7 days after it opens" in out
    assert [f"{i}. {seed}" for i, seed in enumerate(SEEDS, start=1)] == [
        line for line in out if line[:3] in ("1. ", "2. ", "3. ")
    ]
    out = await _tap(session, out, "Create")
    assert out[1] == "Consultation #1 is scheduled."

    # Created with its seeds, and its two jobs scheduled; nobody invited yet.
    consultation = await _consultation(uows)
    assert consultation.status is ConsultationStatus.SCHEDULED
    assert (consultation.opens_at, consultation.closes_at) == (OPENS, CLOSES)
    assert len(await _statement_ids(uows)) == 3
    assert await scheduler.next_run("consultation:1:open") == OPENS
    assert await scheduler.next_run("consultation:1:close") == CLOSES
    clock.set(OPENS - timedelta(minutes=1))
    await scheduler.run_due()
    assert await _rows(uows) == []

    # At the opening: the eligible residents of 3号楼 and 7号楼 only, each in their language, with the button.
    clock.set(OPENS)
    await scheduler.run_due()
    assert (await _consultation(uows)).status is ConsultationStatus.OPEN
    rows = await _rows(uows)
    assert [row.chat_id for row in rows] == ["wang", "liu", "chen"]  # not 张伟 (12号楼), the worker, nor 赵大山
    assert {row.chat_id: _take_part(row) for row in rows} == {
        key: [OpenConsultation(1).pack()] for key in ("wang", "liu", "chen")
    }
    assert zh.text("Consultation") in rows[0].text and "Consultation" in rows[2].text

    # The real Sender delivers them through the console transport.
    shown = await deliver()
    assert shown[:3] == ["→ a message was sent to 王芳", "→ a message was sent to 刘洋", "→ a message was sent to 陈晓"]
    out = await session.feed("/as chen")
    assert out[1] == f"🗳 {COMMUNITY} · Consultation" and "  [1] 🗳 Take part" in out
    out = await session.feed("/as wang")
    assert out[1] == f"🗳 {COMMUNITY} · {zh.label('Consultation')}"
    assert await session.feed("/as committee") == ["— you are now 张伟 (committee) —"]

    # 王芳 and 陈晓 take part; 刘洋 does not.
    await _votes(uows, session, "wang", "chen")
    invitations = len(await _rows(uows))

    # At the closing: every participant gets the outcome, nobody else.
    clock.set(CLOSES)
    await scheduler.run_due()
    assert (await _consultation(uows)).status is ConsultationStatus.CLOSED
    outcome = (await _rows(uows))[invitations:]
    assert [row.chat_id for row in outcome] == ["wang", "chen"]
    await deliver()
    out = await session.feed("/as chen")
    assert out[1] == f"🗳 {COMMUNITY} · Consultation closed"
    assert "2 people took part." in out and "2 of them cast 4 votes." in out
    assert "The committee receives the full outcome. Thank you for taking part." in out
    out = await session.feed("/as wang")
    assert out[1] == f"🗳 {COMMUNITY} · {zh.label('Consultation closed')}"
    out = await session.feed("/as liu")  # only the invitation waits for 刘洋, who did not take part
    assert out[1] == f"🗳 {COMMUNITY} · {zh.label('Consultation')}"
    assert not any(zh.label("Consultation closed") in line for line in out)

    # The jobs running again (a restart that finds them) send nothing twice.
    await scheduler.at("consultation:1:open", clock.now(), "consultation.open", {"consultation_id": 1})
    await scheduler.at("consultation:1:close", clock.now(), "consultation.close", {"consultation_id": 1})
    await scheduler.run_due()
    assert len(await _rows(uows)) == invitations + 2
    assert await _outcomes_sent(uows) == 1


async def test_opening_now_invites_at_once_and_bad_answers_leave_the_question_standing(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, scheduler: FakeScheduler
) -> None:
    out = await _script(session, "/as worker", "/newconsultation")
    out = await session.feed("x" * 201)
    assert out == ["A title needs 1 to 200 characters."]
    out = await session.feed(TITLE)
    assert out[0] == "The background"
    out = await session.feed(BACKGROUND)
    out = await _tap(session, out, "Next ›", "Close at…")
    assert out[1] == "When should the consultation close?"
    assert await session.feed("next week") == [
        "Please write the time as YYYY-MM-DD HH:MM, for example 2026-03-02 09:00."
    ]
    assert await session.feed("2026-03-01 16:00") == ["The closing time must be after the opening time."]
    out = await session.feed("2026-03-04 18:00")
    assert "Closes: Mar 4, 2026, 6:00\u202fPM" in out
    out = await _tap(session, out, "Add statements")
    out = await session.feed("x" * 281)
    assert out[0] == "A statement can be at most 280 characters long; this one has 281."
    out = await _tap(session, out, "Done", "Household representatives", "Preview ›")
    assert "For: the whole community · Household representatives" in out
    assert "5 people would be invited now." in out  # 张伟, 王芳, 陈晓, 郑丽, 黄建华: not 刘洋 nor 吴强
    assert "No statements yet: add a few for residents to vote on from the start." in out
    out = await _tap(session, out, "Create")
    assert out[1:3] == ["Consultation #1 is open.", "The invitation is going out to 5 people."]
    assert [row.chat_id for row in await _rows(uows)] == ["committee", "wang", "chen", "zheng", "huang"]
    assert (await _consultation(uows)).status is ConsultationStatus.OPEN
    assert await scheduler.next_run("consultation:1:close") == datetime(2026, 3, 4, 10, 0, tzinfo=UTC)

    # The open job still comes by, and finds it open: nobody is invited twice.
    await scheduler.run_due()
    assert len(await _rows(uows)) == 5


async def test_residents_cannot_start_a_consultation_and_cancel_writes_nothing(
    session: ConsoleSession, uows: UnitOfWorkFactory, zh: Localizer
) -> None:
    out = await _script(session, "/as wang", "/newconsultation")
    assert out == [zh.text("Your role in this community does not allow that.")]
    out = await _script(session, "/as wang", "/menu")
    assert not any("New consultation" in line for line in out)
    out = await _script(session, "/as worker", "/newconsultation", TITLE, BACKGROUND)
    out = await _tap(session, out, "Cancel")
    assert out[1] == "Cancelled. Nothing was created."
    async with uows() as uow:
        assert (await uow.session.exec(select(Consultation))).all() == []


# --- catching up, and an early close ----------------------------------------------------------------------------


async def test_a_restart_after_missed_times_opens_and_closes_once(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, scheduler: FakeScheduler, zh: Localizer
) -> None:
    await _tap(session, await _compose(session), "Create")
    await _tap(session, await _compose(session, opens="2026-03-05 09:00"), "Create")
    second_opens = datetime(2026, 3, 5, 1, 0, tzinfo=UTC)
    # The process was down, and the jobs are gone (say the job store was restored from an older backup).
    scheduler.jobs.clear()

    # It comes back after the first one's opening: the start replays the schedule rows, the missed opening runs
    # (as APScheduler runs missed jobs at start) and invites, once, and the jobs of both are there again.
    clock.set(OPENS + timedelta(hours=1))
    await scheduler.start()
    await scheduler.run_due()
    assert (await _consultation(uows, 1)).status is ConsultationStatus.OPEN
    assert (await _consultation(uows, 2)).status is ConsultationStatus.SCHEDULED
    assert [row.chat_id for row in await _rows(uows)] == ["wang", "liu", "chen"]
    assert await scheduler.next_run("consultation:1:close") == CLOSES
    assert await scheduler.next_run("consultation:2:open") == second_opens
    await scheduler.start()  # a second start invites nobody again
    await scheduler.run_due()
    assert len(await _rows(uows)) == 3

    await _votes(uows, session, "liu")
    scheduler.jobs.clear()
    # Down again, past the first one's closing and the second one's opening: the start closes the first and
    # tells its participant the outcome, opens the second and invites to it, each once.
    clock.set(CLOSES + timedelta(days=1))
    await scheduler.start()
    await scheduler.start()
    await scheduler.run_due()
    assert (await _consultation(uows, 1)).status is ConsultationStatus.CLOSED
    assert (await _consultation(uows, 2)).status is ConsultationStatus.OPEN
    later = (await _rows(uows))[3:]
    closed = zh.label("Consultation closed")
    assert [row.chat_id for row in later if closed in row.text] == ["liu"]
    assert [row.chat_id for row in later if closed not in row.text] == ["wang", "liu", "chen"]
    assert await _outcomes_sent(uows) == 1


async def test_a_consultation_closed_early_gets_its_outcome_once(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, scheduler: FakeScheduler, localizers: Localizers
) -> None:
    await _tap(session, await _compose(session), "Create")
    clock.set(OPENS)
    await scheduler.run_due()
    await _votes(uows, session, "wang", "liu")
    invitations = len(await _rows(uows))

    # The worker closes it early in chat: /consultations, Close now, and yes. The outcome job follows the commit.
    clock.set(OPENS + timedelta(days=2))
    out = await _script(session, "/as worker", "/consultations")
    out = await _tap(session, out, "Close now", "Yes, close it")
    assert "(The consultation is closed.)" in out
    assert [row.chat_id for row in (await _rows(uows))[invitations:]] == []
    assert await scheduler.run_due() == 1
    assert [row.chat_id for row in (await _rows(uows))[invitations:]] == ["wang", "liu"]

    # Nothing more: not the outcome again, not the outcome job, not the close job at the closing time.
    assert await send_outcome(uows, 1, Worker(processes=False)) is None
    await scheduler.at("consultation:1:outcome", clock.now(), "consultation.outcome", {"consultation_id": 1})
    await scheduler.run_due()
    clock.set(CLOSES)
    await scheduler.run_due()
    await scheduler.start()
    assert len(await _rows(uows)) == invitations + 2
    assert await _outcomes_sent(uows) == 1


async def test_a_close_whose_outcome_was_lost_sends_it_at_the_next_start(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, scheduler: FakeScheduler
) -> None:
    await _tap(session, await _compose(session), "Create")
    clock.set(OPENS)
    await scheduler.run_due()
    await _votes(uows, session, "chen")
    # Closed by a person whose process died before the outcome went out.
    async with uows() as uow:
        assert await consultations.close_consultation(uow, 1)
        await uow.commit()
    await scheduler.start()
    await scheduler.run_due()
    assert [row.chat_id for row in (await _rows(uows))[3:]] == ["chen"]
    await scheduler.start()
    await scheduler.run_due()
    assert await _outcomes_sent(uows) == 1


async def test_a_background_sent_as_a_photo_goes_out_with_the_invitation(
    session: ConsoleSession, uows: UnitOfWorkFactory, deliver: Callable[[], Awaitable[list[str]]]
) -> None:
    out = await _script(session, "/as worker", "/newconsultation", TITLE, f"/photo plan.jpg {BACKGROUND}")
    assert out[0] == "Who is the consultation for?"
    out = await _tap(session, out, "Next ›")
    assert "Attachment: a photo or document" in out
    out = await _tap(session, out, "Preview ›")
    assert out[2:4] == ["📎 plan.jpg", f"🗳 {COMMUNITY} · Consultation"]
    await _tap(session, out, "Create")
    rows = await _rows(uows)
    assert [row.chat_id for row in rows] == ["committee", "wang", "liu", "chen", "zheng", "wu", "huang"]
    assert {(row.kind, row.file_ref) for row in rows} == {(MessageKind.PHOTO, "console:plan.jpg")}
    await deliver()
    out = await session.feed("/as chen")
    assert out[1:3] == ["📎 plan.jpg", f"🗳 {COMMUNITY} · Consultation"]


# --- the order of statements ------------------------------------------------------------------------------------


async def test_a_vote_in_chat_asks_for_the_map_once_and_the_job_stores_the_priorities(
    session: ConsoleSession,
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    scheduler: FakeScheduler,
    deliver: Callable[[], Awaitable[list[str]]],
) -> None:
    await _tap(session, await _compose(session), "Create")
    clock.set(OPENS)
    await scheduler.run_due()
    await _votes(uows, session, "wang", "liu")  # four votes: one short of a map
    await deliver()
    out = await _tap(session, await session.feed("/as chen"), "🗳 Take part")
    assert "consultation:1:map" not in await scheduler.handed()

    # 陈晓's vote makes enough: once it has committed, the map job is due at once. Her next vote asks nothing.
    out = await _tap(session, out, "👍 Agree")
    assert (await scheduler.handed())["consultation:1:map"].job == "consultation.map"
    assert (await scheduler.handed())["consultation:1:map"].when == clock.now()
    out = await _tap(session, out, "👎 Disagree")
    assert await scheduler.run_due() == 1
    assert [ran.job for ran in scheduler.ran].count("consultation.map") == 1
    async with uows() as uow:
        priorities = (await uow.session.exec(select(Statement.priority).order_by(col(Statement.id)))).all()
    assert len(priorities) == 3 and all(priority is not None and priority > 0 for priority in priorities)

    # Within the interval, votes ask for no other map.
    out = await _tap(session, out, "🤷 Pass")
    assert "consultation:1:map" not in await scheduler.handed()
    assert await scheduler.run_due() == 0


async def test_the_composer_offers_the_communitys_own_closing_choices(
    session: ConsoleSession, uows: UnitOfWorkFactory, scheduler: FakeScheduler
) -> None:
    async with uows() as uow:
        community = (await uow.session.exec(select(Community).where(Community.name == COMMUNITY))).one()
        await settings.change(uow, community.id or 0, CLOSING_DAYS, "5,10")
        await uow.commit()
    out = await _script(session, "/as worker", "/newconsultation", TITLE, BACKGROUND)
    out = await _tap(session, out, "Next ›")
    assert "Closes: 10 days after it opens" in out  # the middle choice, as 7 is of 3, 7 and 14
    assert out[out.index("  [5] Open later…") + 1 :][:3] == ["  [6] 5 days", "  [7] ✓ 10 days", "  [8] Close at…"]
    out = await _tap(session, out, "5 days")
    assert "Closes: 5 days after it opens" in out
