"""An export asked for on Telegram, end to end: the worker taps Spreadsheet (XLSX) under the staff overview (the
aiogram adapter over real HTTP against the fake Bot API), is answered "preparing…" at once, and the file comes
as an uploaded document once the jobs' process has made it and the delivery engine has sent it. Both databases."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_router
from bot.channels.telegram_delivery import TelegramTransport
from bot.consultations.buttons import ExportConsultation, ExportFormat
from bot.context import BotInfo
from bot.conversation import Conversation
from bot.delivery.sender import Sender, SenderOptions
from bot.exports.jobs import ExportJobs, register_export_jobs
from bot.rendering import Localizer, Localizers
from bot.scheduling import JobRegistry
from bot.worker import Worker
from community.clock import FakeClock
from community.communities import add_community
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import ConsultationDraft, add_statement, create, open_consultation
from tests.support.fake_bot_api import FakeBotApi
from tests.support.fake_scheduler import FakeScheduler
from tests.support.telegram import TelegramUser, callback_data, member_on_telegram, running_bot, seen

pytestmark = pytest.mark.e2e

LI_NA = 4101  # community worker, reads English
TITLE = "东门路灯"


@pytest.fixture
async def consultation_id(uows: UnitOfWorkFactory, clock: FakeClock) -> int:
    async with uows() as uow:
        community = await add_community(uow, name="康乐社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        worker = await member_on_telegram(uow, community.id, LI_NA, "李娜", "en", {Role.COMMUNITY_WORKER})
        for n in range(5):  # the audience is at least k = 5
            await member_on_telegram(uow, community.id, 4200 + n, f"居民{n}", "zh-hans", {Role.RESIDENT}, home=f"{n}01")
        consultation = await create(
            uow,
            worker,
            ConsultationDraft(
                community_id=community.id,
                title=TITLE,
                background="东门晚上太暗。",
                language="zh_Hans",
                opens_at=clock.now(),
                closes_at=clock.now() + timedelta(days=3),
            ),
        )
        assert consultation.id is not None
        await add_statement(uow, worker, consultation.id, "东门应装路灯。")
        await open_consultation(uow, consultation.id)
        await uow.commit()
    return consultation.id


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def test_the_worker_taps_export_is_told_it_is_being_prepared_and_gets_the_document(
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    engine: AsyncEngine,
    localizers: Localizers,
    en: Localizer,
    fake: FakeBotApi,
    consultation_id: int,
    tmp_path: Path,
) -> None:
    registry = JobRegistry()
    scheduler = FakeScheduler(clock, registry, uows)
    files = tmp_path / "exports"
    jobs = ExportJobs(uows, localizers, files, worker=Worker(processes=False))
    register_export_jobs(registry, jobs)
    conversation = Conversation(uows, build_router(), localizers, BotInfo(fake.bot_username))
    li_na = TelegramUser(fake, LI_NA, "李娜", "en")
    xlsx = ExportConsultation(consultation_id, ExportFormat.XLSX).pack()
    async with running_bot(conversation, fake):
        li_na.sends("/consultations")
        (overview,) = await li_na.receives(1)
        assert xlsx in callback_data(overview)
        li_na.taps(overview, xlsx)
        (preparing,) = await li_na.receives(1)
        assert seen(preparing) == en.label("Preparing the file… It will arrive in this chat when it is ready.")

    await scheduler.run_due()  # the jobs' process makes it
    transport = TelegramTransport(fake.token, api_base=fake.base_url, files_dir=files)
    sender = Sender(uows, {"telegram": transport}, SenderOptions(rate=1000.0, flush_interval=0.01))
    try:
        await asyncio.wait_for(sender.run(until_idle=True), timeout=60)
    finally:
        await sender.aclose()
    (document,) = await li_na.receives(1)
    assert document.method == "sendDocument"
    assert document.document_name == f"consultation-{consultation_id}-outcome.xlsx"
    assert seen(document) == f"The outcome of “{TITLE}”."
    assert document.document_bytes is not None
    workbook = openpyxl.load_workbook(io.BytesIO(document.document_bytes), read_only=True)
    assert TITLE in [row[1] for row in workbook["Summary"].iter_rows(values_only=True)]
