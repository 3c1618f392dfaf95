"""Names of domain values as a reader sees them: roles, and lists of them in the reader's language."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from babel.lists import format_list

from bot.rendering import Localizer
from community.roles import Role
from i18n import N_

ROLE_LABELS: Mapping[Role, str] = {
    Role.RESIDENT: N_("resident"),
    Role.HOUSEHOLD_REPRESENTATIVE: N_("household representative"),
    Role.VOLUNTEER: N_("volunteer"),
    Role.PARTY_MEMBER: N_("party member"),
    Role.UNIT_CONTACT: N_("resident unit contact"),
    Role.COMMUNITY_WORKER: N_("community worker"),
    Role.COMMITTEE_MEMBER: N_("committee member"),
    Role.PARTY_SECRETARY: N_("party secretary"),
    Role.STREET_ADMINISTRATOR: N_("street administrator"),
}

_ROLE_ORDER = {role: index for index, role in enumerate(Role)}


def role_label(l: Localizer, role: Role) -> str:  # noqa: E741 - the house name for a localizer
    """The role's name for this reader, as plain text (no HTML)."""
    return l.label(ROLE_LABELS[role])


def role_list(l: Localizer, roles: Iterable[Role]) -> str:  # noqa: E741
    """Several roles as one phrase in the reader's language ("resident and volunteer", "居民和志愿者")."""
    names = [role_label(l, role) for role in sorted(roles, key=_ROLE_ORDER.__getitem__)]
    return str(format_list(names, style="standard", locale=l.t.locale)) if names else ""
