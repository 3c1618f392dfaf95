"""Transcripts of notices in the console channel, with the demo's people, on both databases: a community worker
composes a notice and sends it to one building; the delivery engine's sender delivers the outbox; residents of
that building find it in their chat (in their language), others do not; scheduling with a fake clock and the
FakeScheduler, cancelling, muting (and important notices that still arrive), acknowledging, the daily digest,
and the worker's delivery figures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from bot.channels.console import ConsoleSession, ConsoleUser
from bot.channels.console_delivery import ConsoleTransport
from bot.notices.jobs import register_notice_jobs
from bot.notices.progress_editor import ProgressEditor
from bot.rendering import Localizer, Localizers
from bot.scheduling import JobRegistry
from community.clock import FakeClock
from community.notice_models import DeliveryStatus, MessageKind, Notice, NoticeStatus, OutboxMessage
from community.notices import SEND, NoticeJob
from community.unit_of_work import UnitOfWorkFactory
from tests.support.console import ConsoleDelivery, scheduled_session
from tests.support.console import has as _has
from tests.support.console import script as _script
from tests.support.console import tap as _tap
from tests.support.demo_people import CHEN, COMMITTEE, LIU, WANG, WORKER, ZHAO
from tests.support.fake_scheduler import FakeScheduler
from tests.support.outbox import outbox_rows as _rows

COMMUNITY = "梧桐社区"
PEOPLE = (WORKER, WANG, LIU, CHEN, COMMITTEE, ZHAO)


def send_key(notice_id: int) -> str:
    return SEND.key(NoticeJob(notice_id))


WATER = "Water is off in building 3 tomorrow, 9:00-12:00. <Keep some water ready> & be patient."
WATER_ZH = "明天9:00-12:00 3号楼停水，请提前储水。"


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture
def scheduler(clock: FakeClock, uows: UnitOfWorkFactory, localizers: Localizers) -> FakeScheduler:
    registry = JobRegistry()
    register_notice_jobs(registry, uows, localizers)  # as bot.app registers them
    return FakeScheduler(clock, registry, uows)


@pytest.fixture
def session(
    demo: None, uows: UnitOfWorkFactory, localizers: Localizers, scheduler: FakeScheduler, tmp_path: Path
) -> ConsoleSession:
    return scheduled_session(uows, localizers, PEOPLE, tmp_path / "files")


@pytest.fixture
def deliver(uows: UnitOfWorkFactory, session: ConsoleSession, localizers: Localizers) -> ConsoleDelivery:
    """The delivery engine's sender, with the author's progress editor; returns what the terminal printed."""
    return ConsoleDelivery(uows, session, progress=localizers)


@pytest.fixture
def delivery(deliver: ConsoleDelivery) -> ConsoleTransport:
    """The engine's console transport, attached to the session as `linli run` attaches it."""
    return deliver.transport


@pytest.fixture
def printed(deliver: ConsoleDelivery) -> list[str]:
    """What the terminal printed of the delivery engine's messages while the test was the person they were for."""
    return deliver.printed


# --- helpers ----------------------------------------------------------------------------------------------------


async def _notice_to_building_3(session: ConsoleSession, text: str = WATER) -> list[str]:
    """The worker writes a notice to 3号楼 and stops at the options."""
    out = await _script(session, "/as worker", "/notice")
    assert out[0] == f"New notice to {COMMUNITY}"
    out = await session.feed(text)
    assert out[0] == "Who should receive the notice?"
    out = await _tap(session, out, "Buildings ›", "3号楼", "‹ Back", "Next ›")
    assert out[0] == "(the message above was changed)" and out[1] == f"Notice to {COMMUNITY}"
    return out


async def _notice(uows: UnitOfWorkFactory, notice_id: int = 1) -> Notice:
    async with uows() as uow:
        found = await uow.session.get(Notice, notice_id)
    assert found is not None
    return found


# --- sending now, to one building -----------------------------------------------------------------------------


