"""Taking part in a consultation in chat: the typed callback data of the participants', moderators' and workers'
buttons, and the messages they sit under (a statement's card, a statement waiting for a moderator). Shared by
bot/handlers/consult.py, consult_moderation.py and consult_admin.py; buttons carry ids, never labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from markupsafe import Markup

from bot.callbacks import CallbackData
from bot.rendering import Localizer
from bot.replies import Button, Keyboard
from community.models import Community
from consultation.consultations import VoteValue
from consultation.models import Consultation, Statement, StatementRejection, StatementStatus
from consultation.participation import Card
from i18n import N_

CHECK = "✓ "


# --- callback data -----------------------------------------------------------------------------------------------


class Choice(StrEnum):
    AGREE = "a"
    DISAGREE = "d"
    PASS = "p"


VOTE_OF: Mapping[Choice, VoteValue] = {
    Choice.AGREE: VoteValue.AGREE,
    Choice.DISAGREE: VoteValue.DISAGREE,
    Choice.PASS: VoteValue.PASS,
}
CHOICE_OF: Mapping[VoteValue, Choice] = {value: choice for choice, value in VOTE_OF.items()}


@dataclass(frozen=True)
class CastVote(CallbackData):
    """Agree / disagree / pass on a statement. review: the card was opened from "My votes" to change the vote,
    so it stays on that statement; otherwise the card moves on to the next statement."""

    prefix: ClassVar[str] = "kpv"
    statement_id: int
    choice: Choice
    review: bool = False


class Step(StrEnum):
    NEXT = "n"  # the next statement to vote on
    ADD = "add"  # write a statement
    MY_VOTES = "my"  # the statements voted on, page by page
    CANCEL = "x"  # stop writing a statement


@dataclass(frozen=True)
class ConsultStep(CallbackData):
    prefix: ClassVar[str] = "kps"
    consultation_id: int
    step: Step
    page: int = 0


@dataclass(frozen=True)
class ShowStatement(CallbackData):
    """A statement's card, with the participant's current vote marked: from "My votes", or the existing
    statement a duplicate points to."""

    prefix: ClassVar[str] = "kpc"
    statement_id: int


class Verdict(StrEnum):
    APPROVE = "ok"
    REJECT = "no"  # shows the reasons; a reason's button rejects
    BACK = "back"  # from the reasons back to Approve / Reject


@dataclass(frozen=True)
class ModerateStatement(CallbackData):
    prefix: ClassVar[str] = "kmd"
    statement_id: int
    verdict: Verdict


@dataclass(frozen=True)
class RejectStatement(CallbackData):
    prefix: ClassVar[str] = "kmr"
    statement_id: int
    reason: StatementRejection


class Manage(StrEnum):
    REFRESH = "r"
    MODERATE = "m"  # the statements waiting for a moderator
    CLOSE = "c"  # asks first
    CLOSE_CONFIRMED = "cc"
    MAP = "map"  # the current opinion map, as a picture (open consultations, once k have voted)


@dataclass(frozen=True)
class ManageConsultation(CallbackData):
    prefix: ClassVar[str] = "kwm"
    consultation_id: int
    action: Manage


# --- labels ------------------------------------------------------------------------------------------------------

CHOICE_LABELS: Mapping[Choice, str] = {
    Choice.AGREE: N_("👍 Agree"),
    Choice.DISAGREE: N_("👎 Disagree"),
    Choice.PASS: N_("🤷 Pass"),
}

# What a moderator taps; the author is told the longer consultation.consultations.rejection_message().
REASON_LABELS: Mapping[StatementRejection, str] = {
    StatementRejection.OFF_TOPIC: N_("Off topic"),
    StatementRejection.OFFENSIVE: N_("Offensive"),
    StatementRejection.PERSONAL_DATA: N_("Personal data"),
    StatementRejection.UNCLEAR: N_("Unclear"),
    StatementRejection.REPEATS_ANOTHER: N_("Repeats another"),
    StatementRejection.OTHER: N_("Another reason"),
}


def choice_label(l: Localizer, value: VoteValue) -> str:  # noqa: E741 - the house name for a localizer
    return l.label(CHOICE_LABELS[CHOICE_OF[value]])


def reason_label(l: Localizer, reason: StatementRejection) -> str:  # noqa: E741
    return l.label(REASON_LABELS[reason])


# --- a participant's card ----------------------------------------------------------------------------------------


def card_text(l: Localizer, card: Card, *, voted_any: bool = True) -> str:  # noqa: E741
    """The statement to vote on (escaped), how many are left; or, with nothing left, a thank-you.
    voted_any: whether the participant has voted at all (nothing to vote on yet reads differently)."""
    consultation = card.consultation
    return l.render(
        "consult_card.j2",
        title=consultation.title,
        statement=card.text,
        left=card.left,
        current=choice_label(l, card.current) if card.current is not None else None,
        voted_any=voted_any,
        allow_statements=consultation.allow_statements,
    )


def card_keyboard(l: Localizer, card: Card, *, review: bool = False) -> Keyboard:  # noqa: E741
    consultation = card.consultation
    consultation_id = consultation.id
    rows: list[tuple[Button, ...]] = []
    statement_id = card.statement_id
    if statement_id is not None:
        rows.append(
            tuple(
                Button(
                    (CHECK if card.current is value else "") + choice_label(l, value),
                    CastVote(statement_id, CHOICE_OF[value], review=review).pack(),
                )
                for value in (VoteValue.AGREE, VoteValue.DISAGREE, VoteValue.PASS)
            )
        )
    more: list[Button] = []
    if consultation.allow_statements:
        more.append(Button(l.label("✍️ Add a statement"), ConsultStep(consultation_id, Step.ADD).pack()))
    more.append(Button(l.label("My votes"), ConsultStep(consultation_id, Step.MY_VOTES).pack()))
    rows.append(tuple(more))
    if review and card.left:
        rows.append((Button(l.label("Continue voting ›"), ConsultStep(consultation_id, Step.NEXT).pack()),))
    return tuple(rows)


# --- a statement waiting for a moderator ------------------------------------------------------------------------


def outcome_line(l: Localizer, statement: Statement) -> str | None:  # noqa: E741
    """How a statement was decided, for the moderators' message; None while it waits."""
    return decided_line(l, statement.status, statement.rejection_reason)


