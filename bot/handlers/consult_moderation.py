"""Moderating participants' statements from chat: each moderator of the community gets a message with the
statement and Approve / Reject; Reject turns the buttons into the list of reasons, one tap each; the message
then shows the decision, and the author is told in their own language. A moderator tapping a statement another
one has decided already sees that decision; nothing changes (consultation.participation.decide)."""

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
from bot.replies import AnswerButton, ChatRef, Keyboard, Reply, SendText
from bot.router import Router
from community.communities import get_community
from consultation import participation
from consultation.consultations import get_consultation, get_statement, rejection_message
from consultation.models import Statement, StatementStatus
from consultation.participation import Decision


async def moderation_requests(ctx: Context, statement: Statement) -> list[Reply]:
    """The statement, with Approve / Reject, to every moderator of its community in their own language (the
    author left out, should a moderator take part)."""
    consultation = await get_consultation(ctx.uow, statement.consultation_id)
    community = await get_community(ctx.uow, consultation.community_id)
    replies: list[Reply] = []
    for contact in await participation.moderators(ctx.uow, consultation.community_id):
        account = contact.account
        if account.person_id == ctx.person_id:
            continue
        reader = ctx.localizer_for(contact.language, account.language_code).with_timezone(community.timezone)
        replies.append(
            SendText(
                moderation_text(reader, statement, consultation, community),
                buttons=moderation_keyboard(reader, statement),
                to=ChatRef(account.channel, account.chat_id, reader.language),
            )
        )
    return replies


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
        decision = await participation.decide(ctx.uow, ctx.person_id, data.statement_id, approve=True)
        return await _decided(ctx, decision)
    statement = await get_statement(ctx.uow, data.statement_id)
    if data.verdict is Verdict.REJECT and statement.status == StatementStatus.PENDING:
        return (AnswerButton(), await _view(ctx, statement, reason_keyboard(ctx.l, data.statement_id)))
    return (AnswerButton(), await _view(ctx, statement))


async def reject(ctx: Context, data: RejectStatement) -> Sequence[Reply]:
    decision = await participation.decide(ctx.uow, ctx.person_id, data.statement_id, approve=False, reason=data.reason)
    return await _decided(ctx, decision)


async def _decided(ctx: Context, decision: Decision) -> Sequence[Reply]:
    statement, consultation = decision.statement, decision.consultation
    toast = None if decision.decided_now else ctx.l.label("Another moderator has decided this statement already.")
    replies: list[Reply] = [AnswerButton(toast), await _view(ctx, statement)]
    if not decision.decided_now or statement.id is None:
        return replies
    author = await participation.author_contact(ctx.uow, statement.id)
    if author is None:
        return replies
    community = await get_community(ctx.uow, consultation.community_id)
    approved = statement.status == StatementStatus.APPROVED
    reason = statement.rejection_reason
    for account in author.accounts:
        reader = ctx.localizer_for(author.language, account.language_code).with_timezone(community.timezone)
        text = reader.render(
            "consult_statement_decided.j2",
            approved=approved,
            title=consultation.title,
            text=statement.text,
            reason=rejection_message(reason) if reason is not None else "",
        )
        replies.append(SendText(text, to=ChatRef(account.channel, account.chat_id, reader.language)))
    return replies


def register(router: Router) -> None:
    router.button(ModerateStatement, moderate)
    router.button(RejectStatement, reject)
