"""/menu: what the person's roles allow, as buttons that run commands.

The menu is a table: a feature adds its entry with one line in MENU. The kernel's permission service
(community.viewers) decides who sees an entry; the services behind each command check the same permission again,
so hiding is only a convenience."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.context import Context
from bot.events import Command
from bot.labels import role_label, role_list
from bot.replies import Button, Keyboard, Reply, SendText
from bot.router import Router, RunCommand
from community.roles import Action, Role
from community.viewers import home_viewer
from i18n import N_

BUTTONS_PER_ROW = 2


@dataclass(frozen=True, slots=True)
class MenuEntry:
    command: str  # run by the button, also reachable by typing /command
    label: str  # English message id of the button label
    action: Action | None = None  # who sees it; None: everyone, members of no community too


MENU: tuple[MenuEntry, ...] = (
    MenuEntry("invite", N_("Invite residents"), Action.CREATE_INVITATION),
    MenuEntry("requests", N_("Join requests"), Action.DECIDE_JOIN_REQUEST),
    MenuEntry("members", N_("Members"), Action.LIST_MEMBERS),
    MenuEntry("notice", N_("Send a notice"), Action.SEND_NOTICE),
    MenuEntry("notices", N_("Notices sent"), Action.SEND_NOTICE),
    MenuEntry("newconsultation", N_("New consultation"), Action.RUN_CONSULTATION),
    MenuEntry("consultations", N_("Run consultations"), Action.RUN_CONSULTATION),
    MenuEntry("consult", N_("Consultations"), Action.USE_RESIDENT_MENU),
    MenuEntry("notifications", N_("Notifications"), Action.USE_RESIDENT_MENU),
    MenuEntry("language", N_("Language")),
    MenuEntry("privacy", N_("Privacy")),
    MenuEntry("help", N_("Help")),
)

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
        entries = [JOIN_ENTRY, *(entry for entry in MENU if entry.action is None)]
        return SendText(ctx.l.render("menu_guest.j2"), buttons=_keyboard(ctx, entries))
    # What the person may do, asked of the kernel: it knows how roles reach down from the street above.
    viewer = await home_viewer(ctx.uow, ctx.identity)
    entries = [entry for entry in MENU if entry.action is None or entry.action in viewer.actions]
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
