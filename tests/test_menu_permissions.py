"""The menus offer what the kernel says a person may do (community.viewers.home_viewer), inherited roles included:
a resident of 梧桐社区 who is also the administrator of the street above it gets the staff entries in /menu and in
their chat's command menu, as the services behind those entries allow; a resident who is not, does not."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import select

from bot.conversation import Conversation
from bot.events import Command, Event, Sender
from bot.replies import Reply, SendText, SetCommands
from community.communities import add_member
from community.demo import STREET, WUTONG, seed_demo
from community.models import Community
from community.roles import Action, Role
from community.unit_of_work import UnitOfWorkFactory
from community.viewers import viewer_in

STAFF_ENTRIES = ("Invite residents", "Join requests", "Members")
STAFF_COMMANDS = ("invite", "requests", "members")


async def _seed(uows: UnitOfWorkFactory) -> dict[str, int]:
    """The demo, with 王芳 (resident of 梧桐社区) also the street administrator of the street above it."""
    async with uows() as uow:
        demo = await seed_demo(uow)
        ids: dict[str, int] = {}
        for name in (STREET, WUTONG):
            ids[name] = (await uow.session.exec(select(Community.id).where(Community.name == name))).one() or 0
        await add_member(
            uow,
            person_id=demo.by_key("wang").person_id,
            community_id=ids[STREET],
            roles={Role.STREET_ADMINISTRATOR},
            reason="test",
        )
        ids["wang"] = demo.by_key("wang").person_id
        await uow.commit()
    return ids


async def _menu(conversation: Conversation, key: str) -> tuple[list[str], list[str]]:
    """The labels of /menu's buttons and the commands of the chat's own command menu, in English."""
    replies: Sequence[Reply] = await conversation.handle(
        Event(Sender("console", key, key, key, "en"), Command("menu")), menus=True
    )
    buttons = [
        button.label for reply in replies if isinstance(reply, SendText) for row in reply.buttons for button in row
    ]
    commands = [name for reply in replies if isinstance(reply, SetCommands) for name, _ in reply.commands]
    return buttons, commands


async def test_a_role_reaching_down_from_the_street_shows_in_the_menus(
    uows: UnitOfWorkFactory, conversation: Conversation
) -> None:
    ids = await _seed(uows)
    async with uows() as uow:
        wang = await viewer_in(uow, ids["wang"], ids[WUTONG])
    assert Role.STREET_ADMINISTRATOR in wang.roles and Action.DECIDE_JOIN_REQUEST in wang.actions

    buttons, commands = await _menu(conversation, "wang")
    assert all(entry in buttons for entry in STAFF_ENTRIES)
    assert all(command in commands for command in STAFF_COMMANDS)

    buttons, commands = await _menu(conversation, "liu")  # lives with 王芳, a resident only
    assert not any(entry in buttons for entry in STAFF_ENTRIES)
    assert not any(command in commands for command in STAFF_COMMANDS)
    assert "Consultations" in buttons and "consult" in commands
