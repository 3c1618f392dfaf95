"""Delivery on Telegram, end to end, where it used to stall (issue 9): a database first run in the console holds
the demo's console people, whom no Telegram process reaches; and Telegram answers 429 to the edit that carries
the author's final summary. The real router and handlers behind the aiogram adapter, the sender with its Telegram
transport and the progress editor, over real HTTP against the fake Bot API, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.channels.telegram_delivery import TelegramTransport
from bot.cli import _status_lines
from bot.delivery.sender import Sender, SenderOptions
from bot.delivery.transport import Transport
from bot.notices.buttons import FormAction, NoticeForm, ViewNotice
from bot.notices.progress_editor import ProgressEditor
from bot.rendering import Localizer, Localizers
from community import outbox
from community.communities import add_community
from community.demo import WUTONG
from community.models import Community
from community.notice_models import DeliveryStatus, Notice, NoticeStatus
from community.outbox import Outgoing
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from i18n import Catalogs
from tests.support.fake_bot_api import FakeBotApi, SentMessage
from tests.support.outbox import make_notice, outbox_rows
from tests.support.telegram import TelegramUser, member_on_telegram, seen

pytestmark = pytest.mark.e2e

LI_NA = 3101  # community worker on Telegram
WANG_FANG = 3102  # resident on Telegram
BODY = "明天上午9点到12点停水，请提前储水。"


async def community_named(uows: UnitOfWorkFactory, name: str) -> int:
    async with uows() as uow:
        community_id = (await uow.session.exec(select(Community.id).where(Community.name == name))).one()
    assert community_id is not None
    return community_id


async def on_telegram(uows: UnitOfWorkFactory, community_id: int) -> None:
    async with uows() as uow:
        await member_on_telegram(uow, community_id, LI_NA, "李娜", "zh-hans", {Role.COMMUNITY_WORKER})
        await member_on_telegram(uow, community_id, WANG_FANG, "王芳", "zh-hans", {Role.RESIDENT}, home="1号楼 101")
        await uow.commit()


async def notice_to_everyone(li_na: TelegramUser) -> None:
    """The worker sends a notice to her whole community through the chat."""
    li_na.sends("/notice")
    await li_na.receives(1)
    li_na.sends(BODY)
    (audience,) = await li_na.receives(1)
    li_na.taps(audience, NoticeForm(FormAction.AUDIENCE_DONE).pack())
    (options,) = await li_na.receives(1)
    li_na.taps(options, NoticeForm(FormAction.PREVIEW).pack())
    _, _, summary = await li_na.receives(3)
    li_na.taps(summary, NoticeForm(FormAction.SEND).pack())
    await li_na.receives(1)


def sender_of_linli_run(
    uows: UnitOfWorkFactory, transports: dict[str, Transport], editor: ProgressEditor, *, alone: bool = True
) -> Sender:
    """The sender as `linli run` wires it (alone=True: it serves the database's one channel), or as `linli deliver`
    does (alone=False: an extra sender that leaves other channels to their process)."""
    return Sender(uows, transports, SenderOptions(flush_interval=0.01), on_progress=editor, ends_other_channels=alone)


async def latest_starting(fake: FakeBotApi, chat_id: int, first_line: str) -> SentMessage:
    def latest() -> SentMessage | None:
        sent = fake.messages_to(chat_id)
        return sent[-1] if sent and (sent[-1].plain_text or "").startswith(first_line) else None

    await fake.wait_for(lambda _: latest() is not None, timeout=15)
    found = latest()
    assert found is not None
    return found


@pytest.mark.usefixtures("demo")
async def test_a_notice_ends_on_a_database_first_run_in_the_console(
    telegram: FakeBotApi, uows: UnitOfWorkFactory, localizers: Localizers, zh: Localizer
) -> None:
    """梧桐社区 of the demo has eight console people; two more join it on Telegram. A notice to everyone goes out:
    the two Telegram messages are delivered, the eight console ones end as "not reachable on this channel", and
    the notice is over: the author's summary, /notices and `linli notices status` all say so."""
    await on_telegram(uows, await community_named(uows, WUTONG))
    li_na = TelegramUser(telegram, LI_NA, "李娜", "zh-hans")
    await notice_to_everyone(li_na)
    transport = TelegramTransport(telegram.token, api_base=telegram.base_url)
    transports: dict[str, Transport] = {"telegram": transport}
    editor = ProgressEditor(uows, localizers, transports, every=0.0)

    # `linli deliver` beside a console `linli run` would not end the console's rows: they wait for their process.
    extra = sender_of_linli_run(uows, transports, editor, alone=False)
    await extra.run(until_idle=True)
    rows = await outbox_rows(uows)
    assert sorted(row.status for row in rows if row.channel == "console") == [DeliveryStatus.QUEUED] * 8
    async with uows() as uow:
        notice = await uow.session.get(Notice, 1)
        assert notice is not None and notice.status == NoticeStatus.SENDING

    # `linli run` on Telegram serves the database alone: the console's rows end at once.
    try:
        await sender_of_linli_run(uows, transports, editor).run(until_idle=True)
        summary = await latest_starting(telegram, LI_NA, zh.text("Notice #%(id)s has gone out", id=1))
    finally:
        await editor.aclose()
        await transport.aclose()
    lines = seen(summary).splitlines()
    assert zh.text("Delivered: %(sent)s of %(total)s", sent=2, total=10) in lines
    assert zh.text("Not reachable on this channel: %(count)s", count=8) in lines
    assert "100%" in seen(summary)
    rows = await outbox_rows(uows)
    assert sorted(row.status for row in rows if row.channel == "console") == [DeliveryStatus.NO_CHANNEL] * 8
    async with uows() as uow:
        notice = await uow.session.get(Notice, 1)
        assert notice is not None and notice.status == NoticeStatus.SENT
        counts = await outbox.status_counts(uow, 1)

    li_na.sends("/notices")
    listing = await latest_starting(telegram, LI_NA, zh.text("Recent notices of %(community)s", community=WUTONG))
    li_na.taps(listing, ViewNotice(1).pack())
    figures = await latest_starting(telegram, LI_NA, zh.text("Notice #%(id)s", id=1) + " ·")
    assert zh.text("Not reachable on this channel: %(count)s", count=8) in seen(figures).splitlines()

    # `linli notices status 1`, in English: the bar is full, the eight counted as not reachable.
    en = Catalogs().get("en")
    assert _status_lines(en, 1, counts) == [
        f"Notice 1: {'█' * 30} 2 of 10 sent",
        "  queued: 0   sent: 2   not reachable on this channel: 8",
    ]


async def test_rows_of_a_channel_nobody_serves_end_only_for_the_sender_that_serves_alone(
    uows: UnitOfWorkFactory, telegram: FakeBotApi
) -> None:
    notice_id = await make_notice(uows)
    async with uows() as uow:
        rows = [Outgoing("console", "wang", "停水", notice_id=notice_id), Outgoing("telegram", "7001", "停水")]
        await outbox.enqueue(uow, rows, not_before=uow.clock.now())
        await uow.commit()
    transport = TelegramTransport(telegram.token, api_base=telegram.base_url)
    try:
        await Sender(uows, {"telegram": transport}, SenderOptions(flush_interval=0.01)).run(until_idle=True)
        assert [row.status for row in await outbox_rows(uows)] == [DeliveryStatus.QUEUED, DeliveryStatus.SENT]
        alone = Sender(uows, {"telegram": transport}, SenderOptions(flush_interval=0.01), ends_other_channels=True)
        await alone.run(until_idle=True)
    finally:
        await transport.aclose()
    ended, sent = await outbox_rows(uows)
    assert (ended.status, sent.status) == (DeliveryStatus.NO_CHANNEL, DeliveryStatus.SENT)
    assert ended.error is not None and "not reachable on this channel" in ended.error


async def test_the_summary_survives_a_429_on_its_edit(
    telegram: FakeBotApi, uows: UnitOfWorkFactory, localizers: Localizers, zh: Localizer
) -> None:
    """Telegram answers 429 (retry after 1 s) to the edits that would turn the progress message into the summary:
    the editor waits as asked and edits again until it is taken, and the worker sees the end."""
    async with uows() as uow:
        community = await add_community(uow, name="康乐社区", kind=CommunityKind.NEIGHBOURHOOD)
        await uow.commit()
    assert community.id is not None
    await on_telegram(uows, community.id)
    li_na = TelegramUser(telegram, LI_NA, "李娜", "zh-hans")
    await notice_to_everyone(li_na)
    transport = TelegramTransport(telegram.token, api_base=telegram.base_url)
    transports: dict[str, Transport] = {"telegram": transport}
    editor = ProgressEditor(uows, localizers, transports, every=0.0)
    gone_out = zh.text("Notice #%(id)s has gone out", id=1)
    try:
        await editor(frozenset({1}))  # the progress message, before anything is sent
        going = await latest_starting(telegram, LI_NA, zh.text("Notice #%(id)s is going out", id=1))
        # Telegram keeps answering 429 to an edit made before the time it asked for: three edits are refused.
        for _ in range(3):
            telegram.fail_next(
                "editMessageText", 429, "Too Many Requests: retry after 1", retry_after=1, text_contains=gone_out
            )
        await sender_of_linli_run(uows, transports, editor).run(until_idle=True)
        summary = await latest_starting(telegram, LI_NA, gone_out)
    finally:
        await editor.aclose()
        await transport.aclose()
    assert telegram.too_many_requests["injected"] == 3
    assert summary.method == "editMessageText" and summary.message_id == going.message_id
    assert zh.text("Delivered: %(sent)s of %(total)s", sent=2, total=2) in seen(summary).splitlines()
