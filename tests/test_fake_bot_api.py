"""Behaviour of the fake Telegram Bot API that the bot's tests and benchmarks rely on."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from tests.support.fake_bot_api import FakeBotApi, SentMessage, TelegramLimits

USER = 1001


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def bot(fake: FakeBotApi) -> AsyncIterator[Bot]:
    bot = Bot(fake.token, session=AiohttpSession(api=fake.api_server()))
    try:
        yield bot
    finally:
        await bot.session.close()


async def call(http: aiohttp.ClientSession, fake: FakeBotApi, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{fake.base_url}/bot{fake.token}/{method}", json=params) as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data)] for text, data in buttons]
    )


# --- long polling -----------------------------------------------------------------------


async def test_updates_are_redelivered_until_an_offset_confirms_them(
    fake: FakeBotApi, http: aiohttp.ClientSession
) -> None:
    first = fake.push_message(USER, "hello")
    second = fake.push_message(USER, "again")
    third = fake.push_message(USER, "third")
    assert first < second < third

    _, body = await call(http, fake, "getUpdates")
    assert [update["update_id"] for update in body["result"]] == [first, second, third]
    _, body = await call(http, fake, "getUpdates")
    assert len(body["result"]) == 3, "unconfirmed updates must come back"

    _, body = await call(http, fake, "getUpdates", offset=second)
    assert [update["update_id"] for update in body["result"]] == [second, third]
    assert fake.pending_updates() == 2


async def test_confirmed_updates_are_gone_forever(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    first = fake.push_message(USER, "one")
    second = fake.push_message(USER, "two")

    _, body = await call(http, fake, "getUpdates", offset=second + 1)
    assert body == {"ok": True, "result": []}
    assert fake.pending_updates() == 0

    _, body = await call(http, fake, "getUpdates", offset=first)
    assert body["result"] == []


async def test_limit_bounds_the_batch(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    ids = [fake.push_message(USER, f"m{n}") for n in range(150)]

    _, body = await call(http, fake, "getUpdates")
    assert len(body["result"]) == 100, "the default limit is 100"
    _, body = await call(http, fake, "getUpdates", limit=5, offset=ids[10])
    assert [update["update_id"] for update in body["result"]] == ids[10:15]


async def test_long_poll_returns_as_soon_as_an_update_arrives(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(call(http, fake, "getUpdates", timeout=10))
    await asyncio.sleep(0.1)
    assert not poll.done(), "with nothing queued the request must be held"

    update_id = fake.push_message(USER, "wake up")
    _, body = await asyncio.wait_for(poll, 2)

    assert [update["update_id"] for update in body["result"]] == [update_id]
    assert time.monotonic() - started < 2


async def test_long_poll_returns_empty_list_when_timeout_elapses(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    _, body = await call(http, fake, "getUpdates", timeout=0.3)
    elapsed = time.monotonic() - started

    assert body == {"ok": True, "result": []}
    assert 0.25 <= elapsed < 1.5


async def test_stopping_the_server_releases_long_polls(http: aiohttp.ClientSession) -> None:
    fake = FakeBotApi()
    await fake.start()
    poll = asyncio.create_task(call(http, fake, "getUpdates", timeout=30))
    await asyncio.sleep(0.1)

    started = time.monotonic()
    await fake.stop()
    _, body = await asyncio.wait_for(poll, 3)

    assert body["result"] == []
    assert time.monotonic() - started < 3


# --- transport and envelope ------------------------------------------------------------


async def test_wrong_token_is_unauthorized(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{fake.base_url}/bot999:WRONG/getMe") as response:
        assert response.status == 401
        assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_unknown_method_is_not_found(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, fake, "sendTelepathy", chat_id=USER)
    assert status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_parameters_arrive_as_json_form_or_query_string(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    url = f"{fake.base_url}/bot{fake.token}/sendMessage"
    markup = '{"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}'

    async with http.post(url, json={"chat_id": USER, "text": "json"}) as response:
        assert (await response.json())["ok"]
    async with http.post(url, data={"chat_id": str(USER), "text": "form", "reply_markup": markup}) as response:
        assert (await response.json())["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Yes"
    async with http.get(url, params={"chat_id": str(USER), "text": "query"}) as response:
        assert (await response.json())["ok"]

    assert [message.text for message in fake.messages_to(USER)] == ["json", "form", "query"]
    assert fake.messages_to(USER)[1].reply_markup == {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}
    assert fake.call_counts["sendMessage"] == 3


async def test_send_document_records_the_uploaded_file(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    form.add_field("caption", "Minutes")
    form.add_field("document", b"a,b\n1,2\n", filename="minutes.csv", content_type="text/csv")
    async with http.post(f"{fake.base_url}/bot{fake.token}/sendDocument", data=form) as response:
        body = await response.json()

    document = body["result"]["document"]
    assert document["file_name"] == "minutes.csv"
    assert document["file_id"] and document["file_unique_id"]
    (sent,) = fake.messages_to(USER)
    assert (sent.method, sent.document_name, sent.document_bytes, sent.caption) == (
        "sendDocument",
        "minutes.csv",
        b"a,b\n1,2\n",
        "Minutes",
    )


# --- aiogram against the fake ----------------------------------------------------------


async def test_aiogram_bot_learns_its_identity(fake: FakeBotApi, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (fake.bot_id, fake.bot_username, True)


async def test_html_message_with_inline_keyboard_reaches_the_user(fake: FakeBotApi, bot: Bot) -> None:
    markup = keyboard(("Join", "join:7"), ("Later", "later:7"))

    message = await bot.send_message(USER, "<b>Clean-up</b> on Saturday", parse_mode="HTML", reply_markup=markup)

    assert message.text == "Clean-up on Saturday"
    assert message.entities is not None and message.entities[0].type == "bold"
    assert message.reply_markup is not None
    assert message.reply_markup.model_dump() == markup.model_dump()
    assert message.chat.id == USER and message.chat.type == "private"
    assert message.from_user is not None and message.from_user.username == fake.bot_username
    (sent,) = await fake.wait_for_messages(USER, 1)
    assert sent.text == "<b>Clean-up</b> on Saturday"
    assert sent.plain_text == "Clean-up on Saturday"
    assert sent.parse_mode == "HTML"
    assert [button["callback_data"] for button in sent.buttons()] == ["join:7", "later:7"]


async def test_message_ids_increase_per_chat(bot: Bot) -> None:
    first = await bot.send_message(USER, "one")
    second = await bot.send_message(USER, "two")
    elsewhere = await bot.send_message(USER + 1, "hello")

    assert second.message_id > first.message_id
    assert elsewhere.message_id == 1


async def test_default_parse_mode_is_applied_by_aiogram(fake: FakeBotApi) -> None:
    bot = Bot(
        fake.token,
        session=AiohttpSession(api=fake.api_server()),
        default=DefaultBotProperties(parse_mode="HTML"),
    )
    try:
        message = await bot.send_message(USER, "<i>hi</i>")
    finally:
        await bot.session.close()
    assert message.text == "hi"
    assert fake.sent[-1].parse_mode == "HTML"


async def test_reply_keyboards_are_recorded_but_not_echoed(fake: FakeBotApi, bot: Bot) -> None:
    share = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Share phone", request_contact=True)]])

    message = await bot.send_message(USER, "Please share your phone", reply_markup=share)

    assert message.reply_markup is None
    assert fake.sent[-1].reply_markup == {
        "keyboard": [[{"text": "Share phone", "request_contact": True}]],
    }


async def test_editing_replaces_text_and_keyboard(fake: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Vote?", reply_markup=keyboard(("Yes", "vote:yes")))

    edited = await bot.edit_message_text(
        "<i>Thanks for voting</i>", chat_id=USER, message_id=sent.message_id, parse_mode="HTML"
    )

    assert isinstance(edited, Message)
    assert edited.message_id == sent.message_id
    assert edited.text == "Thanks for voting"
    assert edited.reply_markup is None, "an edit without reply_markup removes the keyboard"
    first, second = await fake.wait_for_messages(USER, 2)
    assert (first.method, second.method) == ("sendMessage", "editMessageText")
    assert second.message_id == sent.message_id


async def test_editing_to_identical_content_is_refused(bot: Bot) -> None:
    markup = keyboard(("Yes", "vote:yes"))
    sent = await bot.send_message(USER, "<b>Vote?</b>", parse_mode="HTML", reply_markup=markup)

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "<b>Vote?</b>", chat_id=USER, message_id=sent.message_id, parse_mode="HTML", reply_markup=markup
        )
    # Changing only the keyboard is a real modification.
    await bot.edit_message_text(
        "<b>Vote?</b>",
        chat_id=USER,
        message_id=sent.message_id,
        parse_mode="HTML",
        reply_markup=keyboard(("No", "vote:no")),
    )


async def test_editing_an_unknown_message_is_refused(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("new", chat_id=USER, message_id=999)


@pytest.mark.parametrize(
    "text",
    [
        "<b>unclosed",
        "<b><i>crossed</b></i>",
        "stray </b> end tag",
        "Tom & Jerry",
        "1 < 2",
        "<script>alert(1)</script>",
        '<span class="x">not a spoiler</span>',
    ],
)
async def test_malformed_html_is_refused(bot: Bot, fake: FakeBotApi, text: str) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, text, parse_mode="HTML")
    assert fake.sent == []


async def test_escaped_user_text_is_accepted(bot: Bot) -> None:
    user_text = 'Tom & Jerry <3 "quotes" & AT&T'

    message = await bot.send_message(USER, f"<b>{html.escape(user_text)}</b>", parse_mode="HTML")

    assert message.text == user_text


async def test_text_over_4096_characters_is_refused(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "x" * 4097)


async def test_length_limit_counts_visible_characters_only(bot: Bot) -> None:
    visible = "&amp;" + "y" * 4095  # 4096 visible characters
    message = await bot.send_message(USER, f"<b>{visible}</b>", parse_mode="HTML")
    assert message.text is not None and len(message.text) == 4096

    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, f"<b>{visible}&lt;</b>", parse_mode="HTML")


async def test_empty_text_is_refused(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode="HTML")


async def test_callback_data_over_64_bytes_is_refused(bot: Bot, fake: FakeBotApi) -> None:
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "Pick", reply_markup=keyboard(("Too long", "é" * 33)))
    await bot.send_message(USER, "Pick", reply_markup=keyboard(("Fits", "é" * 32)))
    assert len(fake.sent) == 1


async def test_rate_limit_surfaces_as_retry_after(fake: FakeBotApi, bot: Bot) -> None:
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)

    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "hello")
    assert caught.value.retry_after == 7

    await bot.send_message(USER, "hello")  # only the next call fails
    assert [message.text for message in fake.sent] == ["hello"]
    assert fake.call_counts["sendMessage"] == 2


async def test_blocked_user_is_forbidden(fake: FakeBotApi, bot: Bot) -> None:
    fake.blocked_chats.add(USER)

    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "are you there?")
    assert fake.messages_to(USER) == []
    await bot.send_message(USER + 1, "others still receive messages")


async def test_document_upload_through_aiogram(fake: FakeBotApi, bot: Bot) -> None:
    message = await bot.send_document(
        USER, BufferedInputFile(b"%PDF-1.4", filename="report.pdf"), caption="<b>Report</b>", parse_mode="HTML"
    )

    assert message.document is not None and message.document.file_name == "report.pdf"
    assert message.caption == "Report"
    (sent,) = fake.messages_to(USER)
    assert (sent.document_name, sent.document_bytes, sent.caption) == ("report.pdf", b"%PDF-1.4", "<b>Report</b>")


async def test_chat_actions_are_accepted(fake: FakeBotApi, bot: Bot) -> None:
    assert await bot.send_chat_action(USER, "typing")
    assert fake.call_counts["sendChatAction"] == 1
    assert fake.sent == [], "chat actions are not messages"


async def test_commands_are_recorded_per_language(fake: FakeBotApi, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    await bot.set_my_commands(
        [BotCommand(command="start", description="Commencer"), BotCommand(command="help", description="Aide")],
        language_code="fr",
        scope=BotCommandScopeAllPrivateChats(),
    )

    assert fake.commands[None] == [{"command": "start", "description": "Start"}]
    assert [command["command"] for command in fake.commands["fr"]] == ["start", "help"]
    french = await bot.get_my_commands(language_code="fr", scope=BotCommandScopeAllPrivateChats())
    assert [command.description for command in french] == ["Commencer", "Aide"]
    assert await bot.get_my_commands(language_code="fr") == [], "scopes are kept apart"

    await bot.delete_my_commands(language_code="fr", scope=BotCommandScopeAllPrivateChats())
    assert "fr" not in fake.commands


async def test_pushed_updates_parse_as_aiogram_updates(fake: FakeBotApi, bot: Bot) -> None:
    fake.push_message(USER, "/start ref42", first_name="Mei", language_code="zh-hans", username="mei")
    fake.push_contact(USER, "+8613800000000")

    message_update, contact_update = await bot.get_updates()

    message = message_update.message
    assert message is not None and message.from_user is not None
    assert message.text == "/start ref42"
    assert message.entities is not None and message.entities[0].type == "bot_command"
    assert message.entities[0].length == len("/start")
    assert message.chat.id == message.from_user.id == USER
    assert (message.from_user.first_name, message.from_user.language_code) == ("Mei", "zh-hans")
    contact = contact_update.message.contact if contact_update.message else None
    assert contact is not None and (contact.phone_number, contact.user_id) == ("+8613800000000", USER)


async def test_callback_carries_the_message_as_last_edited(fake: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Vote?", reply_markup=keyboard(("Yes", "vote:yes")))
    await bot.edit_message_text(
        "Vote? (1 vote)", chat_id=USER, message_id=sent.message_id, reply_markup=keyboard(("Yes", "vote:yes"))
    )

    fake.push_callback(USER, "vote:yes", sent.message_id, language_code="fr")
    (update,) = await bot.get_updates()

    query = update.callback_query
    assert query is not None and isinstance(query.message, Message)
    assert query.data == "vote:yes"
    assert query.from_user.id == USER and query.from_user.language_code == "fr"
    assert query.message.message_id == sent.message_id
    assert query.message.text == "Vote? (1 vote)"
    assert query.chat_instance

    assert await bot.answer_callback_query(query.id, text="Counted")
    assert fake.callback_answers[-1].text == "Counted"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)


async def test_callback_for_a_message_never_sent_is_a_test_bug(fake: FakeBotApi) -> None:
    with pytest.raises(ValueError, match="never sent message 5"):
        fake.push_callback(USER, "vote:yes", 5)


async def test_wait_for_times_out_with_a_traffic_dump(fake: FakeBotApi, bot: Bot) -> None:
    await bot.send_message(USER, "the only reply")

    with pytest.raises(TimeoutError) as caught:
        await fake.wait_for_messages(USER, 2, timeout=0.2)
    assert "the only reply" in str(caught.value)

    await fake.wait_for(lambda sent: any(message.text == "the only reply" for message in sent), timeout=0.2)


async def test_delete_webhook_can_drop_pending_updates(fake: FakeBotApi, bot: Bot) -> None:
    fake.push_message(USER, "stale")
    await bot.delete_webhook()
    assert fake.pending_updates() == 1
    await bot.delete_webhook(drop_pending_updates=True)
    assert fake.pending_updates() == 0


async def test_dispatcher_conversation_end_to_end(fake: FakeBotApi, bot: Bot) -> None:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        name = html.escape(message.from_user.first_name if message.from_user else "")
        await message.answer(f"Hello, <b>{name}</b>!", parse_mode="HTML", reply_markup=keyboard(("Join", "join")))

    @router.callback_query(F.data == "join")
    async def join(query: CallbackQuery) -> None:
        if isinstance(query.message, Message):
            await query.message.edit_text("You joined ✅")
        await query.answer("Welcome!")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, polling_timeout=1, handle_signals=False, close_bot_session=False)
    )
    try:
        fake.push_message(USER, "/start", first_name="<Ann & Bo>")
        (greeting,) = await fake.wait_for_messages(USER, 1)
        assert greeting.plain_text == "Hello, <Ann & Bo>!"

        fake.push_callback(USER, "join", greeting.message_id)
        _, edit = await fake.wait_for_messages(USER, 2)
        assert (edit.method, edit.text) == ("editMessageText", "You joined ✅")
        await fake.wait_for(lambda _: bool(fake.callback_answers))
        assert fake.callback_answers[0].text == "Welcome!"
    finally:
        await dispatcher.stop_polling()
        await polling


def test_sent_message_buttons_flatten_rows() -> None:
    message = SentMessage(
        chat_id=USER,
        message_id=1,
        text="Pick",
        parse_mode=None,
        reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}], [{"text": "B", "url": "https://x"}]]},
        method="sendMessage",
    )
    assert [button["text"] for button in message.buttons()] == ["A", "B"]


# --- Telegram's limits ------------------------------------------------------------------


@dataclass
class Ticks:
    """A monotonic clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


