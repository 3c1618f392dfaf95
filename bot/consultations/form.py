"""The /newconsultation form as it is kept in the dialogue state (plain JSON), its buttons' typed callback data,
and how it becomes a ConsultationDraft."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from bot.forms import StateForm, attachment_of
from bot.forms.engine import FormCommunity, FormPick, FormPress
from community.notices import Attachment
from community.scope import Scope
from consultation.consultations import ConsultationDraft
from consultation.models import Eligibility
from consultation.settings import CLOSING_DAYS, default_closing_days

# The quick choices for the closing time, after the opening, are the community's (consultation.settings).
DEFAULT_CLOSING_DAYS = default_closing_days(CLOSING_DAYS.default)
ELIGIBILITIES: tuple[Eligibility, ...] = tuple(Eligibility)  # button indexes point into this


class ComposeAction(StrEnum):
    EVERYONE = "all"  # the whole community: clears the buildings and groups chosen
    BUILDINGS = "b"  # open the list of buildings
    GROUPS = "g"
    BACK = "back"  # from a list (or a question) back
    SCOPE_DONE = "sd"  # on to the options
    SCOPE = "sc"  # from the options back to the scope
    TITLE = "ti"  # type the title again
    BACKGROUND = "bg"  # type the background again
    OPEN_NOW = "on"
    OPEN_LATER = "ol"  # type an opening time
    CLOSE_LATER = "cl"  # type a closing time
    STATEMENTS = "st"  # residents may add statements (toggle)
    MODERATED = "mo"  # their statements wait for a moderator (toggle)
    SEEDS = "se"  # type statements to start with
    DROP_SEEDS = "ds"  # remove them
    SEEDS_DONE = "sf"
    PREVIEW = "pre"
    CREATE = "ok"
    EDIT = "edit"  # from the preview back to the options
    CANCEL = "x"


@dataclass(frozen=True)
class ComposeForm(FormPress):
    prefix: ClassVar[str] = "knf"
    action: ComposeAction


class ComposeToggle(StrEnum):
    BUILDING = "b"  # index into the buildings shown
    GROUP = "g"  # index into the residents' groups shown
    ELIGIBILITY = "e"  # index into ELIGIBILITIES
    CLOSING_DAYS = "d"  # index into the community's closing-day choices (consultation.settings.CLOSING_DAYS)


@dataclass(frozen=True)
class ComposeChoice(FormPick):
    prefix: ClassVar[str] = "knt"
    toggle: ComposeToggle
    index: int = 0


@dataclass(frozen=True)
class ComposeCommunity(FormCommunity):
    """Staff of several communities pick the one the consultation is for."""

    prefix: ClassVar[str] = "knc"
    community_id: int


@dataclass(slots=True)
class Form(StateForm):
    community_id: int
    language: str  # of the title and background: the composer's own
    title: str = ""
    background: str = ""
    attachment: dict[str, str] | None = None  # kind, channel, ref, name ("" if none)
    buildings: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    building_options: list[str] = field(default_factory=list)  # as shown: the buttons' indexes point here
    group_options: list[str] = field(default_factory=list)
    eligibility: str = Eligibility.RESIDENTS.value
    opens_at: str | None = None  # ISO 8601, aware; None: as soon as created
    closes_at: str | None = None  # ISO 8601, aware; None: closes_days after the opening
    closes_days: int = DEFAULT_CLOSING_DAYS
    # The community's closing-day choices (consultation.settings.CLOSING_DAYS) when the form began, as shown: the
    # buttons' indexes point here, so a setting changed meanwhile cannot make a button mean another number.
    closing_choices: list[int] = field(default_factory=lambda: list(CLOSING_DAYS.default))
    allow_statements: bool = True
    moderated: bool = True
    seeds: list[str] = field(default_factory=list)
    done: bool = False  # past the scope once: a new title or background goes back to the options

    def audience(self) -> Scope:
        return Scope(buildings=tuple(self.buildings), groups=tuple(self.groups))

    def eligibility_value(self) -> Eligibility:
        return Eligibility(self.eligibility)

    def opening(self) -> datetime | None:
        return datetime.fromisoformat(self.opens_at) if self.opens_at else None

    def closing(self) -> datetime | None:
        return datetime.fromisoformat(self.closes_at) if self.closes_at else None

    def attachment_value(self) -> Attachment | None:
        return attachment_of(self.attachment)

    def draft(self, now: datetime) -> ConsultationDraft:
        """The draft as it would be created at ``now``: "open now" opens at now, a closing after so many days
        counts from the opening."""
        opens_at = self.opening() or now
        closes_at = self.closing() or opens_at + timedelta(days=self.closes_days)
        return ConsultationDraft(
            community_id=self.community_id,
            title=self.title,
            background=self.background,
            language=self.language,
            opens_at=opens_at,
            closes_at=closes_at,
            audience=self.audience(),
            eligibility=self.eligibility_value(),
            allow_statements=self.allow_statements,
            moderated=self.moderated,
            attachment=self.attachment_value(),
        )
