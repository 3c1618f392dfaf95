"""/help, and the short hints for unknown commands, free text nobody asked for, and stale buttons."""

from __future__ import annotations

from collections.abc import Sequence

from bot.context import Context
from bot.events import ButtonPress, Command, ContactShared, FileShared, TextInput
from bot.replies import AnswerButton, Reply, SendText
from bot.router import Router
from i18n import N_


async def show_help(ctx: Context, _: Command) -> Sequence[Reply]:
    return (SendText(ctx.l.render("help.j2", is_member=ctx.membership is not None)),)


async def unknown_command(ctx: Context, command: Command) -> Sequence[Reply]:
    return (
        SendText(ctx.l.text("I don't know the command /%(name)s. Send /help to see what I can do.", name=command.name)),
    )


async def unexpected_input(ctx: Context, _: TextInput | ContactShared | FileShared) -> Sequence[Reply]:
    return (SendText(ctx.l.text("I wasn't expecting a message just now. Send /menu to see what you can do.")),)


async def stale_button(ctx: Context, _: ButtonPress) -> Sequence[Reply]:
    return (AnswerButton(ctx.l.label("This button is out of date. Send /menu to start again."), alert=True),)


def register(router: Router) -> None:
    router.command("help", show_help, description=N_("What Linli can do for you"))
    router.unknown_command(unknown_command)
    router.fallback(unexpected_input)
    router.stale_button(stale_button)
