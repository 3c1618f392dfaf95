"""Linli as residents and community workers meet it on Telegram: the real router and handlers, the real aiogram
adapter over real HTTP against the fake Bot API, on SQLite and on PostgreSQL.

Each test tells one story from the person's side: they open an invitation link, mistype a code, tap a menu
button, ask to join; the assertions are on what their chat shows (the text as Telegram would display it, the
buttons and what those buttons do), in the language their Telegram app reports."""

from __future__ import annotations

import re

import pytest

from bot.app import localized_commands
from bot.conversation import Conversation
from bot.delivery.sender import Sender
from bot.handlers.join import DecideJoin, FormAction, JoinForm
from bot.handlers.language import ChooseLanguage
from bot.handlers.start import StartWay, Way
from bot.rendering import Localizer, Localizers
from bot.router import RunCommand
from community.clock import FakeClock
from community.codes import LOCKOUT, MAX_WRONG_CODES
from community.communities import add_community
from community.errors import InvalidCode
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from community.verification import create_invitation
from tests.support.fake_bot_api import FakeBotApi, parse_telegram_html
from tests.support.telegram import TelegramUser, callback_data, labels, seen

pytestmark = pytest.mark.e2e

COMMUNITY = "康乐社区"
HOME = "12号楼 3单元 501"
CJK = re.compile(r"[\u4e00-\u9fff]")

# Telegram user ids: every test has its own people, so chats never mix.
WANG_FANG = 2001  # reads Chinese
CHEN_XIAO = 2002  # reads English
LI_NA = 2003  # community worker, reads Chinese
NEWCOMER = 2004

# A display name as Telegram may deliver it: HTML special characters, an emoji, right-to-left Hebrew.
TRICKY_NAME = "<b>王&芳</b> 🏠 שלום"

RESIDENT_MENU = [RunCommand(name).pack() for name in ("consult", "notifications", "language", "privacy", "help")]
GUEST_MENU = [RunCommand(name).pack() for name in ("start", "language", "privacy", "help")]
STAFF_ONLY = [
    RunCommand(name).pack()
    for name in ("invite", "requests", "members", "notice", "notices", "newconsultation", "consultations")
]


# --- reading a chat ------------------------------------------------------------------------------------------


def shown(html: str) -> str:
    """A rendered text the way a reader sees it."""
    return parse_telegram_html(html)[0]


def in_chinese(text: str, *english: str) -> bool:
    """Chinese text, not the English message ids (names, which may be in any script, aside)."""
    return CJK.search(text.replace(COMMUNITY, "")) is not None and not any(phrase in text for phrase in english)


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture
async def community_id(uows: UnitOfWorkFactory) -> int:
    async with uows() as uow:
        community = await add_community(uow, name=COMMUNITY, kind=CommunityKind.NEIGHBOURHOOD)
        await uow.commit()
    assert community.id is not None
    return community.id


async def invitation_link(
    conversation: Conversation, uows: UnitOfWorkFactory, community_id: int, role: Role = Role.RESIDENT
) -> str:
    """What the operator hands out: a one-person invitation as a deep link to the bot."""
    async with uows() as uow:
        issued = await create_invitation(uow, actor_id=None, community_id=community_id, role=role)
        await uow.commit()
    return conversation.bot.deep_link(issued.code)


# --- 1, 2: joining by the invitation link -----------------------------------------------------------------------