async def test_a_worker_sends_a_notice_to_building_3_and_only_its_residents_get_it(
    session: ConsoleSession, uows: UnitOfWorkFactory, deliver: Callable[[], Awaitable[list[str]]], zh: Localizer
) -> None:
    out = await _notice_to_building_3(session)
    assert "To: 3号楼" in out and "2 people would receive it now." in out

    # The preview is the notice exactly as the residents will get it: header, body as typed, nothing else.
    out = await _tap(session, out, "Preview ›")
    assert out[:2] == [
        "(the message above was changed)",
        "Preview: this is the notice exactly as residents will receive it.",
    ]
    assert out[2:5] == [f"📢 {COMMUNITY} · General", "", WATER]
    assert out[-4:] == ["Send it now?", "  [1] Send", "  [2] Edit", "  [3] Cancel"]
    out = await _tap(session, out, "Send")
    assert out[1:] == ["Notice #1 is on its way.", "It is going out to 2 people. A progress message follows."]
    assert [row.chat_id for row in await _rows(uows)] == ["wang", "liu"]

    shown = await deliver()
    assert shown[:2] == ["→ a message was sent to 王芳", "→ a message was sent to 刘洋"]

    # 王芳 and 刘洋 live in 3号楼 and read Chinese: the frame is Chinese, the body is the worker's.
    header = f"📢 {COMMUNITY} · {zh.label('General')}"
    for resident in ("wang", "liu"):
        out = await session.feed(f"/as {resident}")
        assert out[1:4] == [header, "", WATER]
    # 陈晓 (7号楼) and 赵大山 (another community) get nothing.
    assert await session.feed("/as chen") == ["— you are now 陈晓 (chen) —"]
    assert await session.feed("/as zhao") == ["— you are now 赵大山 (zhao) —"]

    # The worker's progress message, turned into the summary once everything was delivered.
    # The worker's progress message, printed to her at once, ends as the summary once everything is delivered
    # (how many edits come before depends on the sender's pace).
    assert shown[-4:] == ["Notice #1 has gone out", "▓▓▓▓▓▓▓▓▓▓ 100%", "Delivered: 2 of 2", "  [1] Delivery figures"]
    out = await session.feed("/as worker")
    assert (await _notice(uows)).status is NoticeStatus.SENT

    # The figures: delivered by building.
    out = await _tap(session, shown, "Delivery figures")  # under the progress message
    assert out[1] == "Notice #1 · sent"
    assert "Recipients: 2" in out and "Delivered: 2" in out and "Failed: 0" in out
    assert "3号楼: 2 of 2 delivered, 0 failed, 0 blocked" in out


async def test_each_resident_reads_the_version_in_their_language(
    session: ConsoleSession, uows: UnitOfWorkFactory, deliver: Callable[[], Awaitable[list[str]]], zh: Localizer
) -> None:
    out = await _script(session, "/as worker", "/notice", WATER)
    out = await _tap(session, out, "Buildings ›", "3号楼", "7号楼", "‹ Back", "Next ›", "Add a Chinese version")
    assert out[1] == "The notice in Chinese"
    out = await session.feed(WATER_ZH)
    assert "Languages: English · Chinese" in out
    out = await _tap(session, out, "Preview ›")
    assert out[1] == (
        "Preview: residents who read English receive the first message, those who read Chinese the second."
    )
    assert WATER in out and WATER_ZH in out
    await _tap(session, out, "Send")
    await deliver()

    out = await session.feed("/as wang")
    assert out[1:4] == [f"📢 {COMMUNITY} · {zh.label('General')}", "", WATER_ZH]
    out = await session.feed("/as chen")
    assert out[1:4] == [f"📢 {COMMUNITY} · General", "", WATER]


async def test_a_photo_notice_goes_out_with_its_photo(
    session: ConsoleSession, uows: UnitOfWorkFactory, deliver: Callable[[], Awaitable[list[str]]]
) -> None:
    out = await _script(session, "/as worker", "/notice", "/photo poster.jpg Spring clean-up on Saturday!")
    assert out[0] == "Who should receive the notice?"
    out = await _tap(session, out, "Next ›", "Events")
    assert "Attachment: poster.jpg" in out and "Category: Events" in out
    out = await _tap(session, out, "Preview ›")
    assert out[2:6] == ["📎 poster.jpg", f"📢 {COMMUNITY} · Events", "", "Spring clean-up on Saturday!"]
    await _tap(session, out, "Send")
    await deliver()

    rows = await _rows(uows)
    assert {row.kind for row in rows} == {MessageKind.PHOTO}
    assert {row.file_ref for row in rows} == {"console:poster.jpg"}
    out = await session.feed("/as chen")
    assert out[1:3] == ["📎 poster.jpg", f"📢 {COMMUNITY} · Events"]


async def test_a_file_outside_a_notice_is_not_taken(session: ConsoleSession) -> None:
    out = await _script(session, "/as wang", "/photo cat.jpg look")
    assert len(out) == 1 and "/notice" in out[0]


async def test_a_resident_cannot_send_notices(session: ConsoleSession) -> None:
    out = await _script(session, "/as chen", "/notice")
    assert out == ["Your role in this community does not allow that."]
    out = await session.feed("/menu")
    assert not _has(out, "Send a notice") and _has(out, "Notifications")


