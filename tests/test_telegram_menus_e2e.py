"""Each person's command menu on Telegram (issue 9): the menu lists only what the person's roles allow, in their
language, set per chat (BotCommandScopeChat) and set again when their roles change; everyone else sees the
public menu, what a stranger may use. The real router and handlers behind the aiogram adapter, over real HTTP
against the fake Bot API, which resolves a chat's menu as Telegram does; on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.conversation import Conversation
from bot.delivery.sender import Sender
from bot.handlers.join import DecideJoin, FormAction, JoinForm
from bot.handlers.privacy import ForgetChoice
from bot.handlers.start import StartWay, Way
from community.communities import add_community, grant_role
from community.models import ChannelAccount
from community.roles import CommunityKind, Role
from community.unit_of_work import UnitOfWorkFactory
from community.verification import create_invitation
from tests.support.fake_bot_api import FakeBotApi, SentMessage
from tests.support.telegram import TelegramUser, callback_data, member_on_telegram

pytestmark = pytest.mark.e2e

COMMUNITY = "和平社区"
LI_NA = 5001  # community worker
WANG_FANG = 5002  # resident
STRANGER = 5003  # nobody yet
NEWCOMER = 5004  # asks to join
CHEN_XIAO = 5005  # joins with a code, reads English

STAFF_COMMANDS = {"invite", "requests", "members", "notice", "notices", "newconsultation", "consultations"}
RESIDENT_COMMANDS = {"consult", "notifications"}
PUBLIC_COMMANDS = {"start", "menu", "help", "language", "privacy", "forget", "cancel"}


@pytest.fixture
async def community_id(uows: UnitOfWorkFactory) -> int:
    """和平社区: 李娜 works there, 王芳 lives there (both on Telegram)."""
    async with uows() as uow:
        community = await add_community(uow, name=COMMUNITY, kind=CommunityKind.NEIGHBOURHOOD)
        assert community.id is not None
        await member_on_telegram(uow, community.id, LI_NA, "李娜", "zh-hans", {Role.COMMUNITY_WORKER})
        await member_on_telegram(uow, community.id, WANG_FANG, "王芳", "zh-hans", {Role.RESIDENT}, home="1号楼 101")
        await uow.commit()
    return community.id


async def menu_becomes(fake: FakeBotApi, chat_id: int, commands: set[str], language: str = "zh-hans") -> set[str]:
    """The menu that chat's Telegram app shows, once it holds ``commands``."""
    await fake.wait_for(lambda _: commands <= set(fake.menu_seen(chat_id, language)), timeout=10)
    return set(fake.menu_seen(chat_id, language))


async def test_strangers_and_residents_see_no_staff_commands_and_a_worker_does(
    telegram: FakeBotApi, community_id: int
) -> None:
    # Nobody's own menu yet: everyone sees the public one, without a single staff command.
    stranger = TelegramUser(telegram, STRANGER, "路人", "zh-hans")
    stranger.sends("/start")
    await stranger.receives(1)
    assert set(telegram.menu_seen(STRANGER, "zh-hans")) == PUBLIC_COMMANDS
    assert set(telegram.menu_seen(STRANGER, "fr")) == PUBLIC_COMMANDS
    assert not STAFF_COMMANDS & set(telegram.menu_seen(LI_NA, "zh-hans"))

    # /menu sets each member's own menu: the resident's has her commands and no staff command.
    wang = TelegramUser(telegram, WANG_FANG, "王芳", "zh-hans")
    wang.sends("/menu")
    await wang.receives(1)
    assert await menu_becomes(telegram, WANG_FANG, RESIDENT_COMMANDS) == PUBLIC_COMMANDS | RESIDENT_COMMANDS

    # The worker's has /invite and the rest of her work.
    li_na = TelegramUser(telegram, LI_NA, "李娜", "zh-hans")
    li_na.sends("/menu")
    await li_na.receives(1)
    worker_menu = await menu_becomes(telegram, LI_NA, {"invite"})
    assert worker_menu == PUBLIC_COMMANDS | RESIDENT_COMMANDS | STAFF_COMMANDS
    assert set(telegram.menu_seen(STRANGER, "zh-hans")) == PUBLIC_COMMANDS  # others' menus are untouched
    assert ("chat:5001", None) in telegram.scoped_commands  # one chat's menu, for any client language


