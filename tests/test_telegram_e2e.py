"""The Telegram channel end to end: aiogram over real HTTP against the fake Bot API, through the real
Conversation and database (SQLite and PostgreSQL), with a small router of the test's own.

The product flows (invitation deep link, resident menu) have their own e2e tests built on the same
``tests.support.telegram.running_bot``."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import pytest
from markupsafe import escape

from bot.callbacks import CallbackData
from bot.channels.telegram import parse_command, telegram_language_code
from bot.context import BotInfo, Context
from bot.conversation import Conversation
from bot.events import ButtonPress, Command, ContactShared, TextInput
from bot.html import utf16_len
from bot.rendering import Localizers
from bot.replies import AnswerButton, Button, ChatRef, EditText, Reply, SendFile, SendText
from bot.router import Router
from community.unit_of_work import UnitOfWorkFactory
from tests.support.fake_bot_api import FakeBotApi, SentMessage, parse_telegram_html
from tests.support.telegram import running_bot

pytestmark = pytest.mark.e2e

TOKEN = "123456:TEST-token-never-logged"
USER = 1001
OTHER = 1002
COMMANDS = {
    "zh_Hans": [("start", "开始"), ("help", "帮助")],
    "en": [("start", "Start"), ("help", "Help")],
}
# 5000 characters of a neighbour's text that is all markup characters, escaped as every handler must.
NASTY = '<b>王芳 & "邻居"</b> <&> '
LONG_USER_TEXT = (NASTY * (5000 // len(NASTY) + 1))[:5000]
REPORT = "姓名,电话\n王芳,13800000000\n".encode()


@dataclass(frozen=True)
class Press(CallbackData):
    prefix: ClassVar[str] = "tp"
    n: int


@dataclass(frozen=True)
class Silent(CallbackData):
    prefix: ClassVar[str] = "ts"


@dataclass(frozen=True)
class Broken(CallbackData):
    prefix: ClassVar[str] = "tb"


@dataclass(frozen=True)
class Grow(CallbackData):
    prefix: ClassVar[str] = "tg"


class Gate:
    """Lets one person's update wait for another's, to show updates of different chats run concurrently."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()