TOO_MANY = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1"}


async def send(http: aiohttp.ClientSession, fake: FakeBotApi, chat_id: int, text: str = "hi", **extra: Any) -> int:
    status, _ = await call(http, fake, "sendMessage", chat_id=chat_id, text=text, **extra)
    return status


async def test_without_limits_any_pace_goes(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    statuses = [await send(http, fake, USER, f"m{n}") for n in range(40)]

    assert set(statuses) == {200}
    assert fake.too_many_requests == {}


async def test_over_the_overall_limit_comes_429_with_retry_after(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    ticks = Ticks()
    fake.limits = TelegramLimits(per_second=5, clock=ticks)

    assert [await send(http, fake, USER + n) for n in range(5)] == [200] * 5, "a full bucket: a burst of 5"
    status, body = await call(http, fake, "sendMessage", chat_id=USER + 5, text="sixth")

    assert status == 429
    assert body == {**TOO_MANY, "parameters": {"retry_after": 1}}
    assert fake.messages_to(USER + 5) == [], "a refused message is not delivered"
    assert fake.too_many_requests == {"global": 1}
    assert fake.limit_violations() == 1
    ticks.now += 0.2  # one token back at 5/s
    assert await send(http, fake, USER + 5) == 200
    assert await send(http, fake, USER + 6) == 429


async def test_the_overall_limit_is_a_rate_not_a_burst(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    ticks = Ticks()
    fake.limits = TelegramLimits(per_second=5, clock=ticks)
    statuses = []
    for n in range(50):  # 10 seconds at 5/s, evenly spaced
        statuses.append(await send(http, fake, USER + n))
        ticks.now += 0.2

    assert set(statuses) == {200}
    assert fake.limit_violations() == 0


async def test_aiogram_sees_the_limiter_as_retry_after(fake: FakeBotApi, bot: Bot) -> None:
    fake.limits = TelegramLimits(per_second=2, clock=Ticks())
    await bot.send_message(USER, "one")
    await bot.send_message(USER + 1, "two")

    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER + 2, "three")
    assert caught.value.retry_after == 1


async def test_one_message_a_second_per_private_chat(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    ticks = Ticks()
    fake.limits = TelegramLimits(per_second=100, clock=ticks)

    assert await send(http, fake, USER, "first") == 200
    assert await send(http, fake, USER + 1, "another chat is not held back") == 200
    status, body = await call(http, fake, "sendMessage", chat_id=USER, text="too soon")
    assert (status, body["parameters"]) == (429, {"retry_after": 1})
    ticks.now += 0.9
    assert await send(http, fake, USER, "still too soon") == 429
    ticks.now += 0.06  # 0.96 s: within the 50 ms tolerance for loopback jitter
    assert await send(http, fake, USER, "second") == 200

    assert [message.text for message in fake.messages_to(USER)] == ["first", "second"]
    assert fake.too_many_requests == {"chat": 2}


async def test_twenty_messages_a_minute_per_group(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    ticks = Ticks()
    group = -100123
    fake.limits = TelegramLimits(per_second=100, group_per_minute=3, clock=ticks)

    for n in range(3):
        assert await send(http, fake, group, f"g{n}") == 200, "groups are not held to one a second"
        ticks.now += 0.1
    status, body = await call(http, fake, "sendMessage", chat_id=group, text="g3")
    assert (status, body["parameters"]["retry_after"]) == (429, 60)
    assert await send(http, fake, -200, "another group") == 200
    ticks.now += 59.7  # 60.0 s after the first message: it leaves the minute (the second, at 0.1 s, not yet)
    assert await send(http, fake, group, "g3") == 200
    assert await send(http, fake, group, "g4") == 429

    assert fake.too_many_requests == {"group": 2}
    assert fake.sends_per_chat[group] == 4


async def test_paid_broadcast_raises_the_overall_limit(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    # No tolerance: at 20/s, 50 ms would let one more through.
    fake.limits = TelegramLimits(per_second=5, paid_per_second=20, tolerance=0, clock=Ticks())

    paid = [await send(http, fake, USER + n, allow_paid_broadcast=True) for n in range(20)]
    assert paid == [200] * 20
    assert await send(http, fake, USER + 20, allow_paid_broadcast=True) == 429
    assert await send(http, fake, USER + 21) == 429, "free messages share the overall bucket"
    assert all(message.paid_broadcast for message in fake.sent)


async def test_free_messages_stay_at_the_free_limit_beside_paid_ones(
    fake: FakeBotApi, http: aiohttp.ClientSession
) -> None:
    fake.limits = TelegramLimits(per_second=5, paid_per_second=20, clock=Ticks())

    free = [await send(http, fake, USER + n) for n in range(6)]
    assert free == [200] * 5 + [429]
    assert await send(http, fake, USER + 6, allow_paid_broadcast=True) == 200


async def test_an_overall_limit_above_the_paid_one_is_not_capped_by_it(
    fake: FakeBotApi, http: aiohttp.ClientSession
) -> None:
    fake.limits = TelegramLimits(per_second=30, paid_per_second=10, tolerance=0, clock=Ticks())

    assert [await send(http, fake, USER + n) for n in range(31)] == [200] * 30 + [429]


async def test_only_messages_count_against_the_limits(fake: FakeBotApi, bot: Bot) -> None:
    fake.limits = TelegramLimits(per_second=1, clock=Ticks())
    sent = await bot.send_message(USER, "progress 1/3")

    await bot.edit_message_text("progress 2/3", chat_id=USER, message_id=sent.message_id)
    await bot.send_chat_action(USER, "typing")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_photo(USER + 1, BufferedInputFile(b"jpeg", filename="p.jpg"))


async def test_injected_429s_are_not_counted_as_our_pacing(fake: FakeBotApi, bot: Bot) -> None:
    fake.limits = TelegramLimits(per_second=5, clock=Ticks())
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)

    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(USER, "hello")
    assert fake.too_many_requests == {"injected": 1}
    assert fake.limit_violations() == 0


async def test_setting_limits_again_starts_afresh(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    fake.limits = TelegramLimits(per_second=1, clock=Ticks())
    assert await send(http, fake, USER) == 200
    assert await send(http, fake, USER + 1) == 429

    fake.limits = fake.limits
    assert await send(http, fake, USER + 1) == 200
    fake.limits = None
    assert [await send(http, fake, USER + 2, f"m{n}") for n in range(5)] == [200] * 5


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        TelegramLimits(per_second=0)
    with pytest.raises(ValueError, match="negative"):
        TelegramLimits(tolerance=-1)


async def test_latency_keeps_messages_in_flight_at_once(http: aiohttp.ClientSession) -> None:
    async with FakeBotApi(latency=60) as fake:
        sends = asyncio.gather(*(send(http, fake, USER + n) for n in range(20)))
        await fake.wait_for(lambda _: fake.call_counts["sendMessage"] == 20, timeout=10)
        assert fake.sent == [], "all 20 are in flight together, none answered yet"
        sends.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sends


# --- blocked users, photos, duplicates ------------------------------------------------------


async def test_every_send_method_is_forbidden_to_a_blocked_chat(fake: FakeBotApi, bot: Bot) -> None:
    fake.blocked_chats.add(USER)
    photo = BufferedInputFile(b"jpeg", filename="p.jpg")
    document = BufferedInputFile(b"%PDF", filename="d.pdf")

    for attempt in (
        bot.send_message(USER, "hello"),
        bot.send_photo(USER, photo, caption="look"),
        bot.send_document(USER, document),
    ):
        with pytest.raises(TelegramForbiddenError) as caught:
            await attempt
        assert caught.value.message == "Forbidden: bot was blocked by the user"
    assert fake.messages_to(USER) == []
    assert fake.forbidden == 3


async def test_send_photo_by_upload_then_by_file_id(fake: FakeBotApi, bot: Bot) -> None:
    markup = keyboard(("Got it", "ack:1"))
    first = await bot.send_photo(
        USER, BufferedInputFile(b"\xff\xd8jpeg", filename="notice.jpg"), caption="<b>Water</b> off", parse_mode="HTML"
    )
    assert first.photo is not None and first.caption == "Water off"
    file_id = first.photo[-1].file_id

    again = await bot.send_photo(USER + 1, file_id, caption="Again", reply_markup=markup)

    assert again.photo is not None and again.photo[-1].file_id == file_id
    uploaded, by_id = fake.sent
    assert (uploaded.method, uploaded.photo_bytes, uploaded.caption, uploaded.file_id) == (
        "sendPhoto",
        b"\xff\xd8jpeg",
        "<b>Water</b> off",
        file_id,
    )
    assert (by_id.chat_id, by_id.photo_bytes, by_id.file_id, by_id.plain_text) == (USER + 1, None, file_id, "Again")
    assert [button["callback_data"] for button in by_id.buttons()] == ["ack:1"]


async def test_send_photo_refuses_unknown_and_mistyped_files(fake: FakeBotApi, bot: Bot) -> None:
    document = await bot.send_document(USER, BufferedInputFile(b"%PDF", filename="d.pdf"))
    assert document.document is not None

    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "AgACAgIAAxkBnever")
    with pytest.raises(TelegramBadRequest, match="Document as Photo"):
        await bot.send_photo(USER, document.document.file_id)
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(USER, BufferedInputFile(b"jpeg", filename="p.jpg"), caption="x" * 1025)
    assert [message.method for message in fake.sent] == ["sendDocument"]


async def test_files_people_send_can_be_sent_on(fake: FakeBotApi, bot: Bot) -> None:
    _, photo_id = fake.push_photo(USER, "for the notice")
    _, document_id = fake.push_document(USER, "rules.pdf", b"%PDF-1.4", mime_type="application/pdf")
    updates = await bot.get_updates()
    assert updates[0].message is not None and updates[0].message.photo is not None
    assert (updates[0].message.photo[-1].file_id, updates[0].message.caption) == (photo_id, "for the notice")
    assert updates[1].message is not None and updates[1].message.document is not None
    assert updates[1].message.document.file_name == "rules.pdf"

    await bot.send_photo(USER + 1, photo_id)
    await bot.send_document(USER + 1, document_id)

    assert [message.file_id for message in fake.messages_to(USER + 1)] == [photo_id, document_id]


async def test_duplicates_are_the_same_message_to_the_same_chat(fake: FakeBotApi, bot: Bot) -> None:
    for chat_id, text in [(USER, "notice"), (USER + 1, "notice"), (USER, "other"), (USER, "notice")]:
        await bot.send_message(chat_id, text)
    sent = await bot.send_message(USER + 1, "progress")
    await bot.edit_message_text("notice", chat_id=USER + 1, message_id=sent.message_id)

    assert fake.duplicates() == {(USER, "notice"): 1}
    assert fake.duplicate_count() == 1
    assert fake.sends_per_chat == {USER: 3, USER + 1: 2}, "edits are not messages posted"


async def test_stats_and_reset_over_http(fake: FakeBotApi, http: aiohttp.ClientSession) -> None:
    fake.limits = TelegramLimits(per_second=1, clock=Ticks())
    fake.blocked_chats.add(USER + 9)
    await send(http, fake, USER)
    await send(http, fake, USER + 1)

    async with http.get(f"{fake.base_url}/stats") as response:
        stats = await response.json()
    assert stats["recorded"] == 1
    assert stats["per_chat"] == {str(USER): 1}
    assert stats["too_many_requests"] == 1
    assert stats["first_at"] is not None and stats["first_at"] == stats["last_at"]

    async with http.post(f"{fake.base_url}/reset", json={"blocked_chats": [USER]}) as response:
        assert response.status == 200
    assert fake.sent == [] and fake.too_many_requests == {}
    assert fake.blocked_chats == {USER}
    assert await send(http, fake, USER + 1) == 200, "the limits start afresh"


ROOT = Path(__file__).resolve().parents[1]


async def test_standalone_process_serves_limits_and_stats(http: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.fake_bot_api",
        "--port",
        "0",
        "--limit-per-s",
        "2",
        "--tolerance",
        "0",
        "--blocked",
        "77",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(await asyncio.wait_for(process.stdout.readline(), 30))
        base = f"http://127.0.0.1:{port}"
        statuses = []
        for chat_id in (77, 1, 2):
            async with http.post(f"{base}/bot123456:TEST/sendMessage", json={"chat_id": chat_id, "text": "x"}) as r:
                statuses.append(r.status)
        async with http.get(f"{base}/stats") as response:
            stats = await response.json()
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(process.wait(), 30)

    assert statuses == [403, 200, 429], "a message to a blocked chat still counts against the limit"
    assert (stats["recorded"], stats["too_many_requests"], stats["forbidden"]) == (1, 1, 1)
    assert json.dumps(stats["per_chat"]) == '{"1": 1}'
    assert returncode == 0


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("协商结果.pdf", b"%PDF-1.4\r\n--not-a-boundary\r\n\r\n"),
        ('a "quoted" name.csv', b"a,b\r\n"),
        ("one byte", b"\x00"),
    ],
)
async def test_uploads_keep_their_name_bytes_caption_and_buttons(
    fake: FakeBotApi, bot: Bot, filename: str, content: bytes
) -> None:
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="好的", callback_data="ok")]])
    await bot.send_document(
        USER, BufferedInputFile(content, filename=filename), caption="会议纪要", reply_markup=markup
    )

    (sent,) = fake.messages_to(USER)
    assert (sent.document_name, sent.document_bytes, sent.caption) == (filename, content, "会议纪要")
    assert sent.reply_markup == {"inline_keyboard": [[{"text": "好的", "callback_data": "ok"}]]}
