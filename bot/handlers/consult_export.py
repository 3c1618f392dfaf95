"""A consultation's outcome as a file in the chat: a committee member (or staff) taps Export under a consultation,
is answered "preparing…" at once, and receives the XLSX, CSV or PDF when the jobs' process has made it
(bot.exports.jobs); anyone else gets the translated refusal at once. A second tap while the same file is being
prepared is told so, and starts nothing.

export_keyboard() is the row of Export buttons other handlers put under a consultation (the staff overview)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.consultations.buttons import ExportConsultation, ExportFormat
from bot.context import Context
from bot.exports.jobs import ALREADY_PREPARING, PREPARING
from bot.exports.worker import CONSULTATION_OUTCOME
from bot.rendering import Localizer
from bot.replies import AnswerButton, Button, Keyboard, Reply, SendText
from bot.router import Router
from community import exports

# The formats offered in the chat, in this order; JSON is for machines (linli export consultation).
CHAT_FORMATS: tuple[ExportFormat, ...] = (ExportFormat.XLSX, ExportFormat.CSV, ExportFormat.PDF)


def export_keyboard(l: Localizer, consultation_id: int) -> Keyboard:  # noqa: E741 - the house name for a localizer
    """One row: Export XLSX / CSV / PDF of the consultation's outcome."""
    labels = {
        ExportFormat.XLSX: l.label("Spreadsheet (XLSX)"),
        ExportFormat.CSV: l.label("Votes (CSV)"),
        ExportFormat.PDF: l.label("Report (PDF)"),
    }
    return (tuple(Button(labels[fmt], ExportConsultation(consultation_id, fmt).pack()) for fmt in CHAT_FORMATS),)


async def send_export(ctx: Context, data: ExportConsultation) -> Sequence[Reply]:
    """Record the request and answer at once; the file follows from the jobs' process. A refusal (not committee or
    staff, no such consultation, raw votes while fewer than k voted) is raised by the services before anything is
    recorded, and the conversation answers it in the reader's language."""
    # Here, not at the top: the consultation services bring numpy, which a bot start need not wait for.
    from consultation.outcome import require_export

    await require_export(ctx.uow, ctx.person_id, data.consultation_id, per_vote=data.format.per_vote)
    sender = ctx.event.sender
    recipient = exports.Recipient(
        person_id=ctx.person_id,
        account_id=ctx.identity.account.id,
        channel=sender.channel,
        chat_id=sender.chat_id,
        language=ctx.l.language,
    )
    asked = await exports.ask(ctx.uow, CONSULTATION_OUTCOME, data.consultation_id, data.format.value, recipient)
    if not asked.created:
        return (AnswerButton(), SendText(ctx.l.text(ALREADY_PREPARING)))
    return (AnswerButton(), SendText(ctx.l.text(PREPARING)))


def register(router: Router) -> None:
    router.button(ExportConsultation, send_export)
