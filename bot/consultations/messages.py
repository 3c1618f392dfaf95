"""How a consultation's notifications (consultation.messages) read, in each reader's language: the renderers
the composition root registers with the kernel (community.notify)."""

from __future__ import annotations

from bot.consultations.cards import decided_line, moderation_view, pending_keyboard
from bot.consultations.render import render_invitation, render_outcome
from bot.delivery.transport import outbox_buttons
from bot.rendering import Localizers
from community.notify import Reader, Rendered, Renderers
from consultation.consultations import rejection_message
from consultation.messages import ConsultationInvitation, ConsultationOutcome, StatementDecided, StatementModeration


def register_renderers(renderers: Renderers, localizers: Localizers) -> None:
    def invitation(message: ConsultationInvitation, reader: Reader) -> Rendered:
        local = localizers.get(reader.language, message.timezone)
        shown = render_invitation(local, message.look, with_file=reader.with_file)
        return Rendered(shown.text, outbox_buttons(shown.buttons))

    def outcome(message: ConsultationOutcome, reader: Reader) -> Rendered:
        return Rendered(render_outcome(localizers.get(reader.language, message.timezone), message))

    def moderation(message: StatementModeration, reader: Reader) -> Rendered:
        local = localizers.get(reader.language, message.timezone)
        line = decided_line(local, message.status, message.rejection_reason, message.decided_by)
        text = moderation_view(local, message.title, message.community, message.text, line)
        return Rendered(text, outbox_buttons(pending_keyboard(local, message.statement_id, message.status)))

    def decided(message: StatementDecided, reader: Reader) -> Rendered:
        local = localizers.get(reader.language, message.timezone)
        text = local.render(
            "consult_statement_decided.j2",
            approved=message.approved,
            title=message.title,
            text=message.text,
            reason=rejection_message(message.reason) if message.reason is not None else "",
        )
        return Rendered(text)

    renderers.register(ConsultationInvitation, invitation)
    renderers.register(ConsultationOutcome, outcome)
    renderers.register(StatementModeration, moderation)
    renderers.register(StatementDecided, decided)
