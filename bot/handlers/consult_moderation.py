"""Moderating participants' statements from chat: each moderator of the community gets a message with the
statement and Approve / Reject (sent through the outbox by consultation.moderation.submit_statement); Reject
turns the buttons into the list of reasons, one tap each; the message then shows the decision, the author is told
in their own language and the other moderators' copies say who decided and how (consultation.moderation.decide).
A moderator tapping a statement another one has decided already sees that decision; nothing changes."""

from __future__ import annotations

from collections.abc import Sequence

from bot import forms
from bot.consultations.cards import (
    ModerateStatement,
    RejectStatement,
    Verdict,
    moderation_keyboard,
    moderation_text,
    reason_keyboard,
)
from bot.context import Context
from bot.replies import AnswerButton, Keyboard, Reply, SendText
from bot.router import Router
from community.communities import get_community
from consultation import moderation, participation
from consultation.consultations import awaits_moderation, get_consultation, get_statement
from consultation.models import Statement
from consultation.participation import Decision


async def moderation_message(ctx: Context, statement: Statement) -> SendText:
    """The same message for the moderator in this chat (the workers' list of statements waiting)."""
    consultation = await get_consultation(ctx.uow, statement.consultation_id)
    community = await get_community(ctx.uow, consultation.community_id)
    reader = ctx.l.with_timezone(community.timezone)
    return SendText(
        moderation_text(reader, statement, consultation, community), buttons=moderation_keyboard(reader, statement)
    )


async def _view(ctx: Context, statement: Statement, buttons: Keyboard | None = None) -> Reply:
    consultation = await participation.consultation_for_runner(ctx.uow, ctx.person_id, statement.consultation_id)
    community = await get_community(ctx.uow, consultation.community_id)
    reader = ctx.l.with_timezone(community.timezone)
    keyboard = moderation_keyboard(reader, statement) if buttons is None else buttons
    return forms.show(ctx, moderation_text(reader, statement, consultation, community), keyboard)


async def moderate(ctx: Context, data: ModerateStatement) -> Sequence[Reply]:
    if data.verdict is Verdict.APPROVE:
        decision = await moderation.decide(
            ctx.uow, ctx.person_id, data.statement_id, approve=True, answered=forms.tapped(ctx)
        )
        return await _decided(ctx, decision)
    statement = await get_statement(ctx.uow, data.statement_id)
    if data.verdict is Verdict.REJECT and awaits_moderation(statement):
        return (AnswerButton(), await _view(ctx, statement, reason_keyboard(ctx.l, data.statement_id)))
    return (AnswerButton(), await _view(ctx, statement))


async def reject(ctx: Context, data: RejectStatement) -> Sequence[Reply]:
    decision = await moderation.decide(
        ctx.uow, ctx.person_id, data.statement_id, approve=False, reason=data.reason, answered=forms.tapped(ctx)
    )
    return await _decided(ctx, decision)


async def _decided(ctx: Context, decision: Decision) -> Sequence[Reply]:
    """The tapped message shows the decision; the author and the other moderators hear through the outbox
    (consultation.moderation.decide)."""
    toast = None if decision.decided_now else ctx.l.label("Another moderator has decided this statement already.")
    return (AnswerButton(toast), await _view(ctx, decision.statement))


def register(router: Router) -> None:
    router.button(ModerateStatement, moderate)
    router.button(RejectStatement, reject)
