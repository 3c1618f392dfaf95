"""The domain-side declarations (community.features.Feature) of the features whose services live in the kernel:
the base every community has (people, roles, the audit log, privacy), joining and membership, invitations, and
notices. What they keep about a person is read and erased by community.privacy itself, so none has a provider of
its own. Consultations declare themselves in consultation/feature.py."""

from __future__ import annotations

from datetime import time

from community.features import Feature, Setting
from community.roles import Action
from i18n import N_

BASE = Feature(
    name="base",
    actions=(Action.USE_RESIDENT_MENU, Action.ADD_COMMUNITY, Action.VERIFY_AUDIT_LOG),
)

JOINING = Feature(
    name="joining",
    actions=(Action.DECIDE_JOIN_REQUEST, Action.LIST_MEMBERS, Action.VIEW_SENSITIVE_DATA, Action.ASSIGN_ROLE),
)

INVITATIONS = Feature(name="invitations", actions=(Action.CREATE_INVITATION,))

# The evening digest of non-urgent notices (bot/notices/jobs.py schedules it every day).
DIGEST_TIME: Setting[time] = Setting(
    "notices.digest_time", time(19, 0), N_("When the daily digest of non-urgent notices goes out")
)
DIGEST_TIMEZONE: Setting[str] = Setting(
    "notices.digest_timezone", "Asia/Shanghai", N_("The time zone of the daily digest's time")
)

NOTICES = Feature(name="notices", actions=(Action.SEND_NOTICE,), settings=(DIGEST_TIME, DIGEST_TIMEZONE))
