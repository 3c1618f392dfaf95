"""Export requests: a file someone asked for in a chat, recorded at once and made later, off the conversation.

The conversation records the request (ask) and answers "preparing…"; the jobs' process makes the file outside any
unit of work and then finishes the request (finish) in the short transaction that queues the file, or the reason
there is none, to the requester through the outbox. Asking schedules the job PRODUCE as a row of the same
transaction, so a request is made once the jobs' process has it, and a crash in between loses nothing (the relay
replays the row at the next start). While one is PREPARING, asking again for the
same file by the same person returns it instead of a second one (Asked.created False): exports of a large
consultation take minutes of CPU, and a second tap must not double them.

Which files exist and who may have them is each feature's business (a feature declares its exports and checks its
own permission before asking); this module only keeps the requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from community.export_models import ExportRequest, ExportStatus
from community.notify import Recipient as Recipient  # where a file goes: the chat it was asked from
from community.scheduling import JobSpec
from community.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class ExportJob:
    request_id: int


# Make the file of a request, in the jobs' process (bot.exports.jobs), at once.
PRODUCE = JobSpec("export.produce", ExportJob, "export:{request_id}")


@dataclass(frozen=True, slots=True)
class Asked:
    request: ExportRequest
    created: bool  # False: the same file was already being prepared for this person


def _active_key(kind: str, subject_id: int, fmt: str, recipient: Recipient) -> str:
    who = recipient.person_id if recipient.person_id is not None else f"{recipient.channel}:{recipient.chat_id}"
    return f"{kind}:{subject_id}:{fmt}:{who}"


async def ask(uow: UnitOfWork, kind: str, subject_id: int, fmt: str, recipient: Recipient) -> Asked:
    """Record a request for the file and have the jobs' process make it once this commits (PRODUCE), or find the
    one already PREPARING for the same person; the caller commits."""
    key = _active_key(kind, subject_id, fmt, recipient)
    now = uow.clock.now()  # one moment: the request is made and its job due at the same time
    existing = await _active(uow, key)
    if existing is not None:
        return Asked(existing, created=False)
    request = ExportRequest(
        kind=kind,
        subject_id=subject_id,
        format=fmt,
        person_id=recipient.person_id,
        account_id=recipient.account_id,
        channel=recipient.channel,
        chat_id=recipient.chat_id,
        language=recipient.language,
        status=ExportStatus.PREPARING,
        active_key=key,
        created_at=now,
    )
    try:
        # A savepoint: on PostgreSQL a second tap committed in between makes the insert fail on the unique key,
        # and only the insert is undone, not the caller's transaction.
        async with uow.session.begin_nested():
            uow.session.add(request)
    except IntegrityError:
        existing = await _active(uow, key)
        if existing is None:
            raise
        return Asked(existing, created=False)
    assert request.id is not None
    uow.schedule(PRODUCE, now, ExportJob(request.id))
    return Asked(request, created=True)


async def _active(uow: UnitOfWork, key: str) -> ExportRequest | None:
    return (await uow.session.exec(select(ExportRequest).where(ExportRequest.active_key == key))).first()


async def get_request(uow: UnitOfWork, request_id: int) -> ExportRequest | None:
    return await uow.session.get(ExportRequest, request_id)


async def finish(
    uow: UnitOfWork,
    request_id: int,
    status: ExportStatus,
    *,
    file_name: str | None = None,
    size_bytes: int | None = None,
) -> ExportRequest | None:
    """Mark the request done (the caller commits with what it queued to the requester). None when it was done
    already (the job ran twice) or is gone (the requester used /forget): the caller queues nothing then."""
    if status is ExportStatus.PREPARING:
        raise ValueError("finishing a request needs a final status")
    request = await uow.session.get(ExportRequest, request_id, with_for_update=True)
    if request is None or request.status is not ExportStatus.PREPARING:
        return None
    request.status = status
    request.active_key = None
    request.file_name = file_name
    request.size_bytes = size_bytes
    request.finished_at = uow.clock.now()
    uow.session.add(request)
    await uow.session.flush()
    return request


async def kept(uow: UnitOfWork, request_ids: Sequence[int], finished_after: datetime) -> set[int]:
    """Of these requests, those whose file is still wanted: PREPARING, or finished after the moment given. (A
    request that is gone, erased with its requester, is not among them.)"""
    if not request_ids:
        return set()
    rows = await uow.session.exec(
        select(ExportRequest.id).where(
            col(ExportRequest.id).in_(request_ids),
            (col(ExportRequest.status) == ExportStatus.PREPARING) | (col(ExportRequest.finished_at) > finished_after),
        )
    )
    return {request_id for request_id in rows.all() if request_id is not None}
