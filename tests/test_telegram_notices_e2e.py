"""Notices on Telegram, end to end: the real router and handlers behind the aiogram adapter, the delivery
engine's sender with its Telegram transport, both over real HTTP against the fake Bot API, on SQLite and on
PostgreSQL.

A community worker composes a notice in her chat and sends it to building 3 with "please confirm"; the
residents of building 3 get it in their own language with an Acknowledge button, a neighbour of building 7 does
not; one resident acknowledges, the button turns into "✓ Acknowledged", and the worker's figures show it."""

from __future__ import annotations

import re

import pytest

from bot.channels.telegram_delivery import TelegramTransport
from bot.delivery.sender import Sender, SenderOptions
from bot.notices.buttons import AcknowledgeNotice, FormAction, NoticeForm, NoticeToggle, Toggle, ViewNotice
from bot.notices.progress_editor import ProgressEditor
from bot.rendering import Localizer, Localizers
from community.communities import add_community
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from tests.support.fake_bot_api import FakeBotApi, SentMessage
from tests.support.telegram import TelegramUser, callback_data, labels, member_on_telegram, seen

pytestmark = pytest.mark.e2e

COMMUNITY = "康乐社区"
LI_NA = 3001  # community worker, reads Chinese
WANG_FANG = 3002  # 3号楼, reads Chinese
CHEN_XIAO = 3003  # 3号楼, reads English
ZHAO_LEI = 3004  # 7号楼

