"""Notices' manifest (bot.manifest): the composer, the staff's list, each resident's notification choices, the
send and digest jobs, and the kernel's declaration of their action and settings (community.kernel_features)."""

from __future__ import annotations

from bot.handlers import notice_admin, notice_compose, notifications
from bot.manifest import Manifest, MenuEntry
from bot.notices import fanout, jobs
from community import kernel_features
from community.roles import Action
from i18n import N_

NOTICES = Manifest(
    feature=kernel_features.NOTICES,
    handlers=(notice_compose.register, notice_admin.register, notifications.register),
    menu=(
        MenuEntry("notice", N_("Send a notice"), Action.SEND_NOTICE, position=200),
        MenuEntry("notices", N_("Notices sent"), Action.SEND_NOTICE, position=210),
        MenuEntry("notifications", N_("Notifications"), Action.USE_RESIDENT_MENU, position=510),
    ),
    jobs=(jobs.register_jobs,),
    renderers=(fanout.register_renderers,),
)
