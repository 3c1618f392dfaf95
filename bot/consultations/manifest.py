"""Consultations' manifest (bot.manifest): composing and running them, taking part, moderating, the outcome as a
file, their jobs, and how /privacy shows a person's part in them (consultation.feature declares the rest)."""

from __future__ import annotations

from typing import IO

from bot.consultations import jobs, messages
from bot.consultations.buttons import ExportFormat
from bot.exports import jobs as export_jobs
from bot.handlers import consult, consult_admin, consult_compose, consult_export, consult_moderation
from bot.manifest import Export, Manifest, MenuEntry, template_section
from bot.rendering import Localizer
from community.roles import Action
from community.unit_of_work import UnitOfWork
from consultation.feature import CONSULTATIONS as FEATURE
from i18n import N_


async def _write_outcome(
    uow: UnitOfWork,
    actor_id: int | None,
    consultation_id: int,
    fmt: str,
    l: Localizer,  # noqa: E741 - the house name for a localizer
    stream: IO[bytes],
) -> object:
    # Here, not at the top: the exports bring numpy, xlsxwriter and WeasyPrint.
    from bot.exports.consultation import export_consultation

    return await export_consultation(uow, actor_id, consultation_id, ExportFormat(fmt), l, stream)


CONSULTATIONS = Manifest(
    feature=FEATURE,
    handlers=(
        consult_compose.register,
        consult.register,
        consult_moderation.register,
        consult_admin.register,
        consult_export.register,
    ),
    menu=(
        MenuEntry("newconsultation", N_("New consultation"), Action.RUN_CONSULTATION, position=300),
        MenuEntry("consultations", N_("Run consultations"), Action.RUN_CONSULTATION, position=310),
        MenuEntry("consult", N_("Consultations"), Action.USE_RESIDENT_MENU, position=500),
    ),
    jobs=(jobs.register_jobs, export_jobs.register_jobs),
    renderers=(messages.register_renderers,),
    exports=(Export("consultation", tuple(fmt.value for fmt in ExportFormat), _write_outcome),),
    privacy=template_section("privacy_consultations.j2"),
)
