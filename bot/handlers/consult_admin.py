"""/consultations for those who run them (Action.RUN_CONSULTATION): the consultations of their communities
(open, scheduled, recently closed), each with its figures in counts only (never who voted what), and buttons:
Moderate (the statements waiting), Close now (after a question), Refresh, and the exports. The votes of a small
consultation are counted live; a large one's are the jobs' worker's last count, "as of" its time
(consultation.consultations.staff_figures): counting millions of votes here would make every resident wait.

Map (open consultations) asks the jobs' process for a picture of the opinion map as the votes stand: its groups,
no one's position (bot.consultations.pictures); it arrives in the chat as a photo, like an export's file, and is
refused while fewer than k have voted (consultation.participation.require_current_map).

Closing here is consultation.consultations.close_consultation with the worker as actor, which asks in the same
transaction for the participants' outcome (the opinion map, then a summary to each) from the jobs' process:
computing the map of a large consultation takes seconds, which this transaction should not hold the database
for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from bot import forms
from bot.consultations.cards import Manage, ManageConsultation
from bot.context import Context
from bot.events import Command
from bot.exports.jobs import MAP_ALREADY_PREPARING, MAP_FORMAT, MAP_PREPARING
from bot.exports.worker import CONSULTATION_MAP
from bot.handlers.consult_export import export_keyboard
from bot.handlers.consult_moderation import moderation_message
from bot.notices.render import moment
from bot.rendering import Localizer
from bot.replies import AnswerButton, Button, Keyboard, Reply, SendText
from bot.router import Router
from community import exports
from community.communities import get_community
from community.models import Community
from community.roles import Action
from community.verification import require_staff_communities
from consultation import participation
from consultation.consultations import (
    ConsultationFigures,
    closable,
    close_consultation,
    exportable,
    pending_statements,
    staff_figures,
)
from consultation.models import Consultation, ConsultationStatus
from consultation.participation import require_current_map
from i18n import N_

MODERATE_AT_ONCE = 10  # statements waiting sent in one go; Moderate again for the next ones

STATUS_LABELS: Mapping[ConsultationStatus, str] = {
    ConsultationStatus.DRAFT: N_("draft"),
    ConsultationStatus.SCHEDULED: N_("scheduled"),
    ConsultationStatus.OPEN: N_("open"),
    ConsultationStatus.CLOSED: N_("closed"),
}


async def _figures_view(
    ctx: Context, consultation: Consultation, community: Community, *, question: bool = False
) -> tuple[str, Keyboard]:
    assert consultation.id is not None
    reader = ctx.l.with_timezone(community.timezone)
    counted = await staff_figures(ctx.uow, consultation.id)
    text = reader.render(
        "consult_figures.j2",
        at=partial(moment, reader),
        title=consultation.title,
        status=reader.label(STATUS_LABELS[consultation.status]),
        status_value=consultation.status.value,
        community=community.name,
        opens_at=consultation.opens_at,
        closes_at=consultation.closes_at,
        closed_at=consultation.closed_at or consultation.closes_at,
        f=counted,
        k=counted.min_group_size,
        question=question,
    )
    return text, _keyboard(reader, consultation, counted, question=question)


def _keyboard(l: Localizer, consultation: Consultation, counted: ConsultationFigures, *, question: bool) -> Keyboard:  # noqa: E741
    consultation_id = consultation.id or 0
    if question:
        return (
            (
                Button(l.label("Yes, close it"), ManageConsultation(consultation_id, Manage.CLOSE_CONFIRMED).pack()),
                Button(l.label("No, keep it open"), ManageConsultation(consultation_id, Manage.REFRESH).pack()),
            ),
        )
    rows: list[tuple[Button, ...]] = []
    if counted.pending:
        label = l.label("Moderate (%(pending)s waiting)", pending=counted.pending)
        rows.append((Button(label, ManageConsultation(consultation_id, Manage.MODERATE).pack()),))
    first: list[Button] = [Button(l.label("Refresh"), ManageConsultation(consultation_id, Manage.REFRESH).pack())]
    if closable(consultation):
        first.append(Button(l.label("Close now"), ManageConsultation(consultation_id, Manage.CLOSE).pack()))
    rows.append(tuple(first))
    if consultation.status is ConsultationStatus.OPEN:
        rows.append((Button(l.label("🗺 Opinion map"), ManageConsultation(consultation_id, Manage.MAP).pack()),))
    if exportable(consultation):
        rows.extend(export_keyboard(l, consultation_id))
    return tuple(rows)


async def overview(ctx: Context, _: Command) -> Sequence[Reply]:
    replies: list[Reply] = []
    now = ctx.uow.clock.now()
    for community in await require_staff_communities(ctx.uow, ctx.person_id, Action.RUN_CONSULTATION):
        assert community.id is not None
        found = await participation.overview(ctx.uow, community.id, now)
        if not found:
            replies.append(SendText(ctx.l.text("%(community)s has no consultations yet.", community=community.name)))
        for consultation in found:
            text, buttons = await _figures_view(ctx, consultation, community)
            replies.append(SendText(text, buttons=buttons))
    return replies


async def manage(ctx: Context, data: ManageConsultation) -> Sequence[Reply]:
    consultation = await participation.consultation_for_runner(ctx.uow, ctx.person_id, data.consultation_id)
    community = await get_community(ctx.uow, consultation.community_id)
    if data.action is Manage.MAP:
        return await ask_map(ctx, data.consultation_id)
    if data.action is Manage.MODERATE:
        waiting = await pending_statements(ctx.uow, data.consultation_id)
        if not waiting:
            return (AnswerButton(ctx.l.label("No statement waits for moderation.")),)
        return (AnswerButton(), *[await moderation_message(ctx, s) for s in waiting[:MODERATE_AT_ONCE]])
    toast = None
    if data.action is Manage.CLOSE_CONFIRMED:
        if await close_consultation(ctx.uow, data.consultation_id, ctx.person_id):
            toast = ctx.l.label("The consultation is closed.")
        else:
            toast = ctx.l.label("The consultation was closed already.")  # shown as it is now, closed
    question = data.action is Manage.CLOSE and closable(consultation)
    text, buttons = await _figures_view(ctx, consultation, community, question=question)
    return (AnswerButton(toast), forms.show(ctx, text, buttons))


async def ask_map(ctx: Context, consultation_id: int) -> Sequence[Reply]:
    """Record the request for the current map and answer at once; the picture follows from the jobs' process
    (bot.exports.jobs). Refused before anything is recorded when the consultation is not open or fewer than k
    have voted."""
    await require_current_map(ctx.uow, ctx.person_id, consultation_id)
    sender = ctx.event.sender
    recipient = exports.Recipient(
        person_id=ctx.person_id,
        account_id=ctx.identity.account.id,
        channel=sender.channel,
        chat_id=sender.chat_id,
        language=ctx.l.language,
    )
    asked = await exports.ask(ctx.uow, CONSULTATION_MAP, consultation_id, MAP_FORMAT, recipient)
    return (AnswerButton(), SendText(ctx.l.text(MAP_PREPARING if asked.created else MAP_ALREADY_PREPARING)))


def register(router: Router) -> None:
    router.command(
        "consultations",
        overview,
        description=N_("Your communities' consultations: figures, moderation, closing"),
        action=Action.RUN_CONSULTATION,
    )
    router.button(ManageConsultation, manage)
