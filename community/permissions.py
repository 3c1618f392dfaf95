"""The one table of the kernel's actions x roles, and of the sensitive fields each action unlocks; a feature's own
actions (community.features.FeatureAction) carry their default roles with them. Services check them and mask by
them (community.viewers); handlers only use them to decide what to show."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from community.errors import PermissionDenied
from community.features import AnyAction, FeatureAction
from community.roles import Action, Role, SensitiveField

_EVERY_MEMBER = frozenset(Role)
_STAFF = frozenset({Role.COMMUNITY_WORKER, Role.PARTY_SECRETARY, Role.STREET_ADMINISTRATOR})
_COMMITTEE = _STAFF | {Role.COMMITTEE_MEMBER}

PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.USE_RESIDENT_MENU: _EVERY_MEMBER,
    Action.CREATE_INVITATION: _STAFF,
    Action.DECIDE_JOIN_REQUEST: _STAFF,
    Action.LIST_MEMBERS: _COMMITTEE,
    Action.VIEW_SENSITIVE_DATA: _STAFF,
    Action.ASSIGN_ROLE: _STAFF,
    Action.ADD_COMMUNITY: frozenset({Role.STREET_ADMINISTRATOR}),
    Action.VERIFY_AUDIT_LOG: _COMMITTEE,
    # Notices to residents: the committee as well as staff; a street administrator for the communities below.
    Action.SEND_NOTICE: _COMMITTEE,
    # Consultations: created, opened, closed and moderated by the committee as well as staff.
    Action.RUN_CONSULTATION: _COMMITTEE,
}

# Personal data that only the roles whose work needs it may see (DESIGN, "Privacy and integrity"): each field
# with the action that unlocks it. Services return it masked for the viewer (community.viewers.Viewer.shown), so no
# handler decides; a new sensitive field is a line here and a Viewer.shown() in the service that reads it.
SENSITIVE_FIELDS: Mapping[SensitiveField, Action] = {
    SensitiveField.PHONE: Action.VIEW_SENSITIVE_DATA,
    SensitiveField.PARTY_MEMBERSHIP: Action.VIEW_SENSITIVE_DATA,
}

# Roles whose holding is itself sensitive: a list of someone's roles shows them only to those who may see the field.
SENSITIVE_ROLES: Mapping[Role, SensitiveField] = {
    Role.PARTY_MEMBER: SensitiveField.PARTY_MEMBERSHIP,
}

# A street administrator's role reaches down into the communities under their street or township.
INHERITED_ROLES: frozenset[Role] = frozenset({Role.STREET_ADMINISTRATOR})


def roles_for(action: AnyAction) -> frozenset[Role]:
    """The roles that may take the action: the table's for the kernel's actions, the declared defaults for a
    feature's."""
    if isinstance(action, FeatureAction):
        return action.default_roles
    return PERMISSIONS[action]


def allows(roles: Iterable[Role], action: AnyAction) -> bool:
    allowed = roles_for(action)
    return any(role in allowed for role in roles)


def permitted_actions(roles: Iterable[Role]) -> frozenset[Action]:
    """Every action these roles allow: what a menu offers them."""
    held = frozenset(roles)
    return frozenset(action for action, allowed in PERMISSIONS.items() if held & allowed)


def may_see(roles: Iterable[Role], field: SensitiveField) -> bool:
    return allows(roles, SENSITIVE_FIELDS[field])


def hidden_roles(roles: Iterable[Role]) -> frozenset[Role]:
    """The roles whose holding someone with these roles may not see (SENSITIVE_ROLES): left out of what they are
    shown, and of what they may address."""
    held = frozenset(roles)
    return frozenset(role for role, field in SENSITIVE_ROLES.items() if not may_see(held, field))


def require(roles: Iterable[Role], action: AnyAction) -> None:
    if not allows(roles, action):
        raise PermissionDenied(action=action.value)
