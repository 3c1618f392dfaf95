"""/start: the way in. With a code (typed, or from a deep link https://t.me/<bot>?start=<code>) it redeems the
invitation; without one a member gets the main menu and a newcomer the two ways to join."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from markupsafe import Markup

from bot.callbacks import CallbackData
from bot.context import Context
from bot.events import Command, ContactShared, FileShared, TextInput
from bot.handlers import join
from bot.handlers.help import unexpected_input
from bot.handlers.menu import main_menu
from bot.labels import role_label
from bot.replies import AnswerButton, Button, Reply, SendText
from bot.router import Router
from community.communities import get_community
from community.errors import Throttled
from community.verification import AlreadyMember, pending_request_of, redeem_invitation
from i18n import N_

STATE_CODE = "start.code"


class Way(StrEnum):
    CODE = "code"
    ASK = "ask"


@dataclass(frozen=True)
class StartWay(CallbackData):
    """A newcomer's choice: type an invitation code, or ask to join."""

    prefix: ClassVar[str] = "st"
    way: Way


async def start(ctx: Context, command: Command) -> Sequence[Reply]:
    if command.args.strip():
        return await _redeem(ctx, command.args, typed_in_form=False)
    await ctx.clear_state()
    ctx.refresh_command_menu()
    if ctx.membership is not None:
        return (await main_menu(ctx),)
    waiting = await pending_request_of(ctx.uow, ctx.person_id)
    text = ctx.l.render(
        "start_newcomer.j2",
        name=ctx.identity.person.display_name,
        waiting_for=(await get_community(ctx.uow, waiting.community_id)).name if waiting is not None else None,
    )
    buttons = (
        (Button(ctx.l.label("I have an invitation code"), StartWay(Way.CODE).pack()),),
        (Button(ctx.l.label("Ask to join"), StartWay(Way.ASK).pack()),),
    )
    return (SendText(text, buttons=buttons),)


async def choose_way(ctx: Context, data: StartWay) -> Sequence[Reply]:
    if data.way is Way.ASK:
        return (AnswerButton(), *await join.start_form(ctx))
    if ctx.membership is not None:
        # A newcomer's button, pressed after joining: a member uses an invitation through its link or /start CODE,
        # never a prompt that would take whatever they type next as a guess.
        await ctx.clear_state()
        return (AnswerButton(), await main_menu(ctx))
    await ctx.set_state(STATE_CODE)
    return (AnswerButton(), SendText(ctx.l.text("Send me your invitation code. Send /cancel to stop.")))


async def got_code(ctx: Context, payload: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    if ctx.membership is not None:
        # The prompt was a newcomer's, and they have joined since (a worker approved their request): what they
        # type now is chat, not a code, and must not count as a wrong one.
        await ctx.clear_state()
        return await unexpected_input(ctx, payload)
    if not isinstance(payload, TextInput):
        return (SendText(ctx.l.text("Please type the invitation code your community worker gave you.")),)
    return await _redeem(ctx, payload.text, typed_in_form=True)


async def _redeem(ctx: Context, code: str, *, typed_in_form: bool) -> Sequence[Reply]:
    # Only a form in progress can have left a reply keyboard (the join form's "share my phone") on screen.
    keyboard_shown = ctx.state is not None and ctx.state.name != STATE_CODE
    result = await redeem_invitation(ctx.uow, identity=ctx.identity, code=code)
    joined = result.joined
    if joined is not None and result.role is not None:
        await ctx.clear_state()
        # Now a member: speak in the community's default language unless the person chose or their app says
        # otherwise, and give times in the community's time zone.
        person = ctx.identity.person
        ctx.l = ctx.localizer_for(person.language, ctx.event.sender.language_code).with_timezone(
            joined.community.timezone
        )
        if not keyboard_shown:
            return (await main_menu(ctx, joined_as=result.role),)
        # An inline menu cannot also take the reply keyboard away: that needs a message of its own.
        welcome = ctx.l.render(
            "start_welcome.j2",
            community=joined.community.name,
            role=role_label(ctx.l, result.role),
            household=joined.household.label if joined.household is not None else None,
        )
        return (SendText(welcome, remove_keyboard=True), await main_menu(ctx))
    error = result.refused
    assert error is not None
    refusal = Markup(ctx.l.text(error.message, **error.params))  # localizer output is safe HTML
    if isinstance(error, AlreadyMember):
        await ctx.clear_state()
        return (SendText(refusal), await main_menu(ctx))
    if result.locked_until is not None:
        await ctx.clear_state()  # locked: the next message is not a code to try
    text = ctx.l.render(
        "start_code_refused.j2",
        refusal=refusal,
        # The lock just began with this attempt: say until when (a refusal while locked already says it).
        locked_until=result.locked_until if not isinstance(error, Throttled) else None,
        locked=result.locked_until is not None,
        in_form=typed_in_form,
        is_member=ctx.membership is not None,
    )
    return (SendText(text),)


def register(router: Router) -> None:
    router.command("start", start, description=N_("Join your community, or open the main menu"))
    router.button(StartWay, choose_way)
    router.state(STATE_CODE, got_code)
