"""/menu: what the person's roles allow, as buttons that run commands.

Each feature's manifest (bot.manifest) declares its entries; the menu draws them from ctx.features. The kernel's
permission service (community.viewers) decides who sees an entry; the services behind each command check the same
permission again, so hiding is only a convenience."""

from __future__ import annotations

from collections.abc import Sequence

from bot.context import Context
from bot.events import Command
from bot.labels import role_label, role_list
from bot.manifest import MenuEntry
from bot.replies import Button, Keyboard, Reply, SendText
from bot.router import Router, RunCommand
from community.roles import Role
from community.viewers import home_viewer
from i18n import N_

BUTTONS_PER_ROW = 2


JOIN_ENTRY = MenuEntry("start", N_("Join a community"))


def _keyboard(ctx: Context, entries: Sequence[MenuEntry]) -> Keyboard:
    buttons = [Button(ctx.l.label(entry.label), RunCommand(entry.command).pack()) for entry in entries]
    return tuple(tuple(buttons[i : i + BUTTONS_PER_ROW]) for i in range(0, len(buttons), BUTTONS_PER_ROW))


async def main_menu(ctx: Context, *, joined_as: Role | None = None) -> SendText:
    """The person's main menu in ctx's language; /start and /language end with it.

    ``joined_as``: the person has just joined with this role, and the menu opens with the welcome, so joining
    takes one message rather than a welcome and then a menu."""
    membership = ctx.membership
    if membership is None:
        entries = [JOIN_ENTRY, *(entry for entry in ctx.features.menu if entry.action is None)]
        return SendText(ctx.l.render("menu_guest.j2"), buttons=_keyboard(ctx, entries))
    # What the person may do, asked of the kernel: it knows how roles reach down from the street above. The
    # identity was read as this unit of work began, so its roles are current unless this event changed them.
    viewer = await home_viewer(ctx.uow, ctx.identity, read_now=ctx.person_id not in ctx.uow.people_changed)
    entries = [entry for entry in ctx.features.menu if entry.action is None or viewer.may(entry.action)]
    text = ctx.l.render(
        "menu.j2",
        name=ctx.identity.person.display_name,
        community=membership.community.name,
        household=membership.household.label if membership.household is not None else None,
        roles=role_list(ctx.l, viewer.roles),
        joined_as=role_label(ctx.l, joined_as) if joined_as is not None else None,
    )
    return SendText(text, buttons=_keyboard(ctx, entries))


async def show_menu(ctx: Context, _: Command) -> Sequence[Reply]:
    ctx.refresh_command_menu()
    return (await main_menu(ctx),)


def register(router: Router) -> None:
    router.command("menu", show_menu, description=N_("Everything your roles allow"))
