"""A consultation's messages to residents, rendered once per language: the invitation its opening sends (also
the composer's preview) and the short outcome its close sends to every participant."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from bot.consultations.buttons import OpenConsultation
from bot.notices.render import attachment_label, moment
from bot.rendering import Localizer
from bot.replies import Button, Keyboard
from consultation.messages import ConsultationLook, ConsultationOutcome
from i18n import N_

# The invitation quotes the start of the background: the whole of it (up to 4,000 characters) is what a
# resident reads on opening the consultation, and the invitation must fit a photo's caption (1,024).
EXCERPT = 300
PREVIEW_CONSULTATION_ID = 0  # the button under a preview: no consultation exists yet

TAKE_PART = N_("🗳 Take part")


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """The start of a text, cut at a blank where one is near the limit, with an ellipsis when cut."""
    cleaned = text.strip()
    if len(cleaned) <= limit:
        return cleaned
    cut = cleaned[:limit]
    blank = cut.rfind(" ")
    if blank > limit * 2 // 3:
        cut = cut[:blank]
    return cut.rstrip() + "…"


@dataclass(frozen=True, slots=True)
class RenderedInvitation:
    text: str  # Telegram HTML in the reader's language; the caption when sent with the file
    buttons: Keyboard


def render_invitation(l: Localizer, look: ConsultationLook, *, with_file: bool) -> RenderedInvitation:  # noqa: E741
    """The invitation in ``l``'s language and time zone, with the button that opens the consultation."""
    note = None if with_file else attachment_label(l, look.attachment_kind, look.attachment_name)
    text = l.render(
        "consultation_invitation.j2",
        community=look.community,
        title=look.title,
        background=excerpt(look.background),
        attachment=note,
        closes_at=look.closes_at,
        allow_statements=look.allow_statements,
        at=partial(moment, l),
    )
    button = Button(l.label(TAKE_PART), OpenConsultation(look.consultation_id).pack())
    return RenderedInvitation(text, ((button,),))


def render_outcome(l: Localizer, outcome: ConsultationOutcome) -> str:  # noqa: E741
    return l.render(
        "consultation_outcome.j2",
        community=outcome.community,
        title=outcome.title,
        participants=outcome.participants,
        voters=outcome.voters,
        votes=outcome.votes,
        groups=outcome.groups,
        consensus=list(outcome.consensus),
        divisive=outcome.divisive,
        withheld_below=outcome.withheld_below,
    )