async def test_approving_a_join_request_updates_the_new_members_menu(
    telegram: FakeBotApi, telegram_delivery: Sender, community_id: int
) -> None:
    newcomer = TelegramUser(telegram, NEWCOMER, "赵磊", "zh-hans")
    newcomer.sends("/start")
    (hello,) = await newcomer.receives(1)
    newcomer.taps(hello, StartWay(Way.ASK).pack())
    await newcomer.receives(1)
    newcomer.sends("赵磊")
    await newcomer.receives(1)
    newcomer.sends("2号楼 202")
    _, rather_not = await newcomer.receives(2)
    newcomer.taps(rather_not, JoinForm(FormAction.SKIP_PHONE).pack())
    _, _, summary = await newcomer.receives(3)
    newcomer.taps(summary, JoinForm(FormAction.SUBMIT).pack())
    await newcomer.receives(1)
    assert set(telegram.menu_seen(NEWCOMER, "zh-hans")) == PUBLIC_COMMANDS

    li_na = TelegramUser(telegram, LI_NA, "李娜", "zh-hans")
    (request,) = await li_na.receives(1)
    approve, _ = callback_data(request)
    assert DecideJoin.unpack(approve).approve
    li_na.taps(request, approve)
    await newcomer.receives(1)  # the welcome

    # Without a word from the new member, their menu now has the resident's commands, and no staff command.
    assert await menu_becomes(telegram, NEWCOMER, RESIDENT_COMMANDS) == PUBLIC_COMMANDS | RESIDENT_COMMANDS


async def test_joining_with_a_code_and_forgetting_set_the_menu_in_the_persons_language(
    telegram: FakeBotApi, conversation: Conversation, uows: UnitOfWorkFactory, community_id: int
) -> None:
    async with uows() as uow:
        issued = await create_invitation(uow, actor_id=None, community_id=community_id, role=Role.RESIDENT)
        await uow.commit()
    chen = TelegramUser(telegram, CHEN_XIAO, "Chen Xiao", "en")
    chen.opens(conversation.bot.deep_link(issued.code))
    await chen.receives(1)
    assert await menu_becomes(telegram, CHEN_XIAO, RESIDENT_COMMANDS, "en") == PUBLIC_COMMANDS | RESIDENT_COMMANDS
    descriptions = [c["description"] for c in telegram.scoped_commands[(f"chat:{CHEN_XIAO}", None)]]
    assert "Take part in your community's consultations" in descriptions  # English, as Chen reads

    # /forget: nothing is left of Chen, and the menu is a stranger's again.
    chen.sends("/forget")
    (question,) = await chen.receives(1)
    chen.taps(question, ForgetChoice(erasure_offered_to(question), confirm=True).pack())
    await chen.receives(1)
    await telegram.wait_for(lambda _: set(telegram.menu_seen(CHEN_XIAO, "en")) == PUBLIC_COMMANDS, timeout=10)


async def test_a_role_granted_from_the_command_line_shows_at_the_next_menu(
    telegram: FakeBotApi, uows: UnitOfWorkFactory, community_id: int
) -> None:
    wang = TelegramUser(telegram, WANG_FANG, "王芳", "zh-hans")
    wang.sends("/menu")
    await wang.receives(1)
    await menu_becomes(telegram, WANG_FANG, RESIDENT_COMMANDS)
    async with uows() as uow:
        person_id = (
            await uow.session.exec(select(ChannelAccount.person_id).where(ChannelAccount.external_id == str(WANG_FANG)))
        ).one()
        await grant_role(uow, person_id=person_id, community_id=community_id, role=Role.COMMITTEE_MEMBER)
        await uow.commit()
    wang.sends("/menu")
    await wang.receives(1)
    assert {"notice", "newconsultation", "members"} <= await menu_becomes(telegram, WANG_FANG, {"notice"})
    assert "invite" not in telegram.menu_seen(WANG_FANG, "zh-hans")  # staff only, not the committee


def erasure_offered_to(message: SentMessage) -> int:
    """The person id in the Erase button under /forget's question."""
    return ForgetChoice.unpack(callback_data(message)[0]).person_id
