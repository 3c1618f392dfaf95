"""The one table of the kernel's actions x roles; a feature's own actions (community.features.FeatureAction) carry
their default roles with them. Services check them; handlers only use them to decide what to show."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from community.errors import PermissionDenied
from community.features import AnyAction, FeatureAction
from community.roles import Action, Role

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


def require(roles: Iterable[Role], action: AnyAction) -> None:
    if not allows(roles, action):
        raise PermissionDenied(action=action.value)
