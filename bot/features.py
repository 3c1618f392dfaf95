"""The features Linli runs with: the one list of manifests (bot.manifest) the composition root iterates when no
other list is given. A new feature adds its manifest here, and nowhere else in the bot."""

from __future__ import annotations

from bot.consultations.manifest import CONSULTATIONS
from bot.kernel_manifests import BASE, INVITATIONS, JOINING
from bot.manifest import Manifest
from bot.notices.manifest import NOTICES

DEFAULT_MANIFESTS: tuple[Manifest, ...] = (BASE, JOINING, INVITATIONS, NOTICES, CONSULTATIONS)
