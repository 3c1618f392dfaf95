"""Consultations on time, in the console channel with the demo's people and a fake clock, on both databases: a
community worker composes a consultation in chat, which schedules its opening and closing; at the opening the
eligible residents in its scope (only they) are invited, each in their language with a Take part button, and the
real Sender delivers the invitations through the console transport; at the closing every participant (only
they) gets the outcome; a restart after missed times catches up once; a consultation closed early by a person
gets its outcome once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import build_router
from bot.channels.console import ConsoleSession, ConsoleUser
from bot.channels.console_delivery import ConsoleTransport
from bot.consultations.buttons import OpenConsultation
from bot.consultations.jobs import after_close, register_consultation_jobs, request_outcome
from bot.context import BotInfo
from bot.conversation import Conversation
from bot.delivery.sender import Sender, SenderOptions
from bot.delivery.transport import Transport
from bot.notices.jobs import register_notice_jobs
from bot.rendering import Localizer, Localizers
from bot.scheduling import JobRegistry
from community.clock import FakeClock
from community.demo import seed_demo
from community.models import AuditEntry
from community.notice_models import OutboxMessage
from community.outbox import buttons_from_json
from community.unit_of_work import UnitOfWorkFactory
from consultation import consultations
from consultation.consultations import VoteValue
from consultation.models import Consultation, ConsultationStatus, Statement
from tests.support.fake_scheduler import FakeScheduler

COMMUNITY = "梧桐社区"
WORKER = ConsoleUser("worker", "李娜", "en")
WANG = ConsoleUser("wang", "王芳", "zh-hans")  # 3号楼, reads Chinese
LIU = ConsoleUser("liu", "刘洋", "zh-hans")  # 3号楼, reads Chinese
CHEN = ConsoleUser("chen", "陈晓", "en")  # 7号楼, reads English
COMMITTEE = ConsoleUser("committee", "张伟", "zh-hans")  # 12号楼
ZHAO = ConsoleUser("zhao", "赵大山", "zh-hans")  # another community (稻香村)
PEOPLE = (WORKER, WANG, LIU, CHEN, COMMITTEE, ZHAO)

TITLE = "Parking or a pocket park at the east gate?"
BACKGROUND = "The empty lot by the east gate can become 20 parking spaces or a small park with benches."
SEEDS = ("The lot should become parking spaces.", "The lot should become a pocket park.", "Keep the trees.")
OPENS = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 2026-03-02 09:00 in Shanghai
CLOSES = OPENS + timedelta(days=7)


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def demo(uows: UnitOfWorkFactory) -> None:
    async with uows() as uow:
        await seed_demo(uow)
        await uow.commit()


@pytest.fixture
def registry(uows: UnitOfWorkFactory, localizers: Localizers) -> JobRegistry:
    registry = JobRegistry()
    register_notice_jobs(registry, uows, localizers)  # as bot.app registers them, every feature's
    register_consultation_jobs(registry, uows, localizers)
    return registry


@pytest.fixture
def scheduler(clock: FakeClock, registry: JobRegistry) -> FakeScheduler:
    return FakeScheduler(clock, registry)


@pytest.fixture
def session(
    demo: None, uows: UnitOfWorkFactory, localizers: Localizers, scheduler: FakeScheduler, tmp_path: Path
) -> ConsoleSession:
    conversation = Conversation(uows, build_router(), localizers, BotInfo("linli_test_bot"), scheduler=scheduler)
    return ConsoleSession(conversation, PEOPLE, localizers.get("en"), files_dir=tmp_path / "files")


@pytest.fixture
def printed() -> list[str]:
    return []


@pytest.fixture
def delivery(session: ConsoleSession, printed: list[str]) -> ConsoleTransport:
    transport = ConsoleTransport()
    transport.attach(session, printed.extend)
    return transport


@pytest.fixture
def deliver(uows: UnitOfWorkFactory, delivery: ConsoleTransport, printed: list[str]) -> Callable[[], Awaitable[list[str]]]:
    """Run the delivery engine's real Sender until the outbox has nothing due; what the terminal printed."""

    async def run() -> list[str]:
        printed.clear()
        transports: dict[str, Transport] = {"console": delivery}
        sender = Sender(uows, transports, SenderOptions(rate=1000.0, flush_interval=0.01))
        await sender.run(until_idle=True)
        return list(printed)

    return run


# --- helpers ----------------------------------------------------------------------------------------------------


async def _script(session: ConsoleSession, *lines: str) -> list[str]:
    out: list[str] = []
    for line in lines:
        out = await session.feed(line)
    return out


def _press(out: Sequence[str], label: str) -> str:
    for line in out:
        number, _, shown = line.strip().partition("] ")
        if number.startswith("[") and shown == label:
            return number[1:]
    raise AssertionError(f"no button {label!r} in {out!r}")


async def _tap(session: ConsoleSession, out: Sequence[str], *labels: str) -> list[str]:
    for label in labels:
        out = await session.feed(_press(out, label))
    return list(out)


async def _rows(uows: UnitOfWorkFactory) -> list[OutboxMessage]:
    async with uows() as uow:
        return list((await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


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


async def test_explore(session: ConsoleSession, uows: UnitOfWorkFactory, scheduler: FakeScheduler, clock: FakeClock, deliver: Callable[[], Awaitable[list[str]]]) -> None:
    out = await _script(session, "/as worker", "/menu")
    print("\n".join(out))
    out = await _script(session, "/newconsultation", TITLE, BACKGROUND)
    print("\n".join(out))
    out = await _tap(session, out, "Buildings ›", "3号楼", "7号楼", "‹ Back", "Next ›")
    print("\n".join(out))
    out = await _tap(session, out, "Open later…")
    print("\n".join(out))
    out = await session.feed("2026-03-01 10:00")
    print("\n".join(out))
    out = await session.feed("2026-03-02 09:00")
    print("\n".join(out))
    out = await _tap(session, out, "Add statements")
    print("\n".join(out))
    for seed in SEEDS:
        out = await session.feed(seed)
        print("\n".join(out))
    print("\n".join(await session.feed(SEEDS[0].upper())))
    out = await _tap(session, out, "Done", "Preview ›")
    print("\n".join(out))
    out = await _tap(session, out, "Create")
    print("\n".join(out))
    print(scheduler.jobs)
    clock.set(OPENS)
    await scheduler.run_due()
    for r in await _rows(uows):
        print(r.chat_id, r.text, r.buttons)
    print("\n".join(await deliver()))
    out = await session.feed("/as chen")
    print("\n".join(out))
    async with uows() as uow:
        sts = (await uow.session.exec(select(Statement))).all()
        for person in (4, 6):
            await consultations.vote(uow, person, sts[0].id, VoteValue.AGREE)
        await uow.commit()
    clock.set(CLOSES)
    await scheduler.run_due()
    for r in await _rows(uows):
        print(r.chat_id, r.text, r.buttons)
    assert False