async def test_a_chinese_newcomer_opens_the_invitation_link_and_gets_the_resident_menu_in_chinese(
    telegram: FakeBotApi, conversation: Conversation, uows: UnitOfWorkFactory, community_id: int, zh: Localizer
) -> None:
    wang = TelegramUser(telegram, WANG_FANG, "王芳", "zh-hans")
    wang.opens(await invitation_link(conversation, uows, community_id))

    # One message: 欢迎加入康乐社区！ / 你已以居民的身份加入。 / 王芳，你想做些什么？
    # over 通知设置 · 语言 · 隐私 · 帮助.
    (menu,) = await wang.receives(1)
    assert seen(menu).splitlines() == [
        shown(zh.text("Welcome to %(community)s!", community=COMMUNITY)),
        shown(zh.text("You joined as %(role)s.", role=zh.label("resident"))),
        "",
        shown(zh.text("What would you like to do, %(name)s?", name="王芳")),
    ]
    assert in_chinese(seen(menu), "Welcome", "You joined as", "What would you like to do")
    assert callback_data(menu) == RESIDENT_MENU
    assert labels(menu) == [
        zh.label("Consultations"),
        zh.label("Notifications"),
        zh.label("Language"),
        zh.label("Privacy"),
        zh.label("Help"),
    ]
    assert all(
        in_chinese(label, "Consultations", "Notifications", "Language", "Privacy", "Help") for label in labels(menu)
    )
    # A resident gets no staff buttons.
    assert not set(STAFF_ONLY) & set(callback_data(menu))


async def test_an_english_newcomer_opens_another_invitation_link_and_gets_the_resident_menu_in_english(
    telegram: FakeBotApi, conversation: Conversation, uows: UnitOfWorkFactory, community_id: int
) -> None:
    # Someone else already joined in Chinese; the community's default language is Chinese too.
    wang = TelegramUser(telegram, WANG_FANG, "王芳", "zh-hans")
    wang.opens(await invitation_link(conversation, uows, community_id))
    await wang.receives(1)

    chen = TelegramUser(telegram, CHEN_XIAO, "Chen Xiao", "en")
    chen.opens(await invitation_link(conversation, uows, community_id))

    (menu,) = await chen.receives(1)
    assert seen(menu).splitlines() == [
        f"Welcome to {COMMUNITY}!",
        "You joined as resident.",
        "",
        "What would you like to do, Chen Xiao?",
    ]
    assert callback_data(menu) == RESIDENT_MENU
    assert labels(menu) == ["Consultations", "Notifications", "Language", "Privacy", "Help"]
    assert not set(STAFF_ONLY) & set(callback_data(menu))


async def test_a_link_opened_halfway_through_the_join_form_takes_the_phone_keyboard_away(
    telegram: FakeBotApi, conversation: Conversation, uows: UnitOfWorkFactory, community_id: int
) -> None:
    chen = TelegramUser(telegram, CHEN_XIAO, "Chen Xiao", "en")
    chen.sends("/start")
    (hello,) = await chen.receives(1)
    chen.taps(hello, StartWay(Way.ASK).pack())
    await chen.receives(1)
    chen.sends("Chen Xiao")
    await chen.receives(1)
    chen.sends(HOME)
    share_phone, _ = await chen.receives(2)
    assert share_phone.reply_markup is not None and "keyboard" in share_phone.reply_markup

    # The worker's link arrives meanwhile: the welcome clears the phone button, and the menu follows.
    chen.opens(await invitation_link(conversation, uows, community_id))
    welcome, menu = await chen.receives(2)
    assert seen(welcome) == f"Welcome to {COMMUNITY}!\nYou joined as resident."
    assert welcome.reply_markup == {"remove_keyboard": True}
    assert seen(menu).splitlines()[0] == COMMUNITY
    assert callback_data(menu) == RESIDENT_MENU


# --- 3: wrong codes -----------------------------------------------------------------------------------------


