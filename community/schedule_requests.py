"""The schedule_request rows as the relay (bot/relay.py) reads and records them: the rows a use case wrote with
uow.schedule / uow.unschedule (community.scheduling), in id order, and what becomes of each once it is handed to
the scheduler. The relay itself only moves them; what a row means is decided here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, delete, select, update

from community.models import ScheduleRequest
from community.unit_of_work import UnitOfWork


async def waiting(uow: UnitOfWork, *, after: int, limit: int, handed_too: bool = False) -> list[ScheduleRequest]:
    """The rows after id ``after`` that are not handed yet (handed_too: every row, the replay at start), in id
    order, at most ``limit``."""
    query = select(ScheduleRequest).where(col(ScheduleRequest.id) > after)
    if not handed_too:
        query = query.where(col(ScheduleRequest.handed).is_(False))
    return list((await uow.session.exec(query.order_by(col(ScheduleRequest.id)).limit(limit))).all())


async def record_handed(uow: UnitOfWork, rows: Sequence[ScheduleRequest]) -> None:
    """These rows are with the scheduler now. A cancel ends its key's story up to here, so it goes with every
    older row of that key; a request supersedes the older rows of its key and stays, marked handed, until its
    job has run (finished)."""
    for row in rows:
        assert row.id is not None
        if row.at is None:
            await uow.session.exec(
                delete(ScheduleRequest).where(col(ScheduleRequest.key) == row.key, col(ScheduleRequest.id) <= row.id)
            )
            continue
        await uow.session.exec(
            delete(ScheduleRequest).where(col(ScheduleRequest.key) == row.key, col(ScheduleRequest.id) < row.id)
        )
        await uow.session.exec(update(ScheduleRequest).where(col(ScheduleRequest.id) == row.id).values(handed=True))


async def finished(uow: UnitOfWork, row_id: int) -> None:
    """The job of this row has run (or was refused, or is unknown): it is not to be replayed."""
    await uow.session.exec(delete(ScheduleRequest).where(col(ScheduleRequest.id) == row_id))
