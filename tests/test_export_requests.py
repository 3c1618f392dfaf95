"""Exports off the conversation (bot.exports.jobs): the requester is answered "preparing…" at once and gets the file
from the jobs' process through the outbox; a second tap starts nothing; other residents are answered while a file
is being made; a file over the upload limit is not sent; the permission is checked again when the job runs; a
request outlives a crash; the production worker (a process of its own) and the Telegram upload. Both databases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, delete, select

import bot.exports.consultation
import consultation.outcome
from bot.channels.console import ConsoleUser
from bot.channels.telegram_delivery import TelegramTransport
from bot.delivery.transport import Delivered
from bot.exports.files import local_ref
from bot.exports.jobs import FILES_KEPT
from bot.handlers.consult_export import export_keyboard
from bot.rendering import Localizer, Localizers
from bot.replies import SendText
from bot.worker import Worker
from community.clock import FakeClock
from community.export_models import ExportRequest, ExportStatus
from community.exports import PRODUCE
from community.models import Membership, MembershipRole
from community.notice_models import MessageKind, OutboxMessage
from community.privacy import forget
from community.roles import Role
from community.unit_of_work import UnitOfWorkFactory
from tests.support.consultation_world import RESIDENT_NAMES, TITLE, World, build_world
from tests.support.exports import ExportRig
from tests.support.fake_bot_api import FakeBotApi
from tests.support.fake_scheduler import FakeScheduler
from tests.support.outbox import outbox_rows

COMMITTEE = ConsoleUser(key="committee", name="张伟", language_code="en")
RESIDENT = ConsoleUser(key="r1", name=RESIDENT_NAMES[0], language_code="en")
PREPARING = "Preparing the file… It will arrive in this chat when it is ready."
XLSX_NAME = "consultation-1-outcome.xlsx"


@pytest.fixture
async def world(uows: UnitOfWorkFactory, clock: FakeClock) -> World:
    return await build_world(uows, clock, channel="console")


MakeRig = Callable[..., ExportRig]


@pytest.fixture
def make_rig(
    uows: UnitOfWorkFactory, localizers: Localizers, clock: FakeClock, engine: AsyncEngine, tmp_path: Path
) -> MakeRig:
    """The export rig for the committee member and a resident; options: the worker, the upload limit."""

    def make(**options: Any) -> ExportRig:
        return ExportRig(uows, localizers, clock, engine, tmp_path, [COMMITTEE, RESIDENT], **options)

    return make


async def _tap_xlsx(rig: ExportRig, en: Localizer, world: World) -> list[str]:
    """As the committee member: the Export buttons under the consultation, then Spreadsheet (XLSX)."""
    await rig.session.feed("/as committee")
    rig.session.deliver("committee", SendText(TITLE, buttons=export_keyboard(en, world.consultation_id)))
    return await rig.session.feed("1")


async def _requests(uows: UnitOfWorkFactory) -> list[ExportRequest]:
    async with uows() as uow:
        return list((await uow.session.exec(select(ExportRequest).order_by(col(ExportRequest.id)))).all())


def _saved(printed: list[str]) -> list[str]:
    return [line for line in printed if "saved to" in line]


async def test_a_second_tap_while_the_file_is_prepared_starts_no_second_export(
    uows: UnitOfWorkFactory,
    en: Localizer,
    world: World,
    make_rig: MakeRig,
) -> None:
    rig = make_rig()
    assert await _tap_xlsx(rig, en, world) == [PREPARING]
    again = await _tap_xlsx(rig, en, world)  # the Export buttons are still under the consultation: tapped again
    assert again == ["This file is already being prepared. It will arrive in this chat when it is ready."]
    handed = (await rig.scheduler.handed()).values()
    assert [job.job for job in handed if job.job == PRODUCE.name] == [PRODUCE.name]  # one export, not two
    printed = await rig.finish()
    assert len(_saved(printed)) == 1, printed
    (request,) = await _requests(uows)
    assert request.status is ExportStatus.SENT and request.active_key is None
    # Once it has come, the same file may be asked for again.
    rig.session.deliver("committee", SendText(TITLE, buttons=export_keyboard(en, world.consultation_id)))
    assert await rig.session.feed("1") == [PREPARING]
    assert len(_saved(await rig.finish())) == 1


async def test_a_resident_is_answered_while_an_export_is_being_made(
    uows: UnitOfWorkFactory,
    en: Localizer,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    make_rig: MakeRig,
) -> None:
    """The export is held still in the middle of its work, its read transaction open and its figures computed: a
    resident's /menu is answered meanwhile (on SQLite it would wait for ever if the job held the gate that makes the
    units of work of a process take turns, or if the reader blocked the writer)."""
    inside, release = threading.Event(), threading.Event()
    real = consultation.outcome.compute_outcome

    async def held(*args: Any, **kwargs: Any) -> Any:
        outcome = await real(*args, **kwargs)
        inside.set()
        release.wait(timeout=60)  # the worker's own loop, in its own thread: only the export waits
        return outcome

    monkeypatch.setattr(bot.exports.consultation, "compute_outcome", held)
    rig = make_rig()
    assert await _tap_xlsx(rig, en, world) == [PREPARING]
    job = asyncio.create_task(rig.scheduler.run_due())
    try:
        for _ in range(600):
            if inside.is_set():
                break
            await asyncio.sleep(0.05)
        assert inside.is_set(), "the export never started"
        await rig.session.feed("/as r1")
        menu = await asyncio.wait_for(rig.session.feed("/menu"), timeout=10)
        assert menu and not any("Something went wrong" in line for line in menu), menu
        # A write while the export reads: the resident changes their language and back.
        assert await asyncio.wait_for(rig.session.feed("/language"), timeout=10)
        assert not job.done()
    finally:
        release.set()
    await asyncio.wait_for(job, timeout=60)
    await rig.session.feed("/as committee")
    assert len(_saved(await rig.delivery())) == 1
    assert rig.saved("committee", XLSX_NAME).exists()


async def test_a_file_over_the_upload_limit_is_not_sent_and_the_requester_is_pointed_to_linli_export(
    uows: UnitOfWorkFactory,
    en: Localizer,
    world: World,
    tmp_path: Path,
    make_rig: MakeRig,
) -> None:
    rig = make_rig(upload_limit=2 * 1024)  # Telegram's is 50 MB
    assert await _tap_xlsx(rig, en, world) == [PREPARING]
    printed = await rig.finish()
    text = " ".join(printed)
    assert "more than the 0 MB Telegram lets a bot send" in text, printed
    assert f"linli export consultation {world.consultation_id} --format xlsx" in text
    assert not _saved(printed)
    assert not (tmp_path / "files" / "committee").exists()
    assert all(row.kind is MessageKind.TEXT for row in await outbox_rows(uows))
    (request,) = await _requests(uows)
    assert request.status is ExportStatus.TOO_LARGE and request.size_bytes and request.size_bytes > 2 * 1024
    assert not (rig.exports_dir / str(request.id)).exists()  # the file made is not kept


async def test_the_permission_is_checked_again_when_the_job_runs(
    uows: UnitOfWorkFactory,
    en: Localizer,
    world: World,
    make_rig: MakeRig,
) -> None:
    rig = make_rig()
    assert await _tap_xlsx(rig, en, world) == [PREPARING]
    async with uows() as uow:  # the committee member leaves the committee before the job runs
        memberships = select(Membership.id).where(Membership.person_id == world.committee).scalar_subquery()
        await uow.session.exec(
            delete(MembershipRole).where(
                col(MembershipRole.membership_id).in_(memberships), col(MembershipRole.role) == Role.COMMITTEE_MEMBER
            )
        )
        await uow.commit()
    printed = await rig.finish()
    assert "Only the committee and the community's staff can export a consultation's outcome." in printed
    assert not _saved(printed)
    (request,) = await _requests(uows)
    assert request.status is ExportStatus.REFUSED


async def test_a_request_outlives_a_crash_before_its_job(
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    en: Localizer,
    world: World,
    make_rig: MakeRig,
) -> None:
    rig = make_rig()
    assert await _tap_xlsx(rig, en, world) == [PREPARING]
    # The process dies before the job ran: nothing was handed to its scheduler, the request's schedule row stays.
    # The next start replays it and makes the file.
    restarted = FakeScheduler(clock, rig.registry, uows)
    await restarted.start()
    assert [job.job for job in restarted.jobs.values() if job.job == PRODUCE.name] == [PRODUCE.name]
    await restarted.run_due()
    assert len(_saved(await rig.delivery())) == 1


async def test_forget_takes_the_requests_and_a_file_being_made_is_not_sent(
    uows: UnitOfWorkFactory,
    en: Localizer,
    world: World,
    make_rig: MakeRig,
) -> None:
    rig = make_rig()
    assert await _tap_xlsx(rig, en, world) == [PREPARING]
    async with uows() as uow:
        await forget(uow, world.committee)
        await uow.commit()
    assert await _requests(uows) == []
    assert await rig.finish() == []
    assert await outbox_rows(uows) == []


async def test_the_production_worker_makes_the_file_in_a_process_of_its_own(
    uows: UnitOfWorkFactory,
    en: Localizer,
    world: World,
    make_rig: MakeRig,
) -> None:
    rig = make_rig(worker=Worker(processes=True))
    assert await _tap_xlsx(rig, en, world) == [PREPARING]
    printed = await rig.finish()
    assert len(_saved(printed)) == 1, printed
    workbook = openpyxl.load_workbook(rig.saved("committee", XLSX_NAME), read_only=True)
    assert TITLE in [row[1] for row in workbook["Summary"].iter_rows(values_only=True)]
    (document,) = [row for row in await outbox_rows(uows) if row.kind is MessageKind.DOCUMENT]
    assert document.file_ref == local_ref(f"1/{XLSX_NAME}") and document.file_name == XLSX_NAME


async def test_the_telegram_transport_uploads_a_stored_file(tmp_path: Path) -> None:
    files = tmp_path / "exports"
    (files / "7").mkdir(parents=True)
    content = b"PK\x03\x04 a workbook"
    (files / "7" / XLSX_NAME).write_bytes(content)
    row = OutboxMessage(
        channel="telegram",
        chat_id="4242",
        kind=MessageKind.DOCUMENT,
        text="The outcome of “<b>小区停车位改造</b>”.",
        file_ref=local_ref(f"7/{XLSX_NAME}"),
        file_name=XLSX_NAME,
        not_before=FakeClock().now(),
        created_at=FakeClock().now(),
    )
    async with FakeBotApi() as fake:
        transport = TelegramTransport(fake.token, api_base=fake.base_url, files_dir=files)
        try:
            assert isinstance(await transport.send(row), Delivered)
            # A reference that climbs out of the folder is refused, never read.
            escape = OutboxMessage.model_validate({**row.model_dump(), "file_ref": local_ref("../../etc/passwd")})
            assert not isinstance(await transport.send(escape), Delivered)
        finally:
            await transport.aclose()
        (sent,) = fake.messages_to(4242)
    assert sent.method == "sendDocument"
    assert sent.document_name == XLSX_NAME and sent.document_bytes == content
    assert sent.plain_text == "The outcome of “小区停车位改造”."


async def test_the_files_made_are_removed_once_kept_long_enough(
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    en: Localizer,
    world: World,
    make_rig: MakeRig,
) -> None:
    rig = make_rig()
    assert await _tap_xlsx(rig, en, world) == [PREPARING]
    assert len(_saved(await rig.finish())) == 1
    (request,) = await _requests(uows)
    folder = rig.exports_dir / str(request.id)
    assert (folder / XLSX_NAME).exists()  # kept for a delivery that may be held back
    assert await rig.jobs.sweep() == 0
    clock.advance(FILES_KEPT + timedelta(minutes=1))
    assert await rig.jobs.sweep() == 1
    assert not folder.exists()