async def test_wrong_codes_are_refused_and_the_sixth_try_meets_the_lockout(
    telegram: FakeBotApi,
    conversation: Conversation,
    uows: UnitOfWorkFactory,
    community_id: int,
    clock: FakeClock,
    zh: Localizer,
) -> None:
    wang = TelegramUser(telegram, WANG_FANG, "王芳", "zh-hans")
    real_link = await invitation_link(conversation, uows, community_id)
    not_valid = shown(zh.text(InvalidCode.message))  # 邀请码无效，请核对后再试。

    wang.sends("/start ABCDEFGHJK")  # looks like a code, but nobody issued it
    (refusal,) = await wang.receives(1)
    first_line, try_again = seen(refusal).splitlines()
    assert first_line == not_valid
    assert try_again == shown(
        zh.text("To try again, send /start followed by the code, or send /start to ask to join instead.")
    )
    assert in_chinese(seen(refusal), "not valid", "To try again")

    # Still not a member: the menu is the guest menu.
    wang.sends("/menu")
    (menu,) = await wang.receives(1)
    assert seen(menu).splitlines()[0] == shown(zh.text("You are not a member of a community yet."))
    assert callback_data(menu) == GUEST_MENU

    # Three more wrong codes are each refused the same way.
    for typo in ("ABCDEFGHJL", "hello", "ABCDEFGHJM"):
        wang.sends(f"/start {typo}")
        (refusal,) = await wang.receives(1)
        assert seen(refusal).splitlines()[0] == not_valid

    # The fifth wrong code locks the account, and the reply says until when (in Shanghai time).
    assert MAX_WRONG_CODES == 5
    locked = shown(zh.text("Too many wrong codes. Try again after %(until)s.", until=clock.now() + LOCKOUT))
    wang.sends("/start ABCDEFGHJN")
    (refusal,) = await wang.receives(1)
    assert seen(refusal).splitlines() == [not_valid, locked]

    # The sixth try is refused with the lockout message, even with the real link.
    wang.opens(real_link)
    (lockout,) = await wang.receives(1)
    assert seen(lockout) == locked
    assert in_chinese(seen(lockout), "Too many wrong codes")
    wang.sends("/menu")
    (menu,) = await wang.receives(1)
    assert callback_data(menu) == GUEST_MENU

    # Once the lockout is over, the real link works.
    clock.advance(LOCKOUT)
    wang.opens(real_link)
    (menu,) = await wang.receives(1)
    assert seen(menu).splitlines()[0] == shown(zh.text("Welcome to %(community)s!", community=COMMUNITY))
    assert callback_data(menu) == RESIDENT_MENU


async def test_a_photo_at_the_code_prompt_is_answered_by_the_prompt_and_not_counted(
    telegram: FakeBotApi, conversation: Conversation, uows: UnitOfWorkFactory, community_id: int, zh: Localizer
) -> None:
    wang = TelegramUser(telegram, WANG_FANG, "王芳", "zh-hans")
    wang.sends("/start")
    (hello,) = await wang.receives(1)
    wang.taps(hello, StartWay(Way.CODE).pack())
    (prompt,) = await wang.receives(1)
    assert seen(prompt) == shown(zh.text("Send me your invitation code. Send /cancel to stop."))

    # A photo of the printed invitation, more than the 5 wrong codes that would lock: the prompt asks for the code.
    for _ in range(MAX_WRONG_CODES + 1):
        telegram.push_photo(WANG_FANG, "邀请函", language_code="zh-hans")
        (answer,) = await wang.receives(1)
        assert seen(answer) == shown(zh.text("Please type the invitation code your community worker gave you."))
        assert in_chinese(seen(answer), "Please type", "notice")

    # Not counted as wrong codes, and the prompt still stands: the code typed now lets her in.
    code = (await invitation_link(conversation, uows, community_id)).rpartition("=")[2]
    wang.sends(code)
    (menu,) = await wang.receives(1)
    assert seen(menu).splitlines()[0] == shown(zh.text("Welcome to %(community)s!", community=COMMUNITY))


# --- 4: menu buttons ----------------------------------------------------------------------------------------


