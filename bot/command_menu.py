"""Each person's command menu (Telegram's per-chat setMyCommands): the commands their roles allow, in their
language. Which commands a person may use comes from the kernel (community.viewers: the actions their effective
roles allow, inherited ones included) through the action each command is registered with (Router.command); nothing
here lists commands or knows how roles are inherited.

A stranger, and everyone whose chat has no menu of its own, sees the public menu: the commands with no action.
Conversation.handle(menus=True) asks for a person's menu when their roles or language changed
(UnitOfWork.people_changed), and on /start and /menu (a chat whose menu went stale heals there)."""

from __future__ import annotations

from bot.rendering import Localizer
from bot.router import Router
from community.roles import Action

CommandList = tuple[tuple[str, str], ...]


def command_menu(router: Router, localizer: Localizer, actions: frozenset[Action]) -> CommandList:
    """(command, description) for every command these actions allow (community.viewers.home_viewer(...).actions),
    described in the localizer's language. No actions: the public menu, what a stranger may use."""
    # label(): the client shows descriptions verbatim, so no HTML escaping.
    return tuple(
        (entry.name, localizer.label(entry.description))
        for entry in router.menu_commands
        if entry.action is None or entry.action in actions
    )