BODY = "明天上午9点到12点3号楼停水，请提前储水。"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
async def community_id(uows: UnitOfWorkFactory) -> int:
    """康乐社区: 李娜 works there; 王芳 and Chen Xiao live in 3号楼, 赵磊 in 7号楼 (all on Telegram)."""
    async with uows() as uow:
        community = await add_community(uow, name=COMMUNITY, kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        people = (
            (LI_NA, "李娜", "zh-hans", None, {Role.COMMUNITY_WORKER}),
            (WANG_FANG, "王芳", "zh-hans", ("3号楼 2单元 501", "3号楼"), {Role.RESIDENT}),
            (CHEN_XIAO, "Chen Xiao", "en", ("3号楼 1单元 302", "3号楼"), {Role.RESIDENT}),
            (ZHAO_LEI, "赵磊", "zh-hans", ("7号楼 1单元 101", "7号楼"), {Role.RESIDENT}),
        )
        for user_id, name, language, home, roles in people:
            label, building = home if home is not None else (None, None)
            await member_on_telegram(uow, community.id, user_id, name, language, roles, home=label, building=building)
        await uow.commit()
    return community.id


async def deliver(fake: FakeBotApi, uows: UnitOfWorkFactory, localizers: Localizers) -> None:
    """The delivery engine, as `linli run` runs it, until the outbox has nothing due."""
    transport = TelegramTransport(fake.token, api_base=fake.base_url)
    transports = {"telegram": transport}
    editor = ProgressEditor(uows, localizers, transports, every=0.0)
    sender = Sender(uows, transports, SenderOptions(flush_interval=0.01), on_progress=editor)
    try:
        await sender.run(until_idle=True)
    finally:
        await editor.aclose()
        await transport.aclose()


async def shows(fake: FakeBotApi, chat_id: int, first_line: str) -> SentMessage:
    """The chat's latest message (or edit) once it starts with ``first_line``: for the worker's chat, where
    progress edits arrive at the sender's pace, so counting messages would not do."""

    def latest() -> SentMessage | None:
        sent = fake.messages_to(chat_id)
        return sent[-1] if sent and (sent[-1].plain_text or "").startswith(first_line) else None

    await fake.wait_for(lambda _: latest() is not None)
    found = latest()
    assert found is not None
    return found


async def test_a_worker_sends_a_notice_residents_acknowledge_and_the_figures_show_it(
    telegram: FakeBotApi, uows: UnitOfWorkFactory, localizers: Localizers, community_id: int, zh: Localizer
) -> None:
    li_na = TelegramUser(telegram, LI_NA, "李娜", "zh-hans")
    wang = TelegramUser(telegram, WANG_FANG, "王芳", "zh-hans")
    chen = TelegramUser(telegram, CHEN_XIAO, "Chen Xiao", "en")

    # The worker writes the notice; the audience question follows, in Chinese.
    li_na.sends("/notice")
    (ask,) = await li_na.receives(1)
    assert seen(ask).splitlines()[0] == zh.text("New notice to %(community)s", community=COMMUNITY)
    li_na.sends(BODY)
    (audience,) = await li_na.receives(1)
    assert seen(audience).splitlines()[0] == zh.text("Who should receive the notice?")

    # Building 3 only: a list of buildings, toggled by index, then back and on to the options.
    li_na.taps(audience, NoticeForm(FormAction.BUILDINGS).pack())
    (buildings,) = await li_na.receives(1)
    assert buildings.method == "editMessageText" and labels(buildings)[:2] == ["3号楼", "7号楼"]
    li_na.taps(buildings, NoticeToggle(Toggle.BUILDING, 0).pack())
    (chosen,) = await li_na.receives(1)
    assert labels(chosen)[:2] == ["✓ 3号楼", "7号楼"]
    assert zh.plural("%(num)s person would receive it now.", "%(num)s people would receive it now.", 2) in seen(chosen)
    li_na.taps(chosen, NoticeForm(FormAction.BACK).pack())
    (back,) = await li_na.receives(1)
    li_na.taps(back, NoticeForm(FormAction.AUDIENCE_DONE).pack())
    (options,) = await li_na.receives(1)
    li_na.taps(options, NoticeToggle(Toggle.ACK).pack())
    (options,) = await li_na.receives(1)
    assert "✓ " + zh.label("Please confirm") in labels(options)

    # The preview, then Send.
    li_na.taps(options, NoticeForm(FormAction.PREVIEW).pack())
    intro, preview, summary = await li_na.receives(3)
    assert intro.method == "editMessageText"
    assert seen(intro) == zh.text("Preview: this is the notice exactly as residents will receive it.")
    assert labels(preview) == [zh.label("✅ Acknowledge")]
    assert callback_data(preview) == [AcknowledgeNotice(0).pack()]
    li_na.taps(preview, AcknowledgeNotice(0).pack())  # the preview's button only explains itself
    await telegram.wait_for(lambda _: any(a.user_id == LI_NA and a.text for a in telegram.callback_answers))
    li_na.taps(summary, NoticeForm(FormAction.SEND).pack())
    (published,) = await li_na.receives(1)
    assert seen(published).splitlines()[0] == zh.text("Notice #%(id)s is on its way.", id=1)

    await deliver(telegram, uows, localizers)

    # 王芳 gets exactly what the worker previewed, with the Acknowledge button for this notice.
    (notice,) = await wang.receives(1)
    assert seen(notice) == seen(preview)
    assert BODY in seen(notice) and seen(notice).startswith(f"📢 {COMMUNITY} · {zh.label('General')}")
    assert callback_data(notice) == [AcknowledgeNotice(1).pack()]
    # Chen Xiao reads English: the same notice with an English frame and button.
    (english,) = await chen.receives(1)
    assert seen(english).splitlines()[0] == f"📢 {COMMUNITY} · General"
    assert labels(english) == ["✅ Acknowledge"]
    # 赵磊 lives in building 7: nothing.
    assert telegram.messages_to(ZHAO_LEI) == []

    # 王芳 acknowledges: the button becomes "✓ 已确认" in place, the text unchanged.
    wang.taps(notice, AcknowledgeNotice(1).pack())
    (acknowledged,) = await wang.receives(1)
    assert acknowledged.method == "editMessageText" and acknowledged.message_id == notice.message_id
    assert seen(acknowledged) == seen(notice)
    assert labels(acknowledged) == [zh.label("✓ Acknowledged")]
    await telegram.wait_for(lambda _: any(a.user_id == WANG_FANG for a in telegram.callback_answers))
    thanks = [a.text for a in telegram.callback_answers if a.user_id == WANG_FANG]
    assert thanks == [zh.label("Thank you. Your confirmation has been counted.")]
    # A second tap changes nothing and says so.
    wang.taps(acknowledged, AcknowledgeNotice(1).pack())
    await telegram.wait_for(lambda _: len([a for a in telegram.callback_answers if a.user_id == WANG_FANG]) == 2)
    assert telegram.callback_answers[-1].text == zh.label("You have already acknowledged this notice.")

    # The worker's progress message ended as the summary: both delivered.
    gone_out = zh.text("Notice #%(id)s has gone out", id=1)
    progress = [m for m in telegram.messages_to(LI_NA) if m.plain_text and m.plain_text.startswith(gone_out)]
    assert progress, [m.plain_text for m in telegram.messages_to(LI_NA)]
    assert zh.text("Delivered: %(sent)s of %(total)s", sent=2, total=2) in seen(progress[-1]).splitlines()

    # The figures: two delivered in building 3, one acknowledged.
    li_na.sends("/notices")
    listing = await shows(telegram, LI_NA, zh.text("Recent notices of %(community)s", community=COMMUNITY))
    assert callback_data(listing) == [ViewNotice(1).pack()]
    li_na.taps(listing, ViewNotice(1).pack())
    figures = await shows(telegram, LI_NA, zh.text("Notice #%(id)s", id=1))
    assert figures.method == "editMessageText" and figures.message_id == listing.message_id
    lines = seen(figures).splitlines()
    assert zh.text("Acknowledged: %(acknowledged)s", acknowledged=1) in lines
    assert (
        zh.text(
            "%(building)s: %(sent)s of %(total)s delivered, %(failed)s failed, %(unreachable)s blocked, "
            "%(acknowledged)s acknowledged",
            building="3号楼",
            sent=2,
            total=2,
            failed=0,
            unreachable=0,
            acknowledged=1,
        )
        in lines
    )
    assert CJK.search(seen(figures))


async def test_a_photo_notice_is_previewed_and_delivered_as_the_same_photo(
    telegram: FakeBotApi, uows: UnitOfWorkFactory, localizers: Localizers, community_id: int, zh: Localizer
) -> None:
    li_na = TelegramUser(telegram, LI_NA, "李娜", "zh-hans")
    chen = TelegramUser(telegram, CHEN_XIAO, "Chen Xiao", "en")

    li_na.sends("/notice")
    await li_na.receives(1)
    _, file_id = telegram.push_photo(LI_NA, "周六上午社区大扫除，欢迎参加！", language_code="zh-hans")
    (audience,) = await li_na.receives(1)
    li_na.taps(audience, NoticeForm(FormAction.AUDIENCE_DONE).pack())
    (options,) = await li_na.receives(1)
    assert zh.text("Attachment: a photo or document") in seen(options).splitlines()
    li_na.taps(options, NoticeToggle(Toggle.ACK).pack())
    (options,) = await li_na.receives(1)
    li_na.taps(options, NoticeForm(FormAction.PREVIEW).pack())
    _, preview, summary = await li_na.receives(3)
    # The preview is the worker's own photo, sent again by its file id, with the notice as its caption.
    assert (preview.method, preview.file_id) == ("sendPhoto", file_id)
    assert "周六上午社区大扫除，欢迎参加！" in seen(preview).splitlines()
    li_na.taps(summary, NoticeForm(FormAction.SEND).pack())
    await li_na.receives(1)

    await deliver(telegram, uows, localizers)

    (photo,) = await chen.receives(1)
    assert (photo.method, photo.file_id) == ("sendPhoto", file_id)
    assert seen(photo).splitlines()[:3] == [f"📢 {COMMUNITY} · General", "", "周六上午社区大扫除，欢迎参加！"]
    assert [m.method for m in telegram.messages_to(ZHAO_LEI)] == ["sendPhoto"]  # the whole community this time

    # Acknowledging a photo swaps only its button: the photo and its caption stay as they were.
    assert labels(photo) == ["✅ Acknowledge"]
    chen.taps(photo, AcknowledgeNotice(1).pack())
    (acknowledged,) = await chen.receives(1)
    assert (acknowledged.method, acknowledged.message_id) == ("editMessageReplyMarkup", photo.message_id)
    assert labels(acknowledged) == ["✓ Acknowledged"]
