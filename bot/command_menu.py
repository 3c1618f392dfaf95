"""Each person's command menu (Telegram's per-chat setMyCommands): the commands their roles allow, in their
language. Which commands a role may use comes from the permission table (community.permissions) through the
action each command is registered with (Router.command); nothing here lists commands.

A stranger, and everyone whose chat has no menu of its own, sees the public menu: the commands with no action.
Conversation.handle(menus=True) asks for a person's menu when their roles or language changed
(UnitOfWork.people_changed), and on /start and /menu (a chat whose menu went stale heals there)."""

from __future__ import annotations

from bot.rendering import Localizer
from bot.router import Router
from community.people import Identity
from community.permissions import INHERITED_ROLES, allows
from community.roles import Role

CommandList = tuple[tuple[str, str], ...]


def menu_roles(identity: Identity) -> frozenset[Role]:
    """The roles the menu is drawn for: those of the person's primary community, plus the roles that reach down
    from communities above it (community.permissions.INHERITED_ROLES) where the person is a member there too.

    Only for choosing buttons and commands to show: services check community.communities.effective_roles."""
    primary = identity.primary
    if primary is None:
        return frozenset()
    roles = set(primary.roles)
    by_community = {view.community.id: view for view in identity.memberships}
    seen = {primary.community.id}
    parent_id = primary.community.parent_id
    while parent_id is not None and parent_id not in seen and parent_id in by_community:
        seen.add(parent_id)
        above = by_community[parent_id]
        roles |= above.roles & INHERITED_ROLES
        parent_id = above.community.parent_id
    return frozenset(roles)


def command_menu(router: Router, localizer: Localizer, roles: frozenset[Role]) -> CommandList:
    """(command, description) for every command these roles may use, described in the localizer's language.
    No roles: the public menu, what a stranger may use."""
    # label(): the client shows descriptions verbatim, so no HTML escaping.
    return tuple(
        (entry.name, localizer.label(entry.description))
        for entry in router.menu_commands
        if entry.action is None or allows(roles, entry.action)
    )
