"""Running the real Telegram channel against the fake Bot API, for end-to-end tests and benchmarks.

    async with FakeBotApi() as fake, running_bot(conversation, fake, commands=commands) as channel:
        fake.push_message(42, "/start CODE", language_code="zh-hans")
        (reply,) = await fake.wait_for_messages(42, 1)

``running_bot`` returns once polling has begun (so the command menu is registered) and on leaving stops the
channel cleanly: polling ends, in-flight updates finish, the HTTP session closes. An error inside the
channel's ``run()`` is raised from the ``async with``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from bot.channels.telegram import TelegramChannel
from bot.conversation import Conversation
from i18n import Catalogs
from i18n.catalog import compile_all
from tests.support.fake_bot_api import FakeBotApi

LocalizedCommands = Mapping[str, list[tuple[str, str]]]


def load_catalogs() -> Catalogs:
    """The catalogs compiled from the .po files in the tree, as the tests' localizers fixture does."""
    compile_all()
    return Catalogs()


@contextlib.asynccontextmanager
async def running_bot(
    conversation: Conversation,
    fake: FakeBotApi,
    *,
    commands: LocalizedCommands | None = None,
    polling_timeout: int = 1,
    start_timeout: float = 10.0,
    channel_class: type[TelegramChannel] = TelegramChannel,
) -> AsyncIterator[TelegramChannel]:
    """TelegramChannel.run() as a task against ``fake``, from polling start until the block ends.

    channel_class: a subclass to run instead, e.g. one that observes updates for a benchmark."""
    channel = channel_class(
        fake.token,
        conversation,
        api_base=fake.base_url,
        localized_commands=commands,
        polling_timeout=polling_timeout,
    )
    runner = asyncio.create_task(channel.run(), name="telegram-channel")
    started = asyncio.create_task(channel.wait_started())
    try:
        done, _ = await asyncio.wait({runner, started}, timeout=start_timeout, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            runner.result()  # run() ended before polling began: raise why
            raise RuntimeError("TelegramChannel.run() returned before polling began")
        if started not in done:
            raise TimeoutError(f"TelegramChannel did not start polling within {start_timeout}s")
        yield channel
    finally:
        started.cancel()
        await channel.stop()
        await runner
