"""How far one invitation reaches (README, "Invitations"): numbers the invitation service enforces and
`linli invite create --help` quotes. Kept in a module that imports nothing, so the help does not load the
database layer to print them (tests/test_startup_imports.py)."""

from __future__ import annotations

from datetime import timedelta

# A multi-use code for residents is shared in a building's group chat, so it is bounded; staff act for the
# community, so theirs are for one person and expire soon.
MAX_USES = 200  # people one invitation for residents (or volunteers, party members, unit contacts) can admit
INVITATION_LIFETIME = timedelta(days=14)  # how long an invitation stays valid when its maker says nothing
STAFF_INVITATION_LIFETIME = timedelta(hours=72)  # a staff invitation's lifetime, and the longest one may have
