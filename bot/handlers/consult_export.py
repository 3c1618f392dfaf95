"""A consultation's outcome as a file in the chat: a committee member (or staff) taps Export under a consultation
and receives the XLSX, CSV or PDF; anyone else gets the translated refusal.

export_keyboard() is the row of Export buttons other handlers put under a consultation (the staff overview)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from bot.consultations.buttons import ExportConsultation, ExportFormat
from bot.context import Context
from bot.rendering import Localizer
from bot.replies import AnswerButton, Button, Keyboard, Reply, SendFile
from bot.router import Router

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
    """Write the file and hand it over; a refusal (not committee or staff, no such consultation) is raised by the
    service before anything is written, and the conversation answers it in the reader's language."""
    # Here, not at the top: the exports bring numpy, scikit-learn and xlsxwriter, which a bot start need not wait for.
    from bot.exports.consultation import export_consultation
    from consultation.consultations import get_consultation

    buffer = io.BytesIO()
    exported = await export_consultation(ctx.uow, ctx.person_id, data.consultation_id, data.format, ctx.l, buffer)
    consultation = await get_consultation(ctx.uow, data.consultation_id)
    caption = ctx.l.text("The outcome of “%(title)s”.", title=consultation.title)
    return (
        AnswerButton(),
        SendFile(exported.filename, buffer.getvalue(), caption=caption, mime_type=exported.mime_type),
    )


def register(router: Router) -> None:
    router.button(ExportConsultation, send_export)
