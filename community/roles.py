"""Roles a person can hold in a community, the actions the permission table speaks of, and the sensitive fields
it unlocks."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    RESIDENT = "resident"
    HOUSEHOLD_REPRESENTATIVE = "household_representative"
    VOLUNTEER = "volunteer"
    PARTY_MEMBER = "party_member"
    UNIT_CONTACT = "unit_contact"
    COMMUNITY_WORKER = "community_worker"
    COMMITTEE_MEMBER = "committee_member"
    PARTY_SECRETARY = "party_secretary"
    STREET_ADMINISTRATOR = "street_administrator"


# Roles in the order they are declared: how every list of roles is sorted (a scope's, a member's).
ROLE_ORDER: Mapping[Role, int] = {role: index for index, role in enumerate(Role)}

# Roles held by people who live in the community: whoever joins with one of them is a resident as well (a fact of
# the roles, here so that verification and the scope's eligibilities read the same set).
RESIDENT_ROLES: frozenset[Role] = frozenset(
    {Role.RESIDENT, Role.HOUSEHOLD_REPRESENTATIVE, Role.VOLUNTEER, Role.PARTY_MEMBER}
)


class Action(StrEnum):
    USE_RESIDENT_MENU = "use_resident_menu"
    CREATE_INVITATION = "create_invitation"
    DECIDE_JOIN_REQUEST = "decide_join_request"
    LIST_MEMBERS = "list_members"
    VIEW_SENSITIVE_DATA = "view_sensitive_data"
    ASSIGN_ROLE = "assign_role"
    ADD_COMMUNITY = "add_community"
    VERIFY_AUDIT_LOG = "verify_audit_log"
    SEND_NOTICE = "send_notice"
    RUN_CONSULTATION = "run_consultation"


class SensitiveField(StrEnum):
    """Personal data that only some roles may see (community.permissions.SENSITIVE_FIELDS says which)."""

    PHONE = "phone"
    PARTY_MEMBERSHIP = "party_membership"


class CommunityKind(StrEnum):
    STREET = "street"  # 街道
    TOWNSHIP = "township"  # 乡镇
    NEIGHBOURHOOD = "neighbourhood"  # 社区 (residents' committee)
    VILLAGE = "village"  # 村

    @property
    def is_grassroots(self) -> bool:
        """Neighbourhoods and villages have residents; streets and townships oversee them."""
        return self in (CommunityKind.NEIGHBOURHOOD, CommunityKind.VILLAGE)
