"""Consultations (议事协商) declare themselves (community.features.Feature): the action their services check, and
their personal-data provider. The bot ring's manifest (bot/consultations/manifest.py) adds the chat side."""

from __future__ import annotations

from community.features import Feature
from community.roles import Action
from consultation import settings
from consultation.personal_data import ConsultationsProvider

CONSULTATIONS = Feature(
    name="consultations",
    actions=(Action.RUN_CONSULTATION,),
    community_settings=settings.SETTINGS,
    personal_data=ConsultationsProvider(),
)
