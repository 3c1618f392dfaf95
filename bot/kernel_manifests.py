"""The manifests (bot.manifest.Manifest) of the features the kernel carries: the base every community has
(/start, /help, /menu, /language, /privacy and /forget), joining and membership, and invitations. Notices and
consultations keep theirs beside their code (bot/notices/manifest.py, bot/consultations/manifest.py)."""

from __future__ import annotations

from bot.handlers import help as help_handlers
from bot.handlers import invitations as invitations_handlers
from bot.handlers import join as join_handlers
from bot.handlers import language as language_handlers
from bot.handlers import members as members_handlers
from bot.handlers import menu as menu_handlers
from bot.handlers import privacy as privacy_handlers
from bot.handlers import start as start_handlers
from bot.manifest import Manifest, MenuEntry
from community import kernel_features
from community.roles import Action
from i18n import N_

BASE = Manifest(
    feature=kernel_features.BASE,
    handlers=(
        help_handlers.register,
        menu_handlers.register,
        language_handlers.register,
        privacy_handlers.register,
        start_handlers.register,
    ),
    menu=(
        MenuEntry("language", N_("Language"), position=900),
        MenuEntry("privacy", N_("Privacy"), position=910),
        MenuEntry("help", N_("Help"), position=920),
    ),
)

JOINING = Manifest(
    feature=kernel_features.JOINING,
    handlers=(join_handlers.register, members_handlers.register),
    renderers=(join_handlers.register_renderers,),
    menu=(
        MenuEntry("requests", N_("Join requests"), Action.DECIDE_JOIN_REQUEST, position=110),
        MenuEntry("members", N_("Members"), Action.LIST_MEMBERS, position=120),
    ),
)

INVITATIONS = Manifest(
    feature=kernel_features.INVITATIONS,
    handlers=(invitations_handlers.register,),
    menu=(MenuEntry("invite", N_("Invite residents"), Action.CREATE_INVITATION, position=100),),
)