def build_test_router(gate: Gate) -> Router:
    router = Router()

    async def start(ctx: Context, command: Command) -> Sequence[Reply]:
        name = escape(ctx.event.sender.display_name)
        return (
            SendText(
                f"<b>欢迎</b>, {name}! code={escape(command.args)}",
                buttons=(
                    (Button("Press me", Press(1).pack()), Button("Quiet", Silent().pack())),
                    (Button("Website", url="https://example.org/linli"),),
                ),
            ),
        )

    async def press(ctx: Context, data: Press) -> Sequence[Reply]:
        payload = ctx.event.payload
        assert isinstance(payload, ButtonPress) and payload.message_id is not None
        return (
            AnswerButton(f"pressed {data.n}"),
            EditText(
                payload.message_id,
                f"<i>Pressed {data.n} time(s)</i>",
                buttons=((Button("Again", Press(data.n + 1).pack()),),),
            ),
            AnswerButton("a second answer is never sent"),
        )

    async def silent(ctx: Context, _: Silent) -> Sequence[Reply]:
        return ()

    async def broken(ctx: Context, _: Broken) -> Sequence[Reply]:
        raise RuntimeError("a bug in a handler")

    async def grow(ctx: Context, _: Grow) -> Sequence[Reply]:
        payload = ctx.event.payload
        assert isinstance(payload, ButtonPress) and payload.message_id is not None
        text = f"<b>Grown</b>\n\n{escape(LONG_USER_TEXT)}"
        return (
            AnswerButton("grown", alert=True),
            EditText(payload.message_id, text, buttons=((Button("Ok", "tp:1"),),)),
        )

    async def big_caption(ctx: Context, _: Command) -> Sequence[Reply]:
        return (SendFile("notes.txt", b"notes", caption=f"<i>{escape(LONG_USER_TEXT[:1500])}</i>"),)

    async def long(ctx: Context, _: Command) -> Sequence[Reply]:
        return (
            SendText(f"<b>A long one</b>\n\n{escape(LONG_USER_TEXT)}", buttons=((Button("Ok", Press(9).pack()),),)),
        )

    async def file(ctx: Context, _: Command) -> Sequence[Reply]:
        return (SendFile("members.csv", REPORT, caption="<b>成员</b> &amp; 电话", mime_type="text/csv"),)

    async def phone(ctx: Context, _: Command) -> Sequence[Reply]:
        return (SendText("Please share your number", request_contact="📱 Share my number"),)

    async def notify(ctx: Context, command: Command) -> Sequence[Reply]:
        return (
            SendText("to the console: never sent here", to=ChatRef("console", command.args)),
            SendText(
                f"a note for you from {escape(ctx.event.sender.display_name)}", to=ChatRef("telegram", command.args)
            ),
            SendText("done", remove_keyboard=True),
        )

    async def two(ctx: Context, _: Command) -> Sequence[Reply]:
        return (SendText("first"), SendText("second"), SendText("third"))

    async def block(ctx: Context, _: Command) -> Sequence[Reply]:
        gate.entered.set()
        await asyncio.wait_for(gate.open.wait(), 5)
        return (SendText("unblocked"),)

    async def release(ctx: Context, _: Command) -> Sequence[Reply]:
        gate.open.set()
        return (SendText("released"),)

    async def link(ctx: Context, _: Command) -> Sequence[Reply]:
        return (SendText(ctx.bot.deep_link("abc")),)

    async def text(ctx: Context, payload: TextInput | ContactShared) -> Sequence[Reply]:
        if isinstance(payload, ContactShared):
            own = payload.contact_account_id == ctx.event.sender.account_id
            return (SendText(f"phone {escape(payload.phone)} own={own}", remove_keyboard=True),)
        if payload.text.startswith("slow "):
            n = int(payload.text.split()[1])
            await asyncio.sleep((5 - n) * 0.02)  # later messages finish first unless the chat is serialised
        return (SendText(f"echo: {escape(payload.text)}"),)

    router.command("start", start, description="Start")
    router.command("long", long)
    router.command("file", file)
    router.command("phone", phone)
    router.command("notify", notify)
    router.command("two", two)
    router.command("block", block)
    router.command("release", release)
    router.command("link", link)
    router.command("bigcaption", big_caption)
    router.button(Grow, grow)
    router.button(Press, press)
    router.button(Silent, silent)
    router.button(Broken, broken)
    router.fallback(text)
    return router


@dataclass
class Harness:
    fake: FakeBotApi
    conversation: Conversation
    gate: Gate


@pytest.fixture
async def harness(uows: UnitOfWorkFactory, localizers: Localizers) -> AsyncIterator[Harness]:
    gate = Gate()
    conversation = Conversation(uows, build_test_router(gate), localizers, BotInfo())
    async with FakeBotApi(token=TOKEN) as fake, running_bot(conversation, fake, commands=COMMANDS):
        yield Harness(fake, conversation, gate)


def plain(message: SentMessage) -> str:
    assert message.text is not None
    return parse_telegram_html(message.text)[0]


