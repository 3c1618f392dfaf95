"""/members: the community's members, a page at a time, with Previous / Next editing the message in place."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from bot.callbacks import CallbackData
from bot.context import Context
from bot.events import ButtonPress, Command
from bot.labels import role_list
from bot.replies import AnswerButton, Button, EditText, Keyboard, Reply, SendText
from bot.router import Router
from community.errors import NotAMember
from community.members import MemberPage, list_members
from community.roles import Action, Role
from i18n import N_

PAGE_SIZE = 20


@dataclass(frozen=True)
class MembersPage(CallbackData):
    prefix: ClassVar[str] = "mp"
    community_id: int
    page: int


def _render(ctx: Context, page: MemberPage) -> tuple[str, Keyboard]:
    def roles(held: Iterable[Role]) -> str:
        return role_list(ctx.l, held)

    text = ctx.l.render("members.j2", page=page, roles=roles)
    buttons: list[Button] = []
    if page.has_previous:
        buttons.append(Button(ctx.l.label("← Previous"), MembersPage(page.community_id, page.page - 1).pack()))
    if page.has_next:
        buttons.append(Button(ctx.l.label("Next →"), MembersPage(page.community_id, page.page + 1).pack()))
    return text, (tuple(buttons),) if buttons else ()


async def show_members(ctx: Context, _: Command) -> Sequence[Reply]:
    membership = ctx.membership
    if membership is None or membership.community.id is None:
        raise NotAMember()
    page = await list_members(
        ctx.uow, actor_id=ctx.person_id, community_id=membership.community.id, page=0, page_size=PAGE_SIZE
    )
    text, buttons = _render(ctx, page)
    return (SendText(text, buttons=buttons),)


async def turn_page(ctx: Context, data: MembersPage) -> Sequence[Reply]:
    page = await list_members(
        ctx.uow, actor_id=ctx.person_id, community_id=data.community_id, page=data.page, page_size=PAGE_SIZE
    )
    text, buttons = _render(ctx, page)
    payload = ctx.event.payload
    message_id = payload.message_id if isinstance(payload, ButtonPress) else None
    reply: Reply = EditText(message_id, text, buttons) if message_id is not None else SendText(text, buttons)
    return (AnswerButton(), reply)


def register(router: Router) -> None:
    router.command("members", show_members, description=N_("The members of your community"), action=Action.LIST_MEMBERS)
    router.button(MembersPage, turn_page)
