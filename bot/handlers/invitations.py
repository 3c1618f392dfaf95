"""For community workers: /invite makes an invitation code and link (shown once), /requests lists the join
requests waiting for a decision, each with Approve / Reject."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlencode

from markupsafe import Markup

from bot.callbacks import CallbackData
from bot.context import Context
from bot.events import ButtonPress, Command, ContactShared, FileShared, TextInput
from bot.handlers.join import decision_buttons, request_text
from bot.labels import role_label
from bot.replies import AnswerButton, Button, EditText, Reply, SendText
from bot.router import Router
from community.communities import get_community
from community.models import Community
from community.roles import Action, Role
from community.verification import (
    HOUSEHOLD_ROLES,
    INVITABLE_ROLES,
    IssuedInvitation,
    JoinRequestView,
    create_invitation,
    invitation_community,
    pending_join_requests,
    require_staff_communities,
    single_use,
)
from i18n import N_

USES_CHOICES: tuple[int, ...] = (1, 10, 50)
STATE_HOUSEHOLD = "invite.household"
REQUESTS_SHOWN = 20  # one message each; more than this, and the worker is told how many are left
STALE = N_("This button is out of date. Send /menu to start again.")


@dataclass(frozen=True)
class InviteCommunity(CallbackData):
    prefix: ClassVar[str] = "ic"
    community_id: int


@dataclass(frozen=True)
class InviteRole(CallbackData):
    prefix: ClassVar[str] = "ir"
    community_id: int
    role: Role


@dataclass(frozen=True)
class InviteUses(CallbackData):
    prefix: ClassVar[str] = "iu"
    community_id: int
    role: Role
    uses: int


def _message_id(ctx: Context) -> str | None:
    payload = ctx.event.payload
    return payload.message_id if isinstance(payload, ButtonPress) else None


def _replace(ctx: Context, text: str) -> Reply:
    """Show text in place of the message whose button was pressed (dropping its buttons), or as a new one."""
    message_id = _message_id(ctx)
    return EditText(message_id, text) if message_id is not None else SendText(text)


# ---------------------------------------------------------------------------------------------------------------
# /invite


async def invite(ctx: Context, _: Command) -> Sequence[Reply]:
    await ctx.clear_state()
    communities = await require_staff_communities(ctx.uow, ctx.person_id, Action.CREATE_INVITATION)
    if len(communities) == 1:
        return (_role_question(ctx, communities[0]),)
    buttons = tuple((Button(c.name, InviteCommunity(c.id or 0).pack()),) for c in communities)
    return (SendText(ctx.l.text("Which community is the invitation for?"), buttons=buttons),)


def _role_question(ctx: Context, community: Community) -> SendText:
    community_id = community.id or 0
    buttons = tuple(
        (Button(role_label(ctx.l, role), InviteRole(community_id, role).pack()),) for role in INVITABLE_ROLES
    )
    return SendText(ctx.l.render("invitation_role.j2", community=community.name), buttons=buttons)


async def chose_community(ctx: Context, data: InviteCommunity) -> Sequence[Reply]:
    community = await invitation_community(ctx.uow, ctx.person_id, data.community_id)
    if community is None:
        return (AnswerButton(ctx.l.label(STALE), alert=True),)
    return (
        AnswerButton(),
        _replace(ctx, ctx.l.text("Community: %(community)s", community=community.name)),
        _role_question(ctx, community),
    )


async def chose_role(ctx: Context, data: InviteRole) -> Sequence[Reply]:
    community = await invitation_community(ctx.uow, ctx.person_id, data.community_id, data.role)
    if community is None:
        return (AnswerButton(ctx.l.label(STALE), alert=True),)
    chosen = _replace(ctx, ctx.l.text("Invitation for: %(role)s", role=role_label(ctx.l, data.role)))
    if data.role in HOUSEHOLD_ROLES:
        # A household representative speaks for one household: name it, and the code is for one person.
        await ctx.set_state(STATE_HOUSEHOLD, community_id=data.community_id, role=data.role.value)
        return (AnswerButton(), chosen, SendText(ctx.l.render("invitation_household.j2", community=community.name)))
    if single_use(data.role):
        # Staff: one person, a short lifetime; nothing to ask.
        issued = await create_invitation(
            ctx.uow, actor_id=ctx.person_id, community_id=data.community_id, role=data.role
        )
        return (AnswerButton(), chosen, await _show_code(ctx, issued))
    buttons = (
        tuple(
            Button(ctx.l.t.format_number(uses), InviteUses(data.community_id, data.role, uses).pack())
            for uses in USES_CHOICES
        ),
    )
    return (AnswerButton(), chosen, SendText(ctx.l.text("How many people may use it?"), buttons=buttons))


async def got_household(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type the building, unit and room.")),)
    assert ctx.state is not None
    issued = await create_invitation(
        ctx.uow,
        actor_id=ctx.person_id,
        community_id=int(ctx.state.data["community_id"]),
        role=Role(ctx.state.data["role"]),
        household_label=payload.text,  # a bad label is refused and the question stands
    )
    await ctx.clear_state()
    return (await _show_code(ctx, issued),)


async def chose_uses(ctx: Context, data: InviteUses) -> Sequence[Reply]:
    issued = await create_invitation(
        ctx.uow, actor_id=ctx.person_id, community_id=data.community_id, role=data.role, max_uses=data.uses
    )
    card = await _show_code(ctx, issued)
    # The question turns into the invitation, so the buttons to make another one are gone.
    message_id = _message_id(ctx)
    shown: Reply = EditText(message_id, card.text, card.buttons) if message_id is not None else card
    return (AnswerButton(), shown)


def _share_url(link: str, text: str) -> str:
    return "https://t.me/share/url?" + urlencode({"url": link, "text": text})


async def _show_code(ctx: Context, issued: IssuedInvitation) -> SendText:
    invitation = issued.invitation
    community = await get_community(ctx.uow, invitation.community_id)
    reader = ctx.l.with_timezone(community.timezone)
    link = ctx.bot.deep_link(issued.code)
    text = reader.render(
        "invitation_created.j2",
        community=community.name,
        role=role_label(reader, invitation.role),
        household=issued.household.label if issued.household is not None else None,
        max_uses=invitation.max_uses,
        expires_at=invitation.expires_at,
        code=Markup("<code>{}</code>").format(issued.code),  # monospace, so it is easy to copy
        link=link,
    )
    share = Button(
        reader.label("Share the invitation"),
        url=_share_url(link, reader.label("Join %(community)s on Linli", community=community.name)),
    )
    return SendText(text, buttons=((share,),))


# ---------------------------------------------------------------------------------------------------------------
# /requests


async def requests(ctx: Context, _: Command) -> Sequence[Reply]:
    communities = await require_staff_communities(ctx.uow, ctx.person_id, Action.DECIDE_JOIN_REQUEST)
    waiting: list[tuple[JoinRequestView, Community]] = []
    for community in communities:
        assert community.id is not None
        found = await pending_join_requests(ctx.uow, actor_id=ctx.person_id, community_id=community.id)
        waiting.extend((request, community) for request in found)
    if not waiting:
        return (SendText(ctx.l.text("No join requests are waiting.")),)
    replies: list[Reply] = [
        SendText(ctx.l.plural("One join request is waiting:", "%(num)s join requests are waiting:", len(waiting)))
    ]
    for request, community in waiting[:REQUESTS_SHOWN]:
        reader = ctx.l.with_timezone(community.timezone)
        replies.append(
            SendText(
                request_text(reader, request, community),
                buttons=decision_buttons(reader, request),
            )
        )
    if len(waiting) > REQUESTS_SHOWN:
        more = len(waiting) - REQUESTS_SHOWN
        replies.append(
            SendText(
                ctx.l.plural(
                    "One more after these: send /requests again once you have decided some.",
                    "%(num)s more after these: send /requests again once you have decided some.",
                    more,
                )
            )
        )
    return replies


def register(router: Router) -> None:
    router.command(
        "invite", invite, description=N_("Invite residents with a code or link"), action=Action.CREATE_INVITATION
    )
    router.command(
        "requests", requests, description=N_("Join requests waiting for you"), action=Action.DECIDE_JOIN_REQUEST
    )
    router.button(InviteCommunity, chose_community)
    router.button(InviteRole, chose_role)
    router.button(InviteUses, chose_uses)
    router.state(STATE_HOUSEHOLD, got_household)
