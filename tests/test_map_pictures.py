"""The opinion map as a picture in chat (issue 11), transcripts in the console on both databases.

The consultation of tests/support/consultation_world.py: bloc A (residents 1-6) and bloc B (7-12) vote opposite
ways, resident 13 votes twice only (placed all the same: fewer than 15 people have the 7 votes, and Pol.is then
places the most active). The community worker asks for the current map under /consultations and gets it as a
picture with no one's position; then closes the consultation, and each participant gets the outcome and, right
after it, their own picture with "you are here" (你在这里) on their position; 张伟 of the committee, who opened the
consultation and never voted, gets the map with no marker, and why. The pictures are drawn by the jobs' process
(the worker runs in a thread here, the same function as production's process) and saved by the console like any
file.

Refusals: a resident pressing Map, a Map button forged for another community's consultation, one for a closed
consultation, one pressed while fewer than k have voted, a consultation closed between asking and drawing; and a
consultation with one participant, who gets the outcome but no picture."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import col, select

from bot.channels.console import ConsoleSession, ConsoleUser
from bot.consultations.cards import Manage, ManageConsultation
from bot.consultations.jobs import register_consultation_jobs, send_outcome
from bot.consultations.outcome_pictures import MAPS_FOLDER, NOT_PLACED, PLACED, OutcomePictures
from bot.events import ButtonPress, Event, Sender
from bot.exports.jobs import FILES_KEPT, SWEEP_EVERY, ExportJobs, register_export_jobs
from bot.rendering import Localizer, Localizers
from bot.scheduling import JobRegistry
from bot.worker import Worker
from community.clock import FakeClock
from community.communities import add_community
from community.export_models import ExportRequest
from community.notice_models import MessageKind, OutboxMessage
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import (
    ConsultationDraft,
    VoteValue,
    add_statement,
    close_consultation,
    create,
    open_consultation,
    participate,
    vote,
)
from tests.support.console import ConsoleDelivery, scheduled_session
from tests.support.console import buttons as _buttons
from tests.support.console import script as _script
from tests.support.console import tap as _tap
from tests.support.consultation_world import RESIDENT_NAMES, TITLE, World, build_world
from tests.support.fake_scheduler import FakeScheduler
from tests.support.outbox import outbox_rows
from tests.support.telegram import member_on_telegram

WORKER = ConsoleUser(key="worker", name="李娜", language_code="en")
COMMITTEE = ConsoleUser(key="committee", name="张伟", language_code="en")
RESIDENTS = tuple(ConsoleUser(key=f"r{n}", name=name) for n, name in enumerate(RESIDENT_NAMES, start=1))
MAP = "🗺 Opinion map"
DRAWING = "Drawing the map… It will arrive in this chat when it is ready."
NOT_RUNNER = "Your role in this community does not allow running consultations."
ONLY_OPEN = "The current map is for open consultations. Once closed, each participant gets the map with the outcome."


class MapRig:
    """`linli run` in the console: the conversation schedules, the FakeScheduler runs the consultation's jobs and
    the exports' (the worker in a thread), and the delivery engine's console transport brings the messages."""

    def __init__(self, uows: UnitOfWorkFactory, localizers: Localizers, clock: FakeClock, tmp_path: Path) -> None:
        self.registry = JobRegistry()
        self.scheduler = FakeScheduler(clock, self.registry, uows)
        self.exports_dir = tmp_path / "exports"
        self.files_dir = tmp_path / "files"
        worker = Worker(processes=False)
        register_export_jobs(self.registry, ExportJobs(uows, localizers, self.exports_dir, worker=worker))
        pictures = OutcomePictures(self.exports_dir, localizers)
        register_consultation_jobs(self.registry, uows, worker, pictures=pictures)
        self.session: ConsoleSession = scheduled_session(
            uows, localizers, [WORKER, COMMITTEE, *RESIDENTS], self.files_dir
        )
        self.delivery = ConsoleDelivery(uows, self.session, files_dir=self.exports_dir)

    async def finish(self) -> list[str]:
        """Run the due jobs, then deliver what they queued; what the terminal printed meanwhile."""
        await self.scheduler.run_due()
        return await self.delivery()

    def saved(self, key: str, name: str) -> Path:
        return self.files_dir / key / name


@pytest.fixture
async def world(uows: UnitOfWorkFactory, clock: FakeClock) -> World:
    return await build_world(uows, clock, channel="console", close=False)


@pytest.fixture
def rig(uows: UnitOfWorkFactory, localizers: Localizers, clock: FakeClock, tmp_path: Path) -> MapRig:
    return MapRig(uows, localizers, clock, tmp_path)


def _png(path: Path) -> Image.Image:
    image = Image.open(io.BytesIO(path.read_bytes()))
    image.load()  # decodes the whole picture: a truncated file fails here
    assert image.format == "PNG"
    return image


async def _press(rig: MapRig, key: str, consultation_id: int, action: Manage = Manage.MAP) -> list[str]:
    """A Map button pressed as ``key``, whatever the screen shows: a forged or stale one."""
    replies = await rig.session.conversation.handle(
        Event(Sender("console", key, key, key, "en"), ButtonPress(ManageConsultation(consultation_id, action).pack()))
    )
    return [text for reply in replies if (text := getattr(reply, "text", None))]


async def _requests(uows: UnitOfWorkFactory) -> list[ExportRequest]:
    async with uows() as uow:
        return list((await uow.session.exec(select(ExportRequest))).all())


async def _photos(uows: UnitOfWorkFactory) -> list[OutboxMessage]:
    return [row for row in await outbox_rows(uows) if row.kind is MessageKind.PHOTO]


# --- the transcript ------------------------------------------------------------------------------------------


async def test_staff_see_the_current_map_and_each_participant_gets_their_own_at_the_close(
    rig: MapRig, world: World, uows: UnitOfWorkFactory, zh: Localizer
) -> None:
    # The worker asks for the map of the open consultation: "drawing…" at once, the picture from the jobs' process.
    out = await _script(rig.session, "/as worker", "/consultations")
    assert MAP in _buttons(out)
    out = await _tap(rig.session, out, MAP)
    assert out == [DRAWING]
    printed = await rig.finish()
    saved = rig.saved("worker", f"opinion-map-{world.consultation_id}.png")
    assert printed == [
        f"📎 opinion-map-{world.consultation_id}.png saved to {saved}",
        f"The opinion map of “{TITLE}” as the votes stand now: its groups, no one's position.",
    ]
    staff_map = _png(saved)
    assert staff_map.width == 1080

    # 张伟 of the committee, a resident too, opened the consultation and left without a vote: a participant the
    # map cannot place.
    async with uows() as uow:
        await participate(uow, world.committee, world.consultation_id)
        await uow.commit()

    # The worker closes it; the outcome job draws every participant's picture and queues them with the outcome.
    out = await rig.session.feed("/as worker")
    out = await rig.session.feed("/consultations")
    out = await _tap(rig.session, out, "Close now", "Yes, close it")
    assert out[0] == "(The consultation is closed.)" and MAP not in _buttons(out)
    printed = await rig.finish()
    assert printed.count(f"→ a message was sent to {RESIDENT_NAMES[0]}") == 2  # the outcome, then the picture

    # Resident 1 (bloc A) reads the outcome, then their own picture, saved like any file, "you are here" on it.
    out = await rig.session.feed("/as r1")
    saved_line = f"📎 opinion-map.png saved to {rig.saved('r1', 'opinion-map.png')}"
    closed = out.index(f"🗳 梧桐社区 · {zh.label('Consultation closed')}")  # the outcome comes first
    groups = zh.plural(
        "The votes form %(num)s group of opinion.", "The votes form %(num)s groups of opinion.", 2, num=2
    )
    assert groups in out[closed:]
    assert out.index(saved_line) > closed and out[-1] == zh.text(PLACED, title=TITLE)
    mine = rig.saved("r1", "opinion-map.png").read_bytes()
    assert _png(rig.saved("r1", "opinion-map.png")).size[0] == 1080

    # Bloc B's resident 7 stands elsewhere: another picture. Resident 2 voted as resident 1 did: the same one.
    out = await rig.session.feed("/as r7")
    assert out[-1] == zh.text(PLACED, title=TITLE)
    assert rig.saved("r7", "opinion-map.png").read_bytes() != mine
    await rig.session.feed("/as r2")
    assert rig.saved("r2", "opinion-map.png").read_bytes() == mine

    # Resident 13 voted twice only, but fewer than 15 people have the 7 votes to be placed: as in Pol.is, the most
    # active are placed too, and resident 13 is marked where those two votes put them, apart from both blocs.
    out = await rig.session.feed("/as r13")
    assert out[-1] == zh.text(PLACED, title=TITLE)
    sparse = rig.saved("r13", "opinion-map.png").read_bytes()
    assert sparse not in (mine, rig.saved("r7", "opinion-map.png").read_bytes())

    # 张伟, who never voted, gets the map with no marker, and why.
    out = await rig.session.feed("/as committee")
    assert out[-1] == zh.text(NOT_PLACED, title=TITLE)
    unplaced = _png(rig.saved("committee", "opinion-map.png"))
    assert unplaced.width == 1080

    # One picture for each participant, right after their outcome; nobody else gets one (the worker took no part).
    rows = await outbox_rows(uows)
    photos = [row for row in rows if row.kind is MessageKind.PHOTO and row.person_id != world.worker]  # not hers
    assert sorted(row.person_id or 0 for row in photos) == sorted([*world.residents, world.committee])
    for photo in photos:
        before = rows[rows.index(photo) - 1]
        assert before.kind is MessageKind.TEXT and before.person_id == photo.person_id and TITLE in before.text
    # Drawn once per spot, not once per person: bloc A shares a file, bloc B another, resident 13 a
    # third, 张伟's unmarked map a fourth.
    assert len({row.file_ref for row in photos}) == 4


async def test_the_pictures_are_swept_as_an_exports_files_are(
    rig: MapRig, world: World, uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    await rig.scheduler.start()  # as `linli run` starts: the hourly sweeps are set
    async with uows() as uow:
        assert await close_consultation(uow, world.consultation_id, world.worker)
        await uow.commit()
    await rig.finish()
    folder = rig.exports_dir / MAPS_FOLDER / str(world.consultation_id)
    assert len([path for path in folder.rglob("*.png")]) == 3
    clock.advance(FILES_KEPT - timedelta(hours=1))
    await rig.scheduler.run_due()
    assert folder.is_dir()  # a delivery held back may still send them
    clock.advance(timedelta(hours=1) + SWEEP_EVERY)
    await rig.scheduler.run_due()
    assert not folder.exists()


# --- refusals ---------------------------------------------------------------------------------------------------


async def _other_consultation(uows: UnitOfWorkFactory, clock: FakeClock, world: World, *, voters: int) -> int:
    """A second consultation of the world's community, open, with ``voters`` residents having voted."""
    async with uows() as uow:
        made = await create(
            uow,
            world.worker,
            ConsultationDraft(
                community_id=world.community_id,
                title="楼道灯",
                background="要不要换感应灯？",
                language="zh_Hans",
                opens_at=clock.now(),
                closes_at=clock.now() + timedelta(days=3),
            ),
        )
        assert made.id is not None
        statement = await add_statement(uow, world.worker, made.id, "应该换感应灯。")
        assert await open_consultation(uow, made.id, world.worker)
        await uow.commit()
    assert statement.id is not None
    for person in world.residents[:voters]:
        async with uows() as uow:
            await vote(uow, person, statement.id, VoteValue.AGREE)
            await uow.commit()
    return made.id


