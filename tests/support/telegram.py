"""Running the real Telegram channel against the fake Bot API, for end-to-end tests and benchmarks.

    async with FakeBotApi() as fake, running_bot(conversation, fake, commands=commands) as channel:
        fake.push_message(42, "/start CODE", language_code="zh-hans")
        (reply,) = await fake.wait_for_messages(42, 1)

``running_bot`` returns once polling has begun (so the command menu is registered) and on leaving stops the
channel cleanly: polling ends, in-flight updates finish, the HTTP session closes. An error inside the
channel's ``run()`` is raised from the ``async with``.

``TelegramUser`` is someone chatting with that bot from their Telegram app; ``seen``, ``callback_data`` and
``labels`` read one of the bot's messages as that app shows it; ``member_on_telegram`` makes such a person a
member of a community before the story starts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from bot.channels.telegram import TelegramChannel
from bot.conversation import Conversation
from community.communities import add_member, household
from community.people import identify
from community.roles import Role
from community.unit_of_work import UnitOfWork
from i18n import Catalogs
from i18n.catalog import compile_all
from tests.support.fake_bot_api import FakeBotApi, SentMessage

LocalizedCommands = Mapping[str, list[tuple[str, str]]]


async def member_on_telegram(
    uow: UnitOfWork,
    community_id: int,
    user_id: int,
    name: str,
    language: str,
    roles: set[Role],
    *,
    home: str | None = None,
    building: str | None = None,
) -> int:
    """The Telegram user (their private chat has their user id) as a member of the community, in the household
    labelled ``home`` (placed in ``building`` when given, for notices to a building); their person id."""
    me = await identify(
        uow,
        channel="telegram",
        external_id=str(user_id),
        chat_id=str(user_id),
        display_name=name,
        language_code=language,
    )
    household_id = None
    if home is not None:
        found = await household(uow, community_id, home)
        if building is not None:
            found.building = building
            uow.session.add(found)
        household_id = found.id
    await add_member(
        uow, person_id=me.person_id, community_id=community_id, roles=roles, household_id=household_id, reason="test"
    )
    return me.person_id


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


@dataclass
class TelegramUser:
    """Someone chatting with the bot in their own Telegram app."""

    fake: FakeBotApi
    user_id: int
    first_name: str
    language_code: str
    _read: int = field(default=0, init=False)

    def sends(self, text: str) -> None:
        self.fake.push_message(self.user_id, text, first_name=self.first_name, language_code=self.language_code)

    def opens(self, link: str) -> None:
        """Opening https://t.me/<bot>?start=<code>: the Telegram app sends "/start <code>" to the bot."""
        url = urlsplit(link)
        assert (url.scheme, url.netloc, url.path) == ("https", "t.me", f"/{self.fake.bot_username}")
        (code,) = parse_qs(url.query)["start"]
        self.sends(f"/start {code}")

    def taps(self, message: SentMessage, data: str) -> None:
        """Taps the button with this callback data under one of the bot's messages."""
        assert data in callback_data(message), f"no button {data!r} under {seen(message)!r}"
        self.fake.push_callback(self.user_id, data, message.message_id, language_code=self.language_code)

    async def receives(self, count: int) -> list[SentMessage]:
        """The next ``count`` changes to this chat (new messages and edits), oldest first."""
        messages = await self.fake.wait_for_messages(self.user_id, self._read + count)
        new = messages[self._read :]
        self._read += count
        return new


def seen(message: SentMessage) -> str:
    """The message as the Telegram app shows it: tags gone, entities decoded."""
    assert message.plain_text is not None
    return message.plain_text


def callback_data(message: SentMessage) -> list[str]:
    return [button["callback_data"] for button in message.buttons() if "callback_data" in button]


def labels(message: SentMessage) -> list[str]:
    return [button["text"] for button in message.buttons()]
