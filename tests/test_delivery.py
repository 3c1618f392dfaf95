"""The sender (bot/delivery) with the Telegram transport against the fake Bot API over real HTTP, on both databases.

The fake enforces Telegram's limits (tests/support/fake_bot_api.py: TelegramLimits). The 500-recipient test runs
at Telegram's own 30 messages/s (17 s a database); the others run the sender and the fake at 200/s with the real
1/s per chat, to keep the suite quick."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.channels.telegram_delivery import TelegramTransport
from bot.delivery.pacing import TELEGRAM_RATE
from bot.delivery.sender import Backoff, Sender, SenderOptions
from bot.delivery.transport import RetryAfter, SendResult, Transport
from community import outbox
from community.clock import SystemClock
from community.db import session_factory
from community.keys import SiteKey
from community.models import ChannelAccount
from community.notice_models import DeliveryStatus, MessageKind, Notice, OutboxMessage
from community.outbox import OutboxButton, Outgoing
from community.people import identify
from community.unit_of_work import UnitOfWorkFactory
from tests.support.fake_bot_api import FakeBotApi, TelegramLimits
from tests.support.outbox import make_notice
from tests.support.outbox import outbox_rows as rows

RATE = 200.0


@pytest.fixture
def live(engine: AsyncEngine) -> UnitOfWorkFactory:
    """Units of work on the wall clock: the sender's pauses and backoffs are real time."""
    return UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate())


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(limits=TelegramLimits(per_second=RATE)) as fake:
        yield fake


@dataclass
class Call:
    started: float
    ended: float
    chat_id: str
    result: SendResult


class Recording:
    """A transport that notes when each send started and ended, around the real one."""

    channel = "telegram"

    def __init__(self, inner: TelegramTransport) -> None:
        self.inner = inner
        self.calls: list[Call] = []

    async def send(self, message: OutboxMessage) -> SendResult:
        started = time.monotonic()
        result = await self.inner.send(message)
        self.calls.append(Call(started, time.monotonic(), message.chat_id, result))
        return result

    async def edit_text(
        self, chat_id: str, message_id: str, text: str, buttons: tuple[tuple[OutboxButton, ...], ...] = ()
    ) -> SendResult:
        return await self.inner.edit_text(chat_id, message_id, text, buttons)

    async def aclose(self) -> None:
        await self.inner.aclose()


def transport(fake: FakeBotApi) -> TelegramTransport:
    return TelegramTransport(fake.token, api_base=fake.base_url)


async def deliver(
    uows: UnitOfWorkFactory, transports: dict[str, Transport], options: SenderOptions | None = None
) -> Sender:
    """Run a sender until nothing is due, held or unrecorded; close its transports."""
    sender = Sender(uows, transports, options or SenderOptions(rate=RATE))
    try:
        await asyncio.wait_for(sender.run(until_idle=True), timeout=60)
    finally:
        await sender.aclose()
    return sender


async def enqueue(uows: UnitOfWorkFactory, messages: list[Outgoing]) -> None:
    async with uows() as uow:
        await outbox.enqueue(uow, messages, not_before=uow.clock.now())
        await uow.commit()


async def test_500_recipients_all_delivered_within_the_limits(live: UnitOfWorkFactory, fake: FakeBotApi) -> None:
    """450 chats, 50 of them with a second message (a second notice), at Telegram's 30/s: the fake's limiter, at
    30/s overall and 1/s per chat, never had to refuse one."""
    fake.limits = TelegramLimits(per_second=TELEGRAM_RATE)
    notice_id = await make_notice(live)
    ack = ((OutboxButton("确认收到", data="ack:1"),),)
    messages: list[Outgoing] = []
    for i in range(450):  # a chat's second message right behind its first: the per chat limit is what holds it
        messages.append(Outgoing("telegram", str(1000 + i), f"<b>停水通知</b> {i}", notice_id=notice_id, buttons=ack))
        if i < 50:
            messages.append(Outgoing("telegram", str(1000 + i), f"第二条 {i} &amp; 更多"))
    await enqueue(live, messages)
    changed: list[frozenset[int]] = []

    async def progress(notices: frozenset[int]) -> None:
        changed.append(notices)

    sender = Sender(live, {"telegram": transport(fake)}, SenderOptions(rate=TELEGRAM_RATE), on_progress=progress)
    try:
        await asyncio.wait_for(sender.run(until_idle=True), timeout=90)
    finally:
        await sender.aclose()

    stored = await rows(live)
    assert [row.status for row in stored] == [DeliveryStatus.SENT] * 500
    assert all(row.external_id and row.sent_at for row in stored)
    assert fake.limit_violations() == 0, fake.too_many_requests
    assert all(row.attempts == 1 for row in stored)
    assert fake.duplicate_count() == 0
    assert sum(fake.sends_per_chat.values()) == 500
    assert fake.sends_per_chat[1000] == 2 and fake.sends_per_chat[1449] == 1
    (shown,) = fake.messages_to(1001)[:1]
    assert shown.text == "<b>停水通知</b> 1" and shown.buttons() == [{"text": "确认收到", "callback_data": "ack:1"}]
    assert fake.messages_to(1000)[1].plain_text == "第二条 0 & 更多"
    assert changed and set().union(*changed) == {notice_id}