# --- scheduling and cancelling --------------------------------------------------------------------------------


async def test_a_scheduled_notice_goes_out_on_time(
    session: ConsoleSession,
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    scheduler: FakeScheduler,
    deliver: Callable[[], Awaitable[list[str]]],
) -> None:
    assert clock.now() == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
    out = await _notice_to_building_3(session)
    out = await _tap(session, out, "Send later…")
    assert out[1:3] == [
        "When should the notice go out?",
        "Type the date and time, China (Shanghai) Time, like this: 2026-03-02 09:00",
    ]
    # Bad times are refused with the reason, and the question stands.
    assert await session.feed("tomorrow morning") == [
        "Please write the time as YYYY-MM-DD HH:MM, for example 2026-03-02 09:00."
    ]
    assert await session.feed("2026-02-30 09:00") == ["There is no such date or time: 2026-02-30 09:00"]
    assert await session.feed("2026-03-01 16:59") == [
        "That time has already passed. Choose a later time to send the notice."
    ]
    out = await session.feed("2026-03-02 08:30")
    assert "Goes out: Mar 2, 2026, 8:30\u202fAM" in out
    out = await _tap(session, out, "Preview ›")
    assert out[-4:-3] == ["Schedule it?"]
    out = await _tap(session, out, "Schedule")
    assert out[1:] == [
        "Notice #1 is scheduled.",
        "It goes out on Mar 2, 2026, 8:30\u202fAM. Until then /notices shows it, and you can cancel it there.",
    ]
    assert await scheduler.next_run(send_key(1)) == datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    assert await _rows(uows) == []

    # A minute early, nothing happens.
    clock.set(datetime(2026, 3, 2, 0, 29, tzinfo=UTC))
    await scheduler.run_due()
    assert await _rows(uows) == []

    clock.set(datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
    await scheduler.run_due()
    assert [row.chat_id for row in await _rows(uows)] == ["wang", "liu"]
    await deliver()
    out = await session.feed("/as wang")
    assert out[3] == WATER
    assert (await _notice(uows)).status is NoticeStatus.SENT

    # Running the job again (a restart that finds it) sends nothing twice.
    await scheduler.at(send_key(1), clock.now(), SEND.name, {"notice_id": 1})
    await scheduler.run_due()
    assert len(await _rows(uows)) == 2


async def test_a_worker_cancels_a_scheduled_notice(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, scheduler: FakeScheduler
) -> None:
    out = await _notice_to_building_3(session)
    out = await _tap(session, out, "Send later…")
    out = await session.feed("2026-03-02 08:30")
    out = await _tap(session, out, "Preview ›", "Schedule")
    assert send_key(1) in await scheduler.handed()

    out = await session.feed("/notices")
    assert out[0] == f"Recent notices of {COMMUNITY}"
    assert out[1:3] == ["#1 · scheduled · Mar 2, 2026, 8:30\u202fAM", "Water is off in building 3 tomorrow, 9:…"]
    out = await _tap(session, out, "#1 · scheduled")
    assert out[1:3] == ["Notice #1 · scheduled", "General · 3号楼"]
    assert "Nothing has been sent yet." in out
    out = await _tap(session, out, "Cancel this notice")
    assert "Cancel this notice? It will not go out." in out
    out = await _tap(session, out, "Yes, cancel it")
    assert out[0] == "(Notice #1 is cancelled.)"
    assert out[2] == "Notice #1 · cancelled"
    assert not _has(out, "Cancel this notice")
    assert send_key(1) not in await scheduler.handed()

    clock.set(datetime(2026, 3, 3, tzinfo=UTC))
    await scheduler.run_due()
    assert await _rows(uows) == []
    assert (await _notice(uows)).status is NoticeStatus.CANCELLED


# --- muting, important notices, the daily digest ---------------------------------------------------------------


async def test_a_muted_category_stays_away_but_an_important_notice_still_arrives(
    session: ConsoleSession, uows: UnitOfWorkFactory, deliver: Callable[[], Awaitable[list[str]]]
) -> None:
    out = await _script(session, "/as chen", "/notifications")
    assert out[:4] == [
        "Notifications",
        "You receive notices of every category.",
        "Notices marked important always reach you, even in a muted category.",
        "",
    ]
    out = await _tap(session, out, "🔔 Events")
    assert out[0] == "(Muted: Events. Important notices still reach you.)"
    assert "Muted: Events" in out and _has(out, "🔕 Events")
    # Unmuted and muted again: each refreshed screen shows the change just made.
    out = await _tap(session, out, "🔕 Events")
    assert out[0] == "(You receive Events notices again.)"
    assert "You receive notices of every category." in out and _has(out, "🔔 Events")
    out = await _tap(session, out, "🔔 Events")
    assert "Muted: Events" in out and _has(out, "🔕 Events")

    # An event notice to the whole community: not to 陈晓.
    out = await _script(session, "/as worker", "/notice", "Film night on Friday.")
    out = await _tap(session, out, "Next ›", "Events", "Preview ›", "Send")
    await deliver()
    assert "chen" not in {row.chat_id for row in await _rows(uows)}
    assert await session.feed("/as chen") == ["— you are now 陈晓 (chen) —"]

    # The same category marked important reaches 陈晓 all the same.
    out = await _script(session, "/as worker", "/notice", "The film night moves to the hall.")
    out = await _tap(session, out, "Next ›", "Events", "Important")
    assert _has(out, "Important: it also reaches people who muted this category")
    out = await _tap(session, out, "Preview ›")
    assert out[2:4] == [f"📢 {COMMUNITY} · Events", "❗ Important"]
    await _tap(session, out, "Send")
    await deliver()
    out = await session.feed("/as chen")
    assert out[1:5] == [f"📢 {COMMUNITY} · Events", "❗ Important", "", "The film night moves to the hall."]


async def test_the_daily_digest_gathers_notices_for_the_evening(
    session: ConsoleSession,
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    scheduler: FakeScheduler,
    deliver: Callable[[], Awaitable[list[str]]],
) -> None:
    await scheduler.start()  # schedules the daily digest
    out = await _script(session, "/as chen", "/notifications")
    out = await _tap(session, out, "Daily digest: off")
    assert out[0] == "(Non-urgent notices now come together once a day.)"
    assert _has(out, "Daily digest is on: non-urgent notices come together in one message at 19:00.")

    for text in ("Film night on Friday.", "The library opens on Sunday."):
        out = await _script(session, "/as worker", "/notice", text)
        await _tap(session, out, "Next ›", "Preview ›", "Send")
    await deliver()
    assert await session.feed("/as chen") == ["— you are now 陈晓 (chen) —"]
    held = [row for row in await _rows(uows) if row.chat_id == "chen"]
    assert [row.status for row in held] == [DeliveryStatus.HELD, DeliveryStatus.HELD]

    clock.set(datetime(2026, 3, 1, 11, 0, tzinfo=UTC))  # 19:00 in Shanghai
    await scheduler.run_due()
    shown = await deliver()  # 陈晓 is the one at the terminal: the digest shows at once
    assert shown[0] == "🗞 Today's 2 notices"
    assert "Film night on Friday." in shown and "The library opens on Sunday." in shown
    assert [row.status for row in await _rows(uows) if row.notice_id is not None and row.chat_id == "chen"] == [
        DeliveryStatus.DIGESTED,
        DeliveryStatus.DIGESTED,
    ]


# --- acknowledging ---------------------------------------------------------------------------------------------


async def test_residents_acknowledge_and_the_worker_sees_it_in_the_figures(
    session: ConsoleSession, uows: UnitOfWorkFactory, deliver: Callable[[], Awaitable[list[str]]], zh: Localizer
) -> None:
    out = await _notice_to_building_3(session)
    out = await _tap(session, out, "Please confirm", "Preview ›")
    preview = out[out.index("Please tap “Acknowledge” once you have read this.") :]
    assert preview[1] == "  [1] ✅ Acknowledge"
    await _tap(session, out, "Send")
    await deliver()

    out = await session.feed("/as wang")
    acknowledge = zh.label("✅ Acknowledge")
    assert out[-1] == f"  [1] {acknowledge}"
    out = await session.feed("1")
    assert out[0] == f"({zh.label('Thank you. Your confirmation has been counted.')})"
    assert out[1] == "(the message above was changed)"
    assert WATER in out and out[-1] == f"  [1] {zh.label('✓ Acknowledged')}"
    assert await session.feed("1") == [f"({zh.label('You have already acknowledged this notice.')})"]

    out = await _script(session, "/as worker", "/notices")
    out = await _tap(session, out, "#1 · sent")
    assert "Acknowledged: 1" in out
    assert "3号楼: 2 of 2 delivered, 0 failed, 0 blocked, 1 acknowledged" in out


async def test_a_notice_going_out_can_be_stopped(
    session: ConsoleSession, uows: UnitOfWorkFactory, deliver: Callable[[], Awaitable[list[str]]]
) -> None:
    out = await _notice_to_building_3(session)
    await _tap(session, out, "Preview ›", "Send")
    # Before the sender took any of it, the worker changes her mind.
    out = await session.feed("/notices")
    out = await _tap(session, out, "#1 · going out")
    assert "On the way: 2" in out
    out = await _tap(session, out, "Cancel this notice")
    assert "Cancel this notice? Messages not yet sent are withdrawn; those already delivered stay." in out
    out = await _tap(session, out, "Yes, cancel it")
    assert out[2] == "Notice #1 · cancelled" and "Withdrawn before sending: 2" in out
    await deliver()
    assert await session.feed("/as wang") == ["— you are now 王芳 (wang) —"]
    assert {row.status for row in await _rows(uows)} == {DeliveryStatus.CANCELLED}


async def test_the_form_speaks_the_workers_language_and_refuses_a_bad_time_in_it(
    session: ConsoleSession, zh: Localizer
) -> None:
    chinese_worker = ConsoleUser("worker", "李娜", "zh-hans")
    session.users[chinese_worker.key] = chinese_worker
    out = await _script(session, "/as worker", "/notice")
    assert out[0] == zh.text("New notice to %(community)s", community=COMMUNITY)
    out = await session.feed(WATER_ZH)
    out = await _tap(session, out, f"{zh.label('Next ›')}", zh.label("Send later…"))
    assert out[1] == zh.text("When should the notice go out?")
    assert await session.feed("明天上午") == [
        zh.text("Please write the time as YYYY-MM-DD HH:MM, for example 2026-03-02 09:00.")
    ]
    # Full-width digits' neighbours are fine: the colon typed with a Chinese keyboard.
    out = await session.feed("2026-03-02 08：30")
    assert zh.text("Goes out: %(when)s", when="2026年3月2日 08:30") in out
    # Typing where buttons are expected gets a hint, and nothing changes.
    assert await session.feed("好的") == [zh.text("Use the buttons above, or send /cancel to stop.")]


async def test_a_street_administrator_chooses_the_community_first(session: ConsoleSession) -> None:
    street = ConsoleUser("street", "周敏", "en")
    session.users[street.key] = street
    out = await _script(session, "/as street", "/notice")
    assert out[0] == "Which community is the notice for?"
    assert out[1:] == ["  [1] 梧桐社区", "  [2] 银杏社区", "  [3] 稻香村"]
    out = await session.feed("3")
    assert out[1] == "Community: 稻香村" and out[2] == "New notice to 稻香村"


async def test_the_summary_comes_even_when_the_last_change_is_never_reported(
    session: ConsoleSession,
    uows: UnitOfWorkFactory,
    localizers: Localizers,
    delivery: ConsoleTransport,
    printed: list[str],
) -> None:
    """The sender reports changes at its own pace and may stop reporting once its queue is empty; the editor
    looks again by itself while the figures move, so the author's message still ends as the summary."""
    out = await _notice_to_building_3(session)
    await _tap(session, out, "Preview ›", "Send")
    editor = ProgressEditor(uows, localizers, {"console": delivery}, every=0.05)
    try:
        await editor(frozenset({1}))  # the first report: nothing sent yet
        assert printed[:2] == ["Notice #1 is going out", "░░░░░░░░░░ 0%"]
        # The rows go out and are recorded, and nobody tells the editor.
        async with uows() as uow:
            for row in (await uow.session.exec(select(OutboxMessage))).all():
                row.status, row.sent_at = DeliveryStatus.SENT, uow.clock.now()
                uow.session.add(row)
            await uow.commit()
        for _ in range(500):
            if "Notice #1 has gone out" in printed:
                break
            await asyncio.sleep(0.01)
        assert printed[-5:] == [
            "(the message above was changed)",
            "Notice #1 has gone out",
            "▓▓▓▓▓▓▓▓▓▓ 100%",
            "Delivered: 2 of 2",
            "  [1] Delivery figures",
        ]
    finally:
        await editor.aclose()


async def test_a_scheduled_notice_whose_job_was_lost_is_scheduled_again_at_start(
    session: ConsoleSession, uows: UnitOfWorkFactory, clock: FakeClock, scheduler: FakeScheduler
) -> None:
    out = await _notice_to_building_3(session)
    out = await _tap(session, out, "Send later…")
    out = await session.feed("2026-03-02 08:30")
    await _tap(session, out, "Preview ›", "Schedule")
    # The process died between the commit and the hand-over, say, or its job store was restored from an older
    # backup: the scheduler holds no job. The next start replays the notice's schedule row.
    assert scheduler.jobs == {}
    await scheduler.start()
    assert await scheduler.next_run(send_key(1)) == datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    clock.set(datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
    await scheduler.run_due()
    assert [row.chat_id for row in await _rows(uows)] == ["wang", "liu"]