async def test_a_menu_button_runs_its_command_and_the_tap_is_answered(
    telegram: FakeBotApi, conversation: Conversation, uows: UnitOfWorkFactory, community_id: int, zh: Localizer
) -> None:
    wang = TelegramUser(telegram, WANG_FANG, "王芳", "zh-hans")
    wang.opens(await invitation_link(conversation, uows, community_id))
    (menu,) = await wang.receives(1)

    # 语言: the language choice, each language named in itself.
    wang.taps(menu, RunCommand("language").pack())
    (choice,) = await wang.receives(1)
    assert choice.method == "sendMessage"
    assert seen(choice) == shown(zh.text("Choose the language Linli writes to you in."))
    assert callback_data(choice) == [ChooseLanguage("zh_Hans").pack(), ChooseLanguage("en").pack()]
    assert labels(choice) == ["中文", "English"]
    await telegram.wait_for(lambda _: len(telegram.callback_answers) == 1)
    assert telegram.callback_answers[0].user_id == WANG_FANG

    # English: the choice is confirmed in place, and the menu comes back in English.
    wang.taps(choice, ChooseLanguage("en").pack())
    done, english_menu = await wang.receives(2)
    assert done.method == "editMessageText" and done.message_id == choice.message_id
    assert seen(done) == "Done: Linli will write to you in this language from now on."
    assert seen(english_menu).splitlines()[-1] == "What would you like to do, 王芳?"
    assert labels(english_menu) == ["Consultations", "Notifications", "Language", "Privacy", "Help"]
    assert callback_data(english_menu) == RESIDENT_MENU

    # Help, from the new menu.
    wang.taps(english_menu, RunCommand("help").pack())
    (help_text,) = await wang.receives(1)
    assert "/menu shows everything your roles allow." in seen(help_text)

    await telegram.wait_for(lambda _: len(telegram.callback_answers) == 3)
    assert telegram.call_counts["answerCallbackQuery"] == 3  # every tap answered exactly once
    assert all(answer.user_id == WANG_FANG for answer in telegram.callback_answers)


# --- 5: the command menu ------------------------------------------------------------------------------------


async def test_the_command_menu_is_registered_in_chinese_by_default_and_in_english(
    telegram: FakeBotApi, conversation: Conversation, localizers: Localizers
) -> None:
    expected = localized_commands(localizers, conversation.router)
    chinese = [{"command": name, "description": text} for name, text in expected["zh_Hans"]]
    english = [{"command": name, "description": text} for name, text in expected["en"]]

    assert set(telegram.commands) == {None, "zh", "en"}
    assert telegram.commands[None] == chinese  # Telegram apps in any other language see Chinese
    assert telegram.commands["zh"] == chinese
    assert telegram.commands["en"] == english

    names = [command["command"] for command in chinese]
    assert {"start", "menu", "help", "language", "privacy", "cancel"} <= set(names)
    assert names == [command["command"] for command in english]
    assert all(CJK.search(command["description"]) for command in chinese)
    by_name = {command["command"]: command["description"] for command in english}
    assert by_name["start"] == "Join your community, or open the main menu"
    assert by_name["menu"] == "Everything your roles allow"


# --- 6: names that are not plain text -----------------------------------------------------------------------


async def test_a_tricky_display_name_is_shown_as_typed_in_the_menu(
    telegram: FakeBotApi, conversation: Conversation, uows: UnitOfWorkFactory, community_id: int
) -> None:
    newcomer = TelegramUser(telegram, NEWCOMER, TRICKY_NAME, "en")
    newcomer.opens(await invitation_link(conversation, uows, community_id))

    # The fake refuses unescaped HTML like Telegram does, so the menu arriving at all proves the escaping.
    (menu,) = await newcomer.receives(1)
    assert seen(menu).splitlines()[-1] == f"What would you like to do, {TRICKY_NAME}?"
    assert menu.text is not None and "&lt;b&gt;王&amp;芳&lt;/b&gt;" in menu.text
    # Only the welcome line is bold; the name's <b> is text, not formatting.
    _, entities = parse_telegram_html(menu.text)
    assert entities == [{"type": "bold", "offset": 0, "length": len(f"Welcome to {COMMUNITY}!")}]


