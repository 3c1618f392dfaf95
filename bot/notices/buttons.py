"""The typed callback data of every notice button, shared by the handlers and the messages the outbox sends
(a recipient's Acknowledge button, the author's progress message). Ids and indexes only, never labels."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from bot.callbacks import CallbackData
from bot.forms.engine import FormCommunity, FormPick, FormPress

PREVIEW_NOTICE_ID = 0  # the Acknowledge button under a preview: no notice exists yet


@dataclass(frozen=True)
class AcknowledgeNotice(CallbackData):
    """A recipient confirms they read a notice that asked for it."""

    prefix: ClassVar[str] = "nk"
    notice_id: int


@dataclass(frozen=True)
class ViewNotice(CallbackData):
    """A worker opens a notice's delivery figures (also: refresh them)."""

    prefix: ClassVar[str] = "nv"
    notice_id: int


@dataclass(frozen=True)
class CancelNotice(CallbackData):
    """Cancel a scheduled or sending notice: asked first (confirm False), then done (confirm True)."""

    prefix: ClassVar[str] = "nc"
    notice_id: int
    confirm: bool


class FormAction(StrEnum):
    EVERYONE = "all"  # the whole community: clears every choice
    BUILDINGS = "b"  # open the list of buildings
    GROUPS = "g"
    ROLES = "r"
    BACK = "back"  # from a list back to the audience
    AUDIENCE_DONE = "ad"  # on to the options
    AUDIENCE = "aud"  # from the options back to the audience
    TEXT = "text"  # type the text again
    TRANSLATION = "tr"  # type the version in the other language
    DROP_TRANSLATION = "dtr"
    NOW = "now"  # send as soon as confirmed
    LATER = "later"  # type a time
    PREVIEW = "pre"
    SEND = "send"
    EDIT = "edit"  # from the preview back to the options
    CANCEL = "x"


@dataclass(frozen=True)
class NoticeForm(FormPress):
    prefix: ClassVar[str] = "nf"
    action: FormAction


class Toggle(StrEnum):
    BUILDING = "b"  # index into the buildings shown
    GROUP = "g"  # index into the residents' groups shown
    ROLE = "r"  # index into ROLE_SEGMENTS
    CATEGORY = "c"  # index into NoticeCategory
    IMPORTANT = "i"
    ACK = "k"


@dataclass(frozen=True)
class NoticeToggle(FormPick):
    prefix: ClassVar[str] = "nt"
    toggle: Toggle
    index: int = 0


@dataclass(frozen=True)
class NoticeCommunity(FormCommunity):
    """A worker of several communities picks the one the notice is for."""

    prefix: ClassVar[str] = "nn"
    community_id: int


@dataclass(frozen=True)
class MuteCategory(CallbackData):
    prefix: ClassVar[str] = "nm"
    index: int  # into NoticeCategory


@dataclass(frozen=True)
class DigestChoice(CallbackData):
    prefix: ClassVar[str] = "nd"
    on: bool