async def test_a_429_pauses_all_sending_at_least_retry_after(live: UnitOfWorkFactory, fake: FakeBotApi) -> None:
    await enqueue(live, [Outgoing("telegram", str(2000 + i), f"通知 {i}") for i in range(20)])
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    recording = Recording(transport(fake))
    await deliver(live, {"telegram": recording})

    (limited,) = [call for call in recording.calls if isinstance(call.result, RetryAfter)]
    after = [call for call in recording.calls if call.started > limited.ended]
    assert after, "nothing was sent after the 429"
    assert min(call.started for call in after) >= limited.ended + 0.99
    stored = await rows(live)
    assert [row.status for row in stored] == [DeliveryStatus.SENT] * 20  # the refused one too, afterwards
    assert fake.sends_per_chat[int(limited.chat_id)] == 1
    refused = next(row for row in stored if row.chat_id == limited.chat_id)
    assert refused.attempts == 1  # the 429 was not counted as an attempt


async def test_blocked_people_are_marked_unreachable_and_skipped(live: UnitOfWorkFactory, fake: FakeBotApi) -> None:
    accounts: dict[str, int] = {}
    for chat in ("3001", "3002", "3003"):
        async with live() as uow:
            identity = await identify(uow, channel="telegram", external_id=chat, chat_id=chat, display_name=chat)
            await uow.commit()
        assert identity.account.id is not None
        accounts[chat] = identity.account.id
    fake.blocked_chats.add(3002)
    two_each = [
        Outgoing("telegram", chat, f"{n} 号通知", account_id=accounts[chat]) for n in (1, 2) for chat in accounts
    ]
    await enqueue(live, two_each)
    await deliver(live, {"telegram": transport(fake)})

    assert fake.forbidden == 1  # the second message to 3002 was never tried
    stored = await rows(live)
    assert Counter((row.chat_id, row.status) for row in stored) == {
        ("3001", DeliveryStatus.SENT): 2,
        ("3003", DeliveryStatus.SENT): 2,
        ("3002", DeliveryStatus.UNREACHABLE): 2,
    }
    async with live() as uow:
        marked = {a.chat_id: a.unreachable_since for a in (await uow.session.exec(select(ChannelAccount))).all()}
    assert marked["3002"] is not None and marked["3001"] is None

    # Later messages to the account are not tried at all.
    await enqueue(live, [Outgoing("telegram", "3002", "3 号通知", account_id=accounts["3002"])])
    await deliver(live, {"telegram": transport(fake)})
    assert fake.forbidden == 1
    assert (await rows(live))[-1].status is DeliveryStatus.UNREACHABLE


async def test_transient_errors_are_retried_then_failed_with_the_reason(
    live: UnitOfWorkFactory, fake: FakeBotApi
) -> None:
    await enqueue(live, [Outgoing("telegram", "4001", "会好的")])
    for _ in range(2):
        fake.fail_next("sendMessage", 502, "Bad Gateway")
    # No backoff, and a short chat interval (the fake does not count refused calls against it): no waiting.
    options = SenderOptions(rate=RATE, max_attempts=3, backoff=Backoff(first=0.0), chat_interval=0.05)
    await deliver(live, {"telegram": transport(fake)}, options)
    (recovered,) = await rows(live)
    assert recovered.status is DeliveryStatus.SENT and recovered.attempts == 3

    await enqueue(live, [Outgoing("telegram", "4002", "不会好")])
    for _ in range(3):
        fake.fail_next("sendMessage", 500, "Internal Server Error")
    await deliver(live, {"telegram": transport(fake)}, options)
    _, failed = await rows(live)
    assert failed.status is DeliveryStatus.FAILED and failed.attempts == 3
    assert failed.error == "Internal Server Error"
    assert fake.sends_per_chat[4002] == 0


async def test_network_errors_are_transient(live: UnitOfWorkFactory) -> None:
    await enqueue(live, [Outgoing("telegram", "4003", "无人接听")])
    nobody = TelegramTransport("123456:TEST", api_base="http://127.0.0.1:9", timeout=2)  # the discard port: closed
    options = SenderOptions(rate=RATE, max_attempts=2, backoff=Backoff(first=0.0), chat_interval=0.05)
    await deliver(live, {"telegram": nobody}, options)
    (row,) = await rows(live)
    assert row.status is DeliveryStatus.FAILED and row.attempts == 2
    assert row.error is not None and row.error.startswith("network: ")
    assert "123456:TEST" not in row.error