async def test_a_join_request_reaches_the_worker_with_the_name_shown_safely(
    telegram: FakeBotApi,
    telegram_delivery: Sender,
    conversation: Conversation,
    uows: UnitOfWorkFactory,
    community_id: int,
    zh: Localizer,
) -> None:
    # The community's worker joined with a worker invitation from the operator.
    li_na = TelegramUser(telegram, LI_NA, "李娜", "zh-hans")
    li_na.opens(await invitation_link(conversation, uows, community_id, Role.COMMUNITY_WORKER))
    (worker_menu,) = await li_na.receives(1)
    assert {RunCommand("invite").pack(), RunCommand("requests").pack()} <= set(callback_data(worker_menu))

    # A newcomer without a code says hello and is greeted by their Telegram name.
    newcomer = TelegramUser(telegram, NEWCOMER, TRICKY_NAME, "en")
    newcomer.sends("/start")
    (hello,) = await newcomer.receives(1)
    assert seen(hello).splitlines()[0] == f"Welcome to Linli (邻里), {TRICKY_NAME}!"
    assert callback_data(hello) == [StartWay(Way.CODE).pack(), StartWay(Way.ASK).pack()]

    # They ask to join; there is one community, so the form asks for the name straight away.
    newcomer.taps(hello, StartWay(Way.ASK).pack())
    (ask_name,) = await newcomer.receives(1)
    assert seen(ask_name).splitlines()[0] == f"Ask to join {COMMUNITY}"
    newcomer.sends(TRICKY_NAME)
    (ask_home,) = await newcomer.receives(1)
    assert seen(ask_home).startswith("Where do you live?")
    newcomer.sends(HOME)
    share_phone, rather_not = await newcomer.receives(2)
    assert share_phone.reply_markup is not None and share_phone.reply_markup["keyboard"][0][0]["request_contact"]
    newcomer.taps(rather_not, JoinForm(FormAction.SKIP_PHONE).pack())
    _, _, summary = await newcomer.receives(3)
    assert f"Name: {TRICKY_NAME}" in seen(summary).splitlines()
    assert f"Household: {HOME}" in seen(summary).splitlines()
    newcomer.taps(summary, JoinForm(FormAction.SUBMIT).pack())
    (sent,) = await newcomer.receives(1)
    assert sent.method == "editMessageText" and sent.message_id == summary.message_id
    assert seen(sent).startswith(f"Your request to join {COMMUNITY} has been sent.")

    # The worker is told in Chinese, with the name exactly as the newcomer wrote it.
    (request,) = await li_na.receives(1)
    lines = seen(request).splitlines()
    assert lines[0] == shown(zh.text("Request to join %(community)s", community=COMMUNITY))  # 申请加入康乐社区
    assert shown(zh.text("Name: %(name)s", name=TRICKY_NAME)) in lines  # 姓名：<b>王&芳</b> 🏠 שלום
    assert shown(zh.text("Household: %(household)s", household=HOME)) in lines
    assert in_chinese(seen(request).replace(TRICKY_NAME, ""), "Request to join", "Name:")
    approve, reject = callback_data(request)
    assert DecideJoin.unpack(approve).approve and not DecideJoin.unpack(reject).approve

    # The worker approves; the newcomer hears it in English and is a resident now.
    li_na.taps(request, approve)
    (decided,) = await li_na.receives(1)
    assert decided.message_id == request.message_id
    assert seen(decided).splitlines()[-1] == shown(zh.text("✅ Approved."))
    (approved,) = await newcomer.receives(1)
    assert seen(approved).splitlines()[:2] == [
        f"Welcome to {COMMUNITY}!",
        "A community worker approved your request to join.",
    ]
    newcomer.sends("/menu")
    (menu,) = await newcomer.receives(1)
    assert callback_data(menu) == RESIDENT_MENU
    assert seen(menu).splitlines()[-1] == f"What would you like to do, {TRICKY_NAME}?"
