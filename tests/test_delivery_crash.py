"""Crash safety: a sender process killed with SIGKILL in the middle of a broadcast, and another started after it,
on PostgreSQL and on an SQLite file. Every recipient gets the message; the only messages sent twice are ones the
killed sender had in flight (claimed and not yet recorded), and there are no more of them than its window.

The sender runs in a process of its own (tests/support/sender_process.py: what `linli deliver` runs, with a
2-second lease so the second sender need not wait the usual 30 s to take the dead one's rows over). The fake Bot
API runs in this process and holds every message 0.3 s before answering, like the round trip to Telegram, so
about 30 messages are in flight at any moment, and the kill always catches some."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.delivery.sender import SenderOptions
from community import outbox
from community.clock import SystemClock
from community.db import session_factory
from community.keys import SiteKey
from community.notice_models import DeliveryStatus, OutboxMessage
from community.outbox import Outgoing
from community.unit_of_work import UnitOfWorkFactory
from tests.support.fake_bot_api import FakeBotApi, TelegramLimits

ROOT = Path(__file__).resolve().parent.parent
RATE = 100
RECIPIENTS = 300
FIRST_CHAT = 8000


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(limits=TelegramLimits(per_second=RATE), latency=0.3) as fake:
        yield fake


async def start_sender(engine: AsyncEngine, fake: FakeBotApi) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.sender_process",
        engine.url.render_as_string(hide_password=False),
        fake.base_url,
        fake.token,
        "--rate",
        str(RATE),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    assert line.strip() == b"ready", line
    return process


async def statuses(uows: UnitOfWorkFactory) -> dict[str, DeliveryStatus]:
    async with uows() as uow:
        rows = (await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    return {row.chat_id: row.status for row in rows}


async def test_a_sender_killed_mid_broadcast_loses_nothing_and_repeats_only_what_was_in_flight(
    engine: AsyncEngine, fake: FakeBotApi
) -> None:
    uows = UnitOfWorkFactory(session_factory(engine), SystemClock(), SiteKey.generate())
    async with uows() as uow:
        chats = [str(FIRST_CHAT + n) for n in range(RECIPIENTS)]
        await outbox.enqueue(
            uow, (Outgoing("telegram", chat, f"停水通知 {chat}") for chat in chats), not_before=uow.clock.now()
        )
        await uow.commit()

    first = await start_sender(engine, fake)
    try:
        await fake.wait_for(lambda sent: len(sent) >= RECIPIENTS // 3, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    at_kill = await statuses(uows)
    in_flight = {chat for chat, status in at_kill.items() if status is DeliveryStatus.SENDING}
    assert Counter(at_kill.values())[DeliveryStatus.QUEUED] > 0, "the kill came after the broadcast"

    second = await start_sender(engine, fake)
    try:
        for _ in range(300):
            now = await statuses(uows)
            if all(status is DeliveryStatus.SENT for status in now.values()):
                break
            await asyncio.sleep(0.1)
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), timeout=60) == 0  # a clean stop

    assert Counter(now.values()) == {DeliveryStatus.SENT: RECIPIENTS}
    assert all(fake.sends_per_chat[int(chat)] >= 1 for chat in chats)  # nobody missed out
    repeated = {str(chat) for chat, _ in fake.duplicates()}
    assert repeated <= in_flight, "a message not in flight at the kill was sent twice"
    window = SenderOptions(rate=RATE).effective_window
    assert fake.duplicate_count() <= window, f"{fake.duplicate_count()} duplicates, more than the window {window}"
    assert fake.limit_violations() == 0
