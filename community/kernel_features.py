"""The domain-side declarations (community.features.Feature) of the features whose services live in the kernel:
the base every community has (people, roles, the audit log, privacy), joining and membership, invitations, and
notices. What they keep about a person is read and erased by community.privacy itself, so none has a provider of
its own. Consultations declare themselves in consultation/feature.py."""

from __future__ import annotations

from community import settings
from community.features import Feature
from community.roles import Action

BASE = Feature(
    name="base",
    actions=(Action.USE_RESIDENT_MENU, Action.ADD_COMMUNITY, Action.VERIFY_AUDIT_LOG),
    community_settings=(settings.TIMEZONE, settings.MIN_GROUP_SIZE),
)

JOINING = Feature(
    name="joining",
    actions=(Action.DECIDE_JOIN_REQUEST, Action.LIST_MEMBERS, Action.VIEW_SENSITIVE_DATA, Action.ASSIGN_ROLE),
)

INVITATIONS = Feature(name="invitations", actions=(Action.CREATE_INVITATION,))

NOTICES = Feature(name="notices", actions=(Action.SEND_NOTICE,), community_settings=(settings.DIGEST_TIME,))