async def test_a_resident_a_forged_button_and_a_closed_consultation_get_no_map(
    rig: MapRig, world: World, uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    # A resident presses a Map button (there is none on their screens).
    assert await _press(rig, "r1", world.consultation_id) == [NOT_RUNNER]
    # A button forged for another community's consultation.
    async with uows() as uow:
        other = await add_community(uow, name="康乐社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert other.id is not None
        stranger = await member_on_telegram(uow, other.id, 5001, "王五", "zh-hans", {Role.COMMUNITY_WORKER})
        for n in range(5):
            await member_on_telegram(uow, other.id, 5100 + n, f"居民{n}", "zh-hans", {Role.RESIDENT}, home=f"{n}01")
        theirs = await create(
            uow,
            stranger,
            ConsultationDraft(
                community_id=other.id,
                title="别处的协商",
                background="……",
                language="zh_Hans",
                opens_at=clock.now(),
                closes_at=clock.now() + timedelta(days=3),
            ),
        )
        assert theirs.id is not None
        await uow.commit()
    assert await _press(rig, "worker", theirs.id) == [NOT_RUNNER]
    # The closed one: no Map button any more, and a stale one is refused.
    async with uows() as uow:
        assert await close_consultation(uow, world.consultation_id, world.worker)
        await uow.commit()
    assert await _press(rig, "worker", world.consultation_id) == [ONLY_OPEN]
    assert await _press(rig, "worker", 999_999) == ["That consultation no longer exists."]
    assert await _requests(uows) == []  # nothing was asked of the jobs' process


async def test_below_k_the_map_is_refused_and_a_lone_participant_gets_the_outcome_without_a_picture(
    rig: MapRig, world: World, uows: UnitOfWorkFactory, clock: FakeClock
) -> None:
    lone = await _other_consultation(uows, clock, world, voters=1)
    out = await _script(rig.session, "/as committee", "/consultations")
    assert _buttons(out).count(MAP) == 2  # under every open consultation, below k too: pressing it says why
    assert await _press(rig, "committee", lone) == [
        "The opinion map is shown once at least 5 people have voted, so that no one's position can be told "
        "(voters so far: 1)."
    ]
    assert await _requests(uows) == []
    # Its one participant is told the outcome, which withholds the map's findings, and gets no picture.
    async with uows() as uow:
        assert await close_consultation(uow, lone, world.worker)
        await uow.commit()
    await rig.finish()
    rows = [row for row in await outbox_rows(uows) if row.person_id == world.residents[0]]
    assert [row.kind for row in rows] == [MessageKind.TEXT] and "楼道灯" in rows[0].text
    assert await _photos(uows) == []
    assert not (rig.exports_dir / MAPS_FOLDER / str(lone)).exists()  # the worker wrote nothing that stays


async def test_a_map_asked_for_then_the_consultation_closed_is_refused_when_drawn(
    rig: MapRig, world: World, uows: UnitOfWorkFactory
) -> None:
    out = await _script(rig.session, "/as worker", "/consultations")
    assert await _tap(rig.session, out, MAP) == [DRAWING]
    assert await _press(rig, "worker", world.consultation_id) == [
        "The map is already being drawn. It will arrive in this chat when it is ready."
    ]
    async with uows() as uow:
        assert await close_consultation(uow, world.consultation_id, world.worker)
        await uow.commit()
    printed = await rig.finish()
    assert ONLY_OPEN in printed
    async with uows() as uow:
        requests = (await uow.session.exec(select(ExportRequest).order_by(col(ExportRequest.id)))).all()
    assert len(requests) == 1 and not (rig.exports_dir / str(requests[0].id)).exists()


async def test_the_production_worker_draws_in_a_process_of_its_own(
    world: World, uows: UnitOfWorkFactory, localizers: Localizers, tmp_path: Path
) -> None:
    """What crosses back from the worker's process is only which file is whose (it must pickle), and the files it
    wrote are there for the delivery."""
    async with uows() as uow:
        assert await close_consultation(uow, world.consultation_id, world.worker)
        await uow.commit()
    pictures = OutcomePictures(tmp_path / "exports", localizers)
    assert await send_outcome(uows, world.consultation_id, Worker(), pictures) == len(world.residents)
    photos = await _photos(uows)
    assert len(photos) == len(world.residents)
    for photo in photos:
        assert photo.file_ref is not None
        _png(tmp_path / "exports" / photo.file_ref.removeprefix("local:"))
    # A second run queues nothing and draws nothing.
    assert await send_outcome(uows, world.consultation_id, Worker(processes=False), pictures) is None
    assert len(list((tmp_path / "exports" / MAPS_FOLDER / str(world.consultation_id)).iterdir())) == 1


async def test_two_runs_at_once_queue_the_pictures_once_and_the_other_run_leaves_no_files(
    world: World, uows: UnitOfWorkFactory, localizers: Localizers, tmp_path: Path
) -> None:
    """A person's "Close now" and the job may both compute the outcome: both draw, in folders of their own, and
    the run that finds the outcome queued already removes what it drew."""
    async with uows() as uow:
        assert await close_consultation(uow, world.consultation_id, world.worker)
        await uow.commit()
    pictures = OutcomePictures(tmp_path / "exports", localizers)
    runs = [send_outcome(uows, world.consultation_id, Worker(processes=False), pictures) for _ in range(2)]
    assert sorted(await asyncio.gather(*runs), key=str) == [len(world.residents), None]
    assert len(await _photos(uows)) == len(world.residents)
    (kept,) = (tmp_path / "exports" / MAPS_FOLDER / str(world.consultation_id)).iterdir()
    assert {photo.file_ref for photo in await _photos(uows)} <= {
        f"local:{MAPS_FOLDER}/{world.consultation_id}/{kept.name}/{png.name}" for png in kept.iterdir()
    }
