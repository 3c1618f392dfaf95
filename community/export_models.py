"""The table of export requests: a file someone asked for in a chat, made later by the jobs' process.

A row is written in the same transaction as the tap that asked for it, so a crash between the request and the job
loses nothing (the jobs' process picks up what is still PREPARING at start); ``active_key`` is unique while the
request is PREPARING and NULL once it is done, so a second tap for the same file cannot start a second export
(NULLs are distinct in a unique index on both databases)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from community.db_types import UTCDateTime, enum_type


class ExportStatus(StrEnum):
    PREPARING = "preparing"  # asked for; the jobs' process has not finished it
    SENT = "sent"  # the file is queued to the requester in the outbox
    TOO_LARGE = "too_large"  # over the channel's upload limit: the requester was pointed to `linli export`
    REFUSED = "refused"  # the permission no longer held when the job ran: the requester was told why
    FAILED = "failed"  # the export itself failed: the requester was told to try again


class ExportRequest(SQLModel, table=True):
    __tablename__ = "export_request"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: int | None = Field(default=None, primary_key=True)
    # What to export, as the feature that declared the export names it ("consultation.outcome"), and of what.
    kind: str = Field(max_length=60)
    subject_id: int
    format: str = Field(max_length=20)
    # Who asked, and where the file goes: the chat the request came from.
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="channel_account.id")
    channel: str = Field(max_length=20)
    chat_id: str = Field(max_length=64)
    language: str = Field(max_length=20)
    status: ExportStatus = Field(default=ExportStatus.PREPARING, sa_type=enum_type(ExportStatus))
    active_key: str | None = Field(default=None, max_length=160, unique=True, index=True)
    file_name: str | None = Field(default=None, max_length=255)
    size_bytes: int | None = Field(default=None)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