async def test_a_message_telegram_refuses_fails_at_once(live: UnitOfWorkFactory, fake: FakeBotApi) -> None:
    await enqueue(live, [Outgoing("telegram", "4004", "R&D <b>未转义")])
    await deliver(live, {"telegram": transport(fake)})
    (row,) = await rows(live)
    assert row.status is DeliveryStatus.FAILED and row.attempts == 1
    assert row.error is not None and "can't parse entities" in row.error


async def test_photos_documents_and_long_captions(live: UnitOfWorkFactory, fake: FakeBotApi) -> None:
    long_caption = "很长的说明。" * 300  # 1800 characters: more than a caption holds
    buttons = ((OutboxButton("确认收到", data="ack:9"),),)
    await enqueue(
        live,
        [
            Outgoing("telegram", "5001", "<b>照片</b>", kind=MessageKind.PHOTO, file_ref="https://example.org/a.jpg"),
            Outgoing(
                "telegram",
                "5002",
                long_caption,
                kind=MessageKind.PHOTO,
                file_ref="https://example.org/b.jpg",
                buttons=buttons,
            ),
        ],
    )
    await deliver(live, {"telegram": transport(fake)})
    assert [row.status for row in await rows(live)] == [DeliveryStatus.SENT] * 2
    (photo,) = fake.messages_to(5001)
    assert photo.method == "sendPhoto" and photo.caption == "<b>照片</b>"
    file, text = fake.messages_to(5002)
    assert file.method == "sendPhoto" and file.caption is None and not file.buttons()
    assert text.method == "sendMessage" and text.text == long_caption and text.buttons()
    assert fake.limit_violations() == 0  # the text waited its chat's interval after the photo


async def test_stopping_puts_unsent_rows_back_and_records_the_rest(live: UnitOfWorkFactory, fake: FakeBotApi) -> None:
    await enqueue(live, [Outgoing("telegram", str(6000 + i), f"通知 {i}") for i in range(300)])
    sender = Sender(live, {"telegram": transport(fake)}, SenderOptions(rate=100))
    running = asyncio.create_task(sender.run())
    await fake.wait_for(lambda sent: len(sent) >= 20, timeout=10)
    await sender.aclose()
    await running

    stored = await rows(live)
    statuses = Counter(row.status for row in stored)
    assert set(statuses) == {DeliveryStatus.SENT, DeliveryStatus.QUEUED}  # none left SENDING
    assert statuses[DeliveryStatus.SENT] == sum(fake.sends_per_chat.values())
    assert all(row.attempts == 0 for row in stored if row.status is DeliveryStatus.QUEUED)


async def test_a_notice_row_and_the_progress_hook(live: UnitOfWorkFactory, fake: FakeBotApi) -> None:
    notice_id = await make_notice(live)
    await enqueue(live, [Outgoing("telegram", "7001", "一", notice_id=notice_id)])
    calls: list[frozenset[int]] = []

    async def progress(notices: frozenset[int]) -> None:
        async with live() as uow:
            assert await outbox.is_settled(uow, notice_id)  # called after the outcome is committed
            assert await uow.session.get(Notice, notice_id) is not None
        calls.append(notices)

    sender = Sender(live, {"telegram": transport(fake)}, SenderOptions(rate=RATE), on_progress=progress)
    await asyncio.wait_for(sender.run(until_idle=True), timeout=30)
    await sender.aclose()
    assert calls == [frozenset({notice_id})]


async def test_a_progress_report_held_back_goes_out_while_the_sender_keeps_running(
    live: UnitOfWorkFactory, fake: FakeBotApi
) -> None:
    """The second notice settles within progress_interval of the first report: its report waits for the interval,
    then goes out on the next tick, though nothing more is recorded and the sender does not stop."""
    first = await make_notice(live)
    await enqueue(live, [Outgoing("telegram", "7001", "一", notice_id=first)])
    reported: asyncio.Queue[frozenset[int]] = asyncio.Queue()

    async def progress(notices: frozenset[int]) -> None:
        await reported.put(notices)

    options = SenderOptions(rate=RATE, progress_interval=3.0)
    sender = Sender(live, {"telegram": transport(fake)}, options, on_progress=progress)
    runner = asyncio.create_task(sender.run())
    try:
        assert await asyncio.wait_for(reported.get(), 15) == frozenset({first})
        second = await make_notice(live)
        await enqueue(live, [Outgoing("telegram", "7002", "二", notice_id=second)])
        sender.wake()
        assert await asyncio.wait_for(reported.get(), 15) == frozenset({second})
        assert runner.done() is False
    finally:
        await sender.stop()
        await sender.aclose()
        await runner
