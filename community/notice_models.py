"""Tables of notices and of the outbox that delivers them (and every other message to many people).

A notice is what a community worker wrote; an outbox row is one message to one recipient, already rendered in
the recipient's language, waiting to be sent, being sent, or done with. The sender (bot/delivery) claims rows,
sends them and records the outcome on the row, so a crash loses nothing: a claimed row whose lease ran out is
claimed again."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from community.db_types import UTCDateTime, enum_type


def _utc(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class NoticeCategory(StrEnum):
    """What a notice is about; residents may mute a category, except for notices marked important."""

    GENERAL = "general"
    EVENTS = "events"
    VOLUNTEERING = "volunteering"
    SERVICES = "services"


class NoticeStatus(StrEnum):
    DRAFT = "draft"  # being composed, not yet confirmed
    SCHEDULED = "scheduled"  # confirmed, waits for send_at
    SENDING = "sending"  # fanned out into the outbox, messages going out
    SENT = "sent"  # every outbox row reached a final state
    CANCELLED = "cancelled"


class AttachmentKind(StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"


class Notice(SQLModel, table=True):
    __tablename__ = "notice"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    author_id: int | None = Field(default=None, foreign_key="person.id")  # None once the author erased their data
    category: NoticeCategory = Field(default=NoticeCategory.GENERAL, sa_type=enum_type(NoticeCategory))
    important: bool = Field(default=False)  # reaches people who muted the category, never waits for a digest
    ack_requested: bool = Field(default=False)  # "please confirm": the message carries an Acknowledge button
    body: str = Field(sa_column=Column(Text, nullable=False))  # as the worker typed it: plain text, escaped on render
    language: str = Field(max_length=16)  # the language the body is written in
    attachment_kind: AttachmentKind | None = Field(default=None, sa_type=enum_type(AttachmentKind), nullable=True)
    attachment_channel: str | None = Field(default=None, max_length=20)  # whose file reference attachment_ref is
    attachment_ref: str | None = Field(default=None, max_length=255)  # e.g. a Telegram file_id
    attachment_name: str | None = Field(default=None, max_length=255)
    # Who it is for, as canonical JSON: {"buildings": [...], "groups": [...], "roles": [...]}; all empty means
    # the whole community. Within a key any value matches; across keys all must match.
    audience: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    status: NoticeStatus = Field(default=NoticeStatus.DRAFT, sa_type=enum_type(NoticeStatus))
    send_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))  # None: as soon as confirmed
    recipients: int = Field(default=0)  # outbox rows made at fan-out
    # The author's progress message, edited while the notice goes out.
    progress_channel: str | None = Field(default=None, max_length=20)
    progress_chat_id: str | None = Field(default=None, max_length=64)
    progress_message_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=_utc())
    queued_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    cancelled_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class NoticeTranslation(SQLModel, table=True):
    """The worker's own version of a notice in another language; recipients reading it get this one."""

    __tablename__ = "notice_translation"
    __table_args__ = (UniqueConstraint("notice_id", "language", name="uq_notice_translation"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    language: str = Field(max_length=16)
    body: str = Field(sa_column=Column(Text, nullable=False))


class NoticeAck(SQLModel, table=True):
    """A recipient confirmed they read a notice that asked for it; once per person and notice."""

    __tablename__ = "notice_ack"
    __table_args__ = (UniqueConstraint("notice_id", "person_id", name="uq_notice_ack"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    at: datetime = Field(sa_column=_utc())


class NoticeMute(SQLModel, table=True):
    """A person does not want notices of this category (important ones still reach them)."""

    __tablename__ = "notice_mute"
    __table_args__ = (UniqueConstraint("person_id", "category", name="uq_notice_mute"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    category: NoticeCategory = Field(sa_type=enum_type(NoticeCategory))


class NoticePreference(SQLModel, table=True):
    """How a person likes their notices: at once (default) or non-urgent ones gathered in a daily digest."""

    __tablename__ = "notice_preference"

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    daily_digest: bool = Field(default=False)


class DeliveryStatus(StrEnum):
    QUEUED = "queued"  # waits for not_before
    SENDING = "sending"  # claimed by a sender until lease_until; claimed again after that
    SENT = "sent"
    FAILED = "failed"  # gave up: a permanent error, or transient ones up to the retry limit; see error
    UNREACHABLE = "unreachable"  # the person blocked the bot (403); nothing more is sent to that account
    HELD = "held"  # waits for the recipient's daily digest
    DIGESTED = "digested"  # went out inside a digest message
    CANCELLED = "cancelled"  # the notice was cancelled before this row was sent
    # Not reachable on this channel: no process serves the row's channel (a console account in a database that
    # runs on Telegram). Ended by the one `linli run` of the database, which serves its only channel.
    NO_CHANNEL = "no_channel"


FINAL_STATUSES = frozenset(
    {
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.UNREACHABLE,
        DeliveryStatus.DIGESTED,
        DeliveryStatus.CANCELLED,
        DeliveryStatus.NO_CHANNEL,
    }
)


class MessageKind(StrEnum):
    TEXT = "text"
    PHOTO = "photo"
    DOCUMENT = "document"


class OutboxMessage(SQLModel, table=True):
    """One message to one chat. ``text`` is final HTML in the recipient's language; ``buttons`` is JSON of rows
    of {"label", "data"} (callback data) or {"label", "url"}."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The sender's claim: the oldest due rows first.
        Index("ix_outbox_due", "status", "not_before", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int | None = Field(default=None, foreign_key="notice.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="channel_account.id", index=True)
    channel: str = Field(max_length=20)
    chat_id: str = Field(max_length=64)
    is_group: bool = Field(default=False)  # group chats have their own, slower limit
    kind: MessageKind = Field(default=MessageKind.TEXT, sa_type=enum_type(MessageKind))
    text: str = Field(sa_column=Column(Text, nullable=False))
    buttons: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    file_ref: str | None = Field(default=None, max_length=255)
    file_name: str | None = Field(default=None, max_length=255)
    status: DeliveryStatus = Field(default=DeliveryStatus.QUEUED, sa_type=enum_type(DeliveryStatus))
    not_before: datetime = Field(sa_column=_utc())
    attempts: int = Field(default=0)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    external_id: str | None = Field(default=None, max_length=64)  # the channel's message id
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=_utc())
    # What the message is about (community.notify), so the copies several people got can be edited together.
    topic: str | None = Field(default=None, max_length=64, index=True)
    language: str | None = Field(default=None, max_length=16)  # the language ``text`` is written in
    # A row that edits the message another row delivered (that row's external_id is the channel's message id);
    # None for a new message. Not a foreign key: the rows of one table, never deleted one by one.
    edit_of: int | None = Field(default=None)