async def test_command_menu_is_registered_in_both_languages_with_chinese_as_default(harness: Harness) -> None:
    fake = harness.fake
    assert fake.commands[None] == [
        {"command": "start", "description": "开始"},
        {"command": "help", "description": "帮助"},
    ]
    assert fake.commands["zh"] == fake.commands[None]
    assert fake.commands["en"] == [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    # The username from getMe reaches the conversation, so deep links name the real bot.
    assert harness.conversation.bot.username == fake.bot_username
    fake.push_message(USER, "/link")
    (reply,) = await fake.wait_for_messages(USER, 1)
    assert reply.text == f"https://t.me/{fake.bot_username}?start=abc"


async def test_a_message_round_trip_escapes_user_text(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, "hello <b>&amp; 你好 👋", first_name="王芳 <i>", language_code="zh-hans")
    (reply,) = await fake.wait_for_messages(USER, 1)
    assert reply.method == "sendMessage" and reply.parse_mode == "HTML"
    assert plain(reply) == "echo: hello <b>&amp; 你好 👋"


async def test_start_with_a_code_shows_inline_buttons(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, f"/start@{fake.bot_username} CODE-42", first_name="王芳 <i>")
    (reply,) = await fake.wait_for_messages(USER, 1)
    assert plain(reply) == "欢迎, 王芳 <i>! code=CODE-42"
    assert [(b["text"], b.get("callback_data"), b.get("url")) for b in reply.buttons()] == [
        ("Press me", "tp:1", None),
        ("Quiet", "ts", None),
        ("Website", None, "https://example.org/linli"),
    ]


async def test_a_button_press_edits_the_message_and_answers_the_callback_once(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, "/start")
    (menu,) = await fake.wait_for_messages(USER, 1)
    fake.push_callback(USER, "tp:1", menu.message_id)
    _, edit = await fake.wait_for_messages(USER, 2)
    assert edit.method == "editMessageText" and edit.message_id == menu.message_id
    assert plain(edit) == "Pressed 1 time(s)"
    assert [b["callback_data"] for b in edit.buttons()] == ["tp:2"]
    await fake.wait_for(lambda _: len(fake.callback_answers) == 1)
    assert fake.callback_answers[0].text == "pressed 1"
    assert fake.call_counts["answerCallbackQuery"] == 1  # the handler's second answer is not sent


async def test_an_edit_that_changes_nothing_is_not_an_error(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    fake = harness.fake
    fake.push_message(USER, "/start")
    (menu,) = await fake.wait_for_messages(USER, 1)
    fake.push_callback(USER, "tp:1", menu.message_id)
    await fake.wait_for_messages(USER, 2)
    with caplog.at_level(logging.INFO, logger="bot.channels.telegram"):
        fake.push_callback(USER, "tp:1", menu.message_id)  # the same edit again
        await fake.wait_for(lambda _: fake.call_counts["editMessageText"] == 2)
        await asyncio.sleep(0.05)
    assert len(fake.callback_answers) == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_press_is_answered_even_when_the_handler_says_nothing_or_fails(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, "/start")
    (menu,) = await fake.wait_for_messages(USER, 1)
    fake.push_callback(USER, "ts", menu.message_id)
    fake.push_callback(USER, "tb", menu.message_id)
    await fake.wait_for(lambda _: len(fake.callback_answers) == 2)
    assert [answer.text for answer in fake.callback_answers] == [None, None]
    assert fake.call_counts["answerCallbackQuery"] == 2


async def test_long_text_arrives_split_into_valid_parts(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, "/long")
    await fake.wait_for(lambda _: fake.pending_updates() == 0 and fake.call_counts["sendMessage"] >= 3)
    messages = fake.messages_to(USER)
    assert all(m.method == "sendMessage" and m.parse_mode == "HTML" for m in messages)
    plains = [plain(m) for m in messages]  # the fake refused nothing: every part parsed as Telegram would
    assert all(utf16_len(p) <= 4096 for p in plains)
    assert plains[0] == "A long one"
    assert "".join(plains[1:]).replace(" ", "") == LONG_USER_TEXT.rstrip().replace(" ", "")
    # The buttons go under the last part only.
    assert [bool(m.buttons()) for m in messages] == [False] * (len(messages) - 1) + [True]


async def test_an_edit_too_long_for_one_message_continues_in_new_ones(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, "/two")
    first, *_ = await fake.wait_for_messages(USER, 3)
    fake.push_callback(USER, "tg", first.message_id)
    await fake.wait_for(lambda sent: sent[-1].method == "sendMessage" and bool(sent[-1].buttons()))
    edit, *more = fake.messages_to(USER)[3:]
    assert edit.method == "editMessageText" and edit.message_id == first.message_id
    assert plain(edit) == "Grown" and not edit.buttons()
    assert [m.method for m in more] == ["sendMessage"] * len(more) and more[-1].buttons()
    assert "".join(plain(m) for m in more).replace(" ", "") == LONG_USER_TEXT.rstrip().replace(" ", "")
    assert fake.callback_answers[0].text == "grown" and fake.callback_answers[0].show_alert


async def test_a_caption_too_long_for_a_file_goes_first_as_text(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, "/bigcaption")
    text, doc = await fake.wait_for_messages(USER, 2)
    assert text.method == "sendMessage" and plain(text) == LONG_USER_TEXT[:1500]
    assert doc.method == "sendDocument" and doc.caption is None and doc.document_bytes == b"notes"


async def test_flood_control_is_waited_out(harness: Harness) -> None:
    fake = harness.fake
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    fake.push_message(USER, "hello")
    (reply,) = await fake.wait_for_messages(USER, 1, timeout=5)
    assert plain(reply) == "echo: hello"
    assert fake.call_counts["sendMessage"] == 2


async def test_a_person_who_blocked_the_bot_does_not_stop_the_others(harness: Harness) -> None:
    fake = harness.fake
    fake.blocked_chats.add(OTHER)
    fake.push_message(USER, f"/notify {OTHER}")
    (done,) = await fake.wait_for_messages(USER, 1)
    assert plain(done) == "done" and fake.messages_to(OTHER) == []


async def test_a_file_arrives_with_its_caption(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, "/file")
    (doc,) = await fake.wait_for_messages(USER, 1)
    assert doc.method == "sendDocument"
    assert doc.document_name == "members.csv" and doc.document_bytes == REPORT
    assert doc.caption == "<b>成员</b> &amp; 电话" and doc.parse_mode == "HTML"
    assert doc.plain_text == "成员 & 电话"


async def test_contact_request_and_a_shared_contact(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, "/phone")
    (ask,) = await fake.wait_for_messages(USER, 1)
    assert ask.reply_markup is not None
    assert ask.reply_markup["keyboard"] == [[{"text": "📱 Share my number", "request_contact": True}]]
    fake.push_contact(USER, "+8613800000000")
    fake.push_contact(USER, "+8613900000000", contact_user_id=OTHER)
    _, own, other = await fake.wait_for_messages(USER, 3)
    assert plain(own) == "phone +8613800000000 own=True"
    assert plain(other) == "phone +8613900000000 own=False"
    assert own.reply_markup == {"remove_keyboard": True}


async def test_replies_to_another_telegram_chat_and_not_to_other_channels(harness: Harness) -> None:
    fake = harness.fake
    fake.push_message(USER, f"/notify {OTHER}", first_name="王芳")
    (note,) = await fake.wait_for_messages(OTHER, 1)
    assert plain(note) == "a note for you from 王芳"
    (done,) = await fake.wait_for_messages(USER, 1)
    assert plain(done) == "done"
    assert {m.chat_id for m in fake.sent} == {USER, OTHER}


async def test_a_refused_reply_is_logged_without_text_or_token_and_the_rest_go_out(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    fake = harness.fake
    fake.fail_next("sendMessage", 400, "Bad Request: chat not found")
    with caplog.at_level(logging.DEBUG):
        fake.push_message(USER, "/two")
        second, third = await fake.wait_for_messages(USER, 2)
    assert (plain(second), plain(third)) == ("second", "third")
    failures = [r for r in caplog.records if r.name == "bot.channels.telegram" and r.levelno >= logging.ERROR]
    assert len(failures) == 1 and "sendMessage" in failures[0].getMessage()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "first" not in logged and TOKEN not in logged and TOKEN.split(":")[1] not in logged


async def test_a_chat_is_served_in_order(harness: Harness) -> None:
    fake = harness.fake
    for n in range(1, 6):
        fake.push_message(USER, f"slow {n}")
    messages = await fake.wait_for_messages(USER, 5)
    assert [plain(m) for m in messages] == [f"echo: slow {n}" for n in range(1, 6)]


async def test_different_chats_are_served_concurrently(harness: Harness, uows: UnitOfWorkFactory) -> None:
    if uows.serialized:
        # Here one chat's handler waits, inside its transaction, for another chat's: on SQLite the units of
        # work of a process take turns by design (community.unit_of_work), so only PostgreSQL can show it.
        pytest.skip("SQLite serialises units of work by design; the adapter's concurrency is shown on PostgreSQL")
    fake = harness.fake
    # Both known first: a newcomer's first update writes, and SQLite would make the other wait on its lock.
    fake.push_message(USER, "hi")
    fake.push_message(OTHER, "hi")
    await fake.wait_for_messages(USER, 1)
    await fake.wait_for_messages(OTHER, 1)
    fake.push_message(USER, "/block")  # waits until OTHER's update has run
    fake.push_message(OTHER, "/release")
    _, released = await fake.wait_for_messages(OTHER, 2)
    _, unblocked = await fake.wait_for_messages(USER, 2)
    assert (plain(released), plain(unblocked)) == ("released", "unblocked")


async def test_group_chats_are_ignored_for_now(harness: Harness) -> None:
    fake = harness.fake
    group_message = {
        "message_id": 1,
        "from": {"id": USER, "is_bot": False, "first_name": "Test"},
        "chat": {"id": -100123, "type": "supergroup", "title": "Neighbours"},
        "date": int(time.time()),
        "text": "/start",
    }
    fake.push_update({"message": group_message})
    fake.push_message(USER, "after")
    await fake.wait_for_messages(USER, 1)
    await fake.wait_for(lambda _: fake.pending_updates() == 0)
    assert fake.messages_to(-100123) == []


async def test_stopping_lets_in_flight_updates_finish(uows: UnitOfWorkFactory, localizers: Localizers) -> None:
    gate = Gate()
    conversation = Conversation(uows, build_test_router(gate), localizers, BotInfo())
    async with FakeBotApi(token=TOKEN) as fake:
        async with running_bot(conversation, fake):
            fake.push_message(USER, "/block")
            await asyncio.wait_for(gate.entered.wait(), 5)
            asyncio.get_running_loop().call_later(0.2, gate.open.set)
        # The block above ended (stop) while /block was waiting; its reply still went out.
        assert [plain(m) for m in fake.messages_to(USER)] == ["unblocked"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/start", Command("start")),
        ("/Start  CODE-1 ", Command("start", "CODE-1")),
        ("/start@linli_test_bot CODE", Command("start", "CODE")),
        ("/start@Linli_Test_Bot", Command("start")),
        ("/start@another_bot CODE", None),
        ("/help me\nplease", Command("help", "me\nplease")),
        ("/", None),
        ("/ start", None),
        ("/开始", None),
        ("a /start", None),
        ("/path/to/file", None),
    ],
)
def test_parse_command(text: str, expected: Command | None) -> None:
    assert parse_command(text, "linli_test_bot") == expected


def test_telegram_language_codes() -> None:
    assert [telegram_language_code(lang) for lang in ("zh_Hans", "en", "pt-BR")] == ["zh", "en", "pt"]


async def test_reply_parsers_survive_garbage_collection_while_the_channel_runs(harness: Harness) -> None:
    # pydantic caches aiogram's Response[...] models weakly: without the channel holding them, a collection
    # frees them and every later reply pays for building the class again.
    from aiogram.methods import Response
    from aiogram.types import Message

    parser = weakref.ref(Response[Message])
    gc.collect()
    assert parser() is not None
    assert Response[Message] is parser()  # SendMessage.__returning__
