"""The /notice form as it is kept in the dialogue state (plain JSON), and how it becomes a NoticeDraft; the send
time as a worker types it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.forms import StateForm, attachment_of
from community.errors import ValidationFailed
from community.notice_models import NoticeCategory
from community.notices import Attachment, NoticeDraft
from community.roles import Role
from community.scope import Scope
from i18n import LANGUAGES, N_

TIME_FORMAT = "%Y-%m-%d %H:%M"
_TIME = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})[ T]+(\d{1,2}):(\d{2})")
# A typed time must leave room for what is added to it (a consultation's days, a time zone's hours) before
# datetime's end in the year 9999; no notice or consultation is planned centuries ahead.
LATEST_YEAR = 2999
_TIME_CHARACTERS = str.maketrans({"：": ":", "－": "-", "/": "-", "．": "-", "　": " "})


@dataclass(slots=True)
class Form(StateForm):
    community_id: int
    language: str  # of the body: the worker's own
    body: str = ""
    attachment: dict[str, str] | None = None  # kind, channel, ref, name ("" if none)
    buildings: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    building_options: list[str] = field(default_factory=list)  # as shown: the buttons' indexes point here
    group_options: list[str] = field(default_factory=list)
    role_options: list[str] = field(default_factory=list)
    category: str = NoticeCategory.GENERAL.value
    important: bool = False
    ack: bool = False
    translation: str | None = None  # the worker's version in other_language
    send_at: str | None = None  # ISO 8601, aware; None: as soon as sent
    done: bool = False  # past the audience once: a new text goes back to the options

    @property
    def other_language(self) -> str:
        return next(language for language in LANGUAGES if language != self.language)

    def audience(self) -> Scope:
        return Scope(buildings=tuple(self.buildings), groups=tuple(self.groups), roles=tuple(map(Role, self.roles)))

    def when(self) -> datetime | None:
        return datetime.fromisoformat(self.send_at) if self.send_at else None

    def attachment_value(self) -> Attachment | None:
        return attachment_of(self.attachment)

    def draft(self) -> NoticeDraft:
        return NoticeDraft(
            community_id=self.community_id,
            body=self.body,
            language=self.language,
            category=NoticeCategory(self.category),
            important=self.important,
            ack_requested=self.ack,
            audience=self.audience(),
            send_at=self.when(),
            translations={self.other_language: self.translation} if self.translation else {},
            attachment=self.attachment_value(),
        )


def parse_send_time(text: str, timezone: str) -> datetime:
    """ "2026-03-02 09:00" (full-width digits and separators welcome) in the community's time zone."""
    match = _TIME.fullmatch(" ".join(text.translate(_TIME_CHARACTERS).split()))
    if match is None:
        raise ValidationFailed(N_("Please write the time as YYYY-MM-DD HH:MM, for example 2026-03-02 09:00."))
    year, month, day, hour, minute = (int(part) for part in match.groups())
    if year > LATEST_YEAR:
        raise ValidationFailed(N_("Please give a time before the year %(year)s."), year=str(LATEST_YEAR + 1))
    try:
        return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(timezone))
    except ValueError as err:
        raise ValidationFailed(N_("There is no such date or time: %(time)s"), time=text.strip()) from err
