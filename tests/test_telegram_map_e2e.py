"""The outcome's picture of the map on Telegram, end to end: a consultation of six residents closes, the jobs'
process computes the outcome and draws each participant's picture, and the delivery engine's Telegram transport
sends each one the outcome text and then the picture, uploaded with sendPhoto (multipart, a ``photo`` field), to
the fake Bot API over real HTTP. Both databases."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.channels.telegram_delivery import TelegramTransport
from bot.consultations.jobs import register_consultation_jobs
from bot.consultations.outcome_pictures import PLACED, OutcomePictures
from bot.delivery.sender import Sender, SenderOptions
from bot.rendering import Localizer, Localizers
from bot.scheduling import JobRegistry
from bot.worker import Worker
from community.clock import FakeClock
from community.communities import add_community
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from consultation.consultations import (
    ConsultationDraft,
    VoteValue,
    add_statement,
    close_consultation,
    create,
    open_consultation,
    vote,
)
from tests.support.fake_bot_api import FakeBotApi
from tests.support.fake_scheduler import FakeScheduler
from tests.support.telegram import member_on_telegram, seen

pytestmark = pytest.mark.e2e

WORKER = 4301
RESIDENTS = (4401, 4402, 4403, 4404, 4405, 4406)  # the first three agree with the first half, the others the other
SPARSE = 4407  # votes on one statement only: too few to be placed
TITLE = "东门空地"
STATEMENTS = tuple(f"第{n}条意见。" for n in range(1, 9))


@pytest.fixture
async def consultation_id(uows: UnitOfWorkFactory, clock: FakeClock) -> int:
    async with uows() as uow:
        community = await add_community(uow, name="康乐社区", kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        worker = await member_on_telegram(uow, community.id, WORKER, "李娜", "en", {Role.COMMUNITY_WORKER})
        people = {}
        for n, user in enumerate((*RESIDENTS, SPARSE)):
            language = "en" if user in (RESIDENTS[0], SPARSE) else "zh-hans"
            people[user] = await member_on_telegram(
                uow, community.id, user, f"居民{n}", language, {Role.RESIDENT}, home=f"{n}01"
            )
        consultation = await create(
            uow,
            worker,
            ConsultationDraft(
                community_id=community.id,
                title=TITLE,
                background="改建成什么？",
                language="zh_Hans",
                opens_at=clock.now(),
                closes_at=clock.now() + timedelta(days=3),
            ),
        )
        assert consultation.id is not None
        statements = [(await add_statement(uow, worker, consultation.id, text)).id for text in STATEMENTS]
        await open_consultation(uow, consultation.id)
        await uow.commit()
    for index, user in enumerate(RESIDENTS):
        for number, statement in enumerate(statements):
            assert statement is not None
            agrees = (number < len(statements) // 2) == (index < len(RESIDENTS) // 2)
            async with uows() as uow:
                await vote(uow, people[user], statement, VoteValue.AGREE if agrees else VoteValue.DISAGREE)
                await uow.commit()
    async with uows() as uow:
        assert statements[0] is not None
        await vote(uow, people[SPARSE], statements[0], VoteValue.AGREE)
        assert await close_consultation(uow, consultation.id, worker)
        await uow.commit()
    return consultation.id


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def _decoded(content: bytes | None) -> Image.Image:
    assert content is not None
    image = Image.open(io.BytesIO(content))
    image.load()
    assert image.format == "PNG"
    return image


async def test_each_participant_gets_the_outcome_then_their_own_map_as_an_uploaded_photo(
    uows: UnitOfWorkFactory,
    clock: FakeClock,
    localizers: Localizers,
    en: Localizer,
    zh: Localizer,
    fake: FakeBotApi,
    consultation_id: int,
    tmp_path: Path,
) -> None:
    files = tmp_path / "exports"
    registry = JobRegistry()
    register_consultation_jobs(registry, uows, Worker(processes=False), pictures=OutcomePictures(files, localizers))
    await FakeScheduler(clock, registry, uows).run_due()  # the outcome job the close asked for
    transport = TelegramTransport(fake.token, api_base=fake.base_url, files_dir=files)
    sender = Sender(uows, {"telegram": transport}, SenderOptions(rate=1000.0, flush_interval=0.01))
    try:
        await asyncio.wait_for(sender.run(until_idle=True), timeout=60)
    finally:
        await sender.aclose()

    outcome, photo = fake.messages_to(RESIDENTS[0])
    assert outcome.method == "sendMessage" and TITLE in seen(outcome)
    assert photo.method == "sendPhoto"
    assert seen(photo) == en.text(PLACED, title=TITLE)
    mine = _decoded(photo.photo_bytes)
    assert mine.width == 1080
    # Another bloc's resident, in Chinese: their own picture, another one.
    (_, theirs) = fake.messages_to(RESIDENTS[-1])
    assert theirs.method == "sendPhoto" and seen(theirs) == zh.text(PLACED, title=TITLE)
    assert theirs.photo_bytes != photo.photo_bytes
    _decoded(theirs.photo_bytes)
    # Two votes only, but fewer than 15 people have the 7 votes to be placed: placed all the same, as in Pol.is.
    (_, sparse) = fake.messages_to(SPARSE)
    assert sparse.method == "sendPhoto" and seen(sparse) == en.text(PLACED, title=TITLE)
    assert sparse.photo_bytes not in (photo.photo_bytes, theirs.photo_bytes)
    _decoded(sparse.photo_bytes)
    assert fake.messages_to(WORKER) == []  # she ran it and did not vote: no outcome, no picture