def decided_line(
    l: Localizer,  # noqa: E741
    status: StatementStatus,
    reason: StatementRejection | None,
    decided_by: str | None = None,
) -> str | None:
    """How a statement was decided and, for the other moderators' copies, by whom; None while it waits."""
    if status == StatementStatus.APPROVED:
        if decided_by is not None:
            return l.text("✅ Approved by %(name)s: participants now vote on it.", name=decided_by)
        return l.text("✅ Approved: participants now vote on it.")
    if status == StatementStatus.REJECTED:
        if decided_by is not None and reason is not None:
            return l.text("❌ Rejected by %(name)s: %(reason)s", name=decided_by, reason=reason_label(l, reason))
        if decided_by is not None:
            return l.text("❌ Rejected by %(name)s.", name=decided_by)
        if reason is None:
            return l.text("❌ Rejected.")
        return l.text("❌ Rejected: %(reason)s", reason=reason_label(l, reason))
    return None


def moderation_text(l: Localizer, statement: Statement, consultation: Consultation, community: Community) -> str:  # noqa: E741
    return moderation_view(l, consultation.title, community.name, statement.text, outcome_line(l, statement))


def moderation_view(l: Localizer, title: str, community: str, text: str, outcome: str | None) -> str:  # noqa: E741
    return l.render(
        "consult_moderation.j2",
        statement={"text": text},
        title=title,
        community=community,
        outcome=Markup(outcome) if outcome is not None else None,  # localizer output is safe HTML
    )


def moderation_keyboard(l: Localizer, statement: Statement) -> Keyboard:  # noqa: E741
    """Approve / Reject while the statement waits; nothing once it is decided."""
    if statement.id is None:
        return ()
    return pending_keyboard(l, statement.id, statement.status)


def pending_keyboard(l: Localizer, statement_id: int, status: StatementStatus) -> Keyboard:  # noqa: E741
    if status != StatementStatus.PENDING:
        return ()
    return (
        (
            Button(l.label("✅ Approve"), ModerateStatement(statement_id, Verdict.APPROVE).pack()),
            Button(l.label("❌ Reject"), ModerateStatement(statement_id, Verdict.REJECT).pack()),
        ),
    )


def reason_keyboard(l: Localizer, statement_id: int) -> Keyboard:  # noqa: E741
    rows: list[tuple[Button, ...]] = [
        (Button(reason_label(l, reason), RejectStatement(statement_id, reason).pack()),) for reason in REASON_LABELS
    ]
    rows.append((Button(l.label("← Back"), ModerateStatement(statement_id, Verdict.BACK).pack()),))
    return tuple(rows)
